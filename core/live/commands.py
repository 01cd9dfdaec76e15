"""Commands from the pages to the counting worker process, with an acknowledgement.

A click (START / PAUSE / RESUME / FINISH / ±1, a new source, new settings) becomes one row
in the ``live_commands`` table with an id. The worker process picks pending rows up in
order, executes them and writes the outcome back (``done`` with a result, or ``error``
with a translatable message). The page shows "sent" until then. A row in the database
survives a worker restart, so a click made while the worker restarts is executed by the
next worker, never dropped.

Exactly once: a row is marked ``running`` (committed) before it is executed. A worker
that is killed mid-command leaves it ``running``; the next worker re-runs the idempotent
kinds (pause, resume, finish, settings, source: their outcome does not depend on how often
they run) and reports a correction (±1) as interrupted instead of applying it twice.
A command older than :data:`EXPIRE_S` is not applied (a PAUSE from minutes ago would
surprise); it is answered "expired" so the page can say so.

Example:
    >>> from core.platform.storage import Database
    >>> db = Database("sqlite://")
    >>> cid = submit(db, "pause")
    >>> [c.kind for c in take_pending(db)]
    ['pause']
    >>> finish(db, cid, result={"ok": True}); get(db, cid).status
    'done'
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Optional

from sqlalchemy import JSON, Integer, String, Text, select, update
from sqlalchemy.orm import Mapped, mapped_column

from core.platform.errors import UserError
from core.platform.storage import TZ, Base, Database, utcnow

EXPIRE_S = 60.0
_MSG_INTERRUPTED = "The counter restarted during this correction: check the count and correct again if needed."
_MSG_FAILED = "The action failed: {why}"
IDEMPOTENT = {"start_session", "pause", "resume", "finish", "set_source", "apply_settings",
              "pause_for_analysis", "resume_after_analysis"}


class LiveCommandRow(Base):
    """One command to the worker process and its acknowledgement."""
    __tablename__ = "live_commands"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)            # order of submission
    station: Mapped[str] = mapped_column(String(64), default="", index=True)
    kind: Mapped[str] = mapped_column(String(40))
    args: Mapped[Any] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)  # pending|running|done|error
    result: Mapped[Any] = mapped_column(JSON, default=dict)
    error: Mapped[Any] = mapped_column(JSON, default=dict)         # {"type", "msgid", "args"}
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    acked_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)


_ready: set[int] = set()


def _ensure(db: Database) -> None:
    """The table is created by ``Database()`` when this module was imported first; this
    covers a database opened before (one cheap check per engine)."""
    if id(db.engine) not in _ready:
        LiveCommandRow.__table__.create(db.engine, checkfirst=True)  # type: ignore[attr-defined]
        _ready.add(id(db.engine))


@dataclass
class Command:
    id: str
    kind: str
    args: dict[str, Any]
    status: str
    result: dict[str, Any]
    error: dict[str, Any]
    created_at: datetime
    acked_at: Optional[datetime]

    @property
    def acked(self) -> bool:
        return self.status in ("done", "error")


def _cmd(r: LiveCommandRow) -> Command:
    return Command(r.id, r.kind, dict(r.args or {}), r.status, dict(r.result or {}), dict(r.error or {}),
                   r.created_at, r.acked_at)


def submit(db: Database, kind: str, station: str = "", **args: Any) -> str:
    """Queue a command; returns its id at once (the page shows "sent" until acknowledged)."""
    _ensure(db)
    cid = uuid.uuid4().hex
    # the order of clicks is kept by a time-based sequence (ties broken by the id)
    seq = time.time_ns() // 1000
    with db.session() as s:
        s.add(LiveCommandRow(id=cid, seq=seq, station=station, kind=kind, args=args))
    return cid


def get(db: Database, cid: str) -> Optional[Command]:
    _ensure(db)
    with db.session() as s:
        r = s.get(LiveCommandRow, cid)
        return _cmd(r) if r is not None else None


def wait(db: Database, cid: str, timeout: float = 10.0, every: float = 0.02) -> Optional[Command]:
    """The command once acknowledged, or None after ``timeout`` (still pending)."""
    deadline = time.monotonic() + timeout
    while True:
        c = get(db, cid)
        if c is not None and c.acked:
            return c
        if time.monotonic() >= deadline:
            return None
        time.sleep(every)


def take_pending(db: Database, station: str = "") -> list[Command]:
    """The worker's side: pending commands in order, each marked ``running`` first."""
    _ensure(db)
    with db.session() as s:
        rows = list(s.scalars(select(LiveCommandRow).where(LiveCommandRow.station == station,
                                                           LiveCommandRow.status == "pending")
                              .order_by(LiveCommandRow.seq, LiveCommandRow.id)))
        for r in rows:
            r.status = "running"
        return [_cmd(r) for r in rows]


def recover(db: Database, station: str = "") -> int:
    """At worker start: commands a killed worker left ``running``. Idempotent ones go back
    to pending (run again); a correction is answered as interrupted (never applied twice)."""
    _ensure(db)
    n = 0
    with db.session() as s:
        for r in s.scalars(select(LiveCommandRow).where(LiveCommandRow.station == station,
                                                        LiveCommandRow.status == "running")):
            n += 1
            if r.kind in IDEMPOTENT:
                r.status = "pending"
            else:
                r.status, r.acked_at = "error", utcnow()
                r.error = {"type": "SessionError", "msgid": _MSG_INTERRUPTED, "args": {}}
    return n


def expired(c: Command, now: Optional[datetime] = None) -> bool:
    return ((now or utcnow()) - c.created_at) > timedelta(seconds=EXPIRE_S)


def finish(db: Database, cid: str, result: Optional[dict[str, Any]] = None,
           error: Optional[BaseException] = None) -> None:
    """Acknowledge: ``done`` with a JSON result, or ``error`` with the message to show."""
    values: dict[str, Any] = {"acked_at": utcnow()}
    if error is None:
        values.update(status="done", result=result or {})
    else:
        values.update(status="error", error=error_dict(error), message=str(error)[:2000])
    with db.session() as s:
        s.execute(update(LiveCommandRow).where(LiveCommandRow.id == cid).values(**values))


def prune(db: Database, keep_s: float = 3600.0) -> None:
    """Drop acknowledged commands older than ``keep_s`` (the table stays small)."""
    cutoff = utcnow() - timedelta(seconds=keep_s)
    with db.session() as s:
        s.query(LiveCommandRow).filter(LiveCommandRow.status.in_(("done", "error")),
                                       LiveCommandRow.created_at < cutoff).delete()


def error_dict(e: BaseException) -> dict[str, Any]:
    if isinstance(e, UserError):
        return {"type": type(e).__name__, "msgid": e.msgid,
                "args": {k: (v if isinstance(v, (int, float, str)) else str(v)) for k, v in e.args_.items()}}
    return {"type": "error", "msgid": _MSG_FAILED, "args": {"why": f"{type(e).__name__}: {e}"}}


def raise_error(err: dict[str, Any]) -> None:
    """Re-raise an acknowledged error in the app as the same kind of :class:`UserError`."""
    from core.live.sessions import SessionError
    from core.live.worker import UploadError
    cls = {"SessionError": SessionError, "UploadError": UploadError}.get(err.get("type", ""), SessionError)
    raise cls(err.get("msgid") or "The action failed", **(err.get("args") or {}))
