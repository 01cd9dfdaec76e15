"""Counting sessions: start, pause/resume, finish, manual ±1 corrections, status.

A session ("Batch-A", target 100) is one row in ``sessions``; every change of its count is
a row in ``count_events`` (``auto`` from the counting worker, ``manual`` from an operator
with a reason), so the count can always be re-derived and audited. At most one session is
open (active or paused) per station; after a restart :func:`open_session` finds it again
and the worker carries on counting into it.

Bad input never half-creates a session: names and targets are validated first and raise
:class:`SessionError` with one clear, translatable message.

Example:
    >>> from core.platform.storage import Database
    >>> from core.platform.paths import Paths
    >>> db = Database("sqlite://")
    >>> s = start_session(db, Paths.from_env(), "Batch-A", "100")
    >>> s.target, s.count, s.is_active
    (100, 0, True)
    >>> correct_count(db, s.id, +1, "missed sheet").count
    1
    >>> finish_session(db, Paths.from_env(), s.id).finish_alert
    'under'
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select

from core.platform.errors import UserError
from core.platform.health import DiskFullError, require_disk
from core.platform.i18n import to_local
from core.platform.log import get
from core.platform.paths import Paths, new_session_id
from core.platform.storage import CountEventRow, Database, SessionRow, utcnow
from core.reports.sessionlog import write_session_log

log = get("sessions")

MAX_TARGET = 100_000        # a bin never holds more; bigger numbers are typos (10^9)
MAX_NAME = 200              # the column width
OPEN_STATES = ("active", "paused")


class SessionError(UserError):
    """Bad input or a forbidden transition; ``str(e)`` is the message for the user.

    ``msgid`` and ``args`` let the page translate it: ``_(e.msgid).format(**e.args)``.
    """


@dataclass
class SessionStatus:
    """What the page shows about a session (the PRD's ``{count, is_active}`` and more)."""
    id: str
    name: str
    target: int
    count: int
    status: str                     # active | paused | finished
    source: str
    folder: str
    started_at: datetime
    finished_at: Optional[datetime]
    finish_alert: str               # "" | ok | under | over
    source_position: int

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES

    @property
    def over_target(self) -> bool:
        return self.count > self.target


@dataclass
class LogLine:
    """One line of the mini log feed ("14:00:01 — Sheet #45 detected")."""
    at: datetime
    kind: str                       # auto | manual
    delta: int
    count_after: int
    reason: str
    user: str
    frame: Optional[int]
    confidence: Optional[float]


# --- validation ------------------------------------------------------------------------
def validate_name(name: Any) -> str:
    """The session name as typed, trimmed; empty or too long is an error.

    >>> validate_name("  Batch A/../x ")
    'Batch A/../x'
    """
    text = "" if name is None else str(name).strip()
    if not text:
        raise SessionError("Enter a session name.")
    if len(text) > MAX_NAME:
        raise SessionError("The session name is too long (at most {n} characters).", n=MAX_NAME)
    return text


def validate_target(target: Any) -> int:
    """A whole number 1…MAX_TARGET (text from an input box is accepted: "100").

    >>> validate_target(" 100 ")
    100
    """
    if isinstance(target, bool):
        raise SessionError("The target must be a whole number.")
    if isinstance(target, float):
        if not target.is_integer():
            raise SessionError("The target must be a whole number.")
        value = int(target)
    elif isinstance(target, int):
        value = target
    else:
        text = "" if target is None else str(target).strip().replace("_", "")
        if not text:
            raise SessionError("Enter a target count.")
        try:
            value = int(text)
        except ValueError:
            raise SessionError("The target must be a whole number.") from None
    if value <= 0:
        raise SessionError("The target must be greater than 0.")
    if value > MAX_TARGET:
        raise SessionError("The target is too large (at most {n}).", n=MAX_TARGET)
    return value


# --- transitions -----------------------------------------------------------------------
def _status(row: SessionRow) -> SessionStatus:
    return SessionStatus(id=row.id, name=row.name, target=row.target, count=row.count, status=row.status,
                         source=row.source, folder=row.folder, started_at=row.started_at,
                         finished_at=row.finished_at, finish_alert=row.finish_alert,
                         source_position=row.source_position)


def session_folder(session_id: str, started_at: datetime, tz: str | None) -> str:
    """``YYYY-MM-DD/<session_id>`` relative to ``data/media/sessions``; the date is the
    plant's local date (a night shift at 01:00 WIB belongs to that local day)."""
    return f"{to_local(started_at, tz).strftime('%Y-%m-%d')}/{session_id}"


def start_session(db: Database, paths: Paths, name: Any, target: Any, source: str = "",
                  user: str = "", tz: str | None = None, station: str = "") -> SessionStatus:
    """Validate and open a new session. Refuses while another session is open."""
    name_ = validate_name(name)
    target_ = validate_target(target)
    current = open_session(db, station)
    if current is not None:
        raise SessionError("Session '{name}' is still open: finish it first.", name=current.name)
    settings = db.load_settings()
    if tz is None:
        tz = settings.ui.timezone
    _require_disk(paths, settings)
    sid = new_session_id(name_)
    started = utcnow()
    folder = session_folder(sid, started, tz)
    (paths.sessions / folder).mkdir(parents=True, exist_ok=True)
    with db.session() as s:
        row = SessionRow(id=sid, name=name_, target=target_, count=0, status="active", source=source,
                         station=station, folder=folder, started_at=started, created_by=user)
        s.add(row)
        s.flush()
        st = _status(row)
    db.log(f"Session '{name_}' started (target {target_})", session_id=sid)
    log.info("session %s started: %r target %d source %s", sid, name_, target_, source)
    return st


def _require_disk(paths: Paths, settings: Any) -> None:
    """The disk guard ("smart clean"): no new session when the data volume is nearly full."""
    try:
        require_disk(paths, settings)
    except DiskFullError as e:
        raise SessionError("Not enough free disk space for a new session: {why}", why=str(e)) from None


def _transition(db: Database, session_id: str, allowed: tuple[str, ...], new: str) -> SessionStatus:
    with db.session() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise SessionError("No such session: {sid}", sid=session_id)
        if row.status not in allowed:
            raise SessionError("Session '{name}' is {status}.", name=row.name, status=row.status)
        row.status = new
        st = _status(row)
    return st


def pause_session(db: Database, session_id: str) -> SessionStatus:
    st = _transition(db, session_id, ("active",), "paused")
    db.log(f"Session '{st.name}' paused at {st.count}", session_id=session_id)
    return st


def resume_session(db: Database, session_id: str) -> SessionStatus:
    st = _transition(db, session_id, ("paused",), "active")
    db.log(f"Session '{st.name}' resumed at {st.count}", session_id=session_id)
    return st


def finish_alert_for(count: int, target: int) -> str:
    """``ok`` when the count meets the target, else ``under`` (sound A) or ``over`` (sound B)."""
    return "ok" if count == target else ("under" if count < target else "over")


def finish_session(db: Database, paths: Paths, session_id: str) -> SessionStatus:
    """Close the session, decide its finish alert and write its JSON log (when the
    reports module is there; the session is finished either way)."""
    with db.session() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise SessionError("No such session: {sid}", sid=session_id)
        if row.status not in OPEN_STATES:
            raise SessionError("Session '{name}' is {status}.", name=row.name, status=row.status)
        row.status = "finished"
        row.finished_at = utcnow()
        row.finish_alert = finish_alert_for(row.count, row.target)
        st = _status(row)
    db.log(f"Session '{st.name}' finished at {st.count} / {st.target} ({st.finish_alert})",
           level="info" if st.finish_alert == "ok" else "warning", session_id=session_id)
    write_log(db, paths, session_id)
    return st


def write_log(db: Database, paths: Paths, session_id: str):
    """The session's JSON log (PRD schema) through :mod:`core.reports`; ``None`` if writing it
    fails (a finished session must never be lost over it; the failure is logged)."""
    try:
        return write_session_log(db, paths, session_id)
    except Exception:
        log.exception("writing the JSON log of %s failed", session_id)
        return None


def correct_count(db: Database, session_id: str, delta: int, reason: Any, user: str = "") -> SessionStatus:
    """A manual +1 / −1 with a reason, recorded as an audit event."""
    if delta not in (1, -1):
        raise SessionError("A correction is +1 or -1.")
    why = "" if reason is None else str(reason).strip()
    if not why:
        raise SessionError("Give a reason for the correction.")
    with db.session() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise SessionError("No such session: {sid}", sid=session_id)
        if row.status == "finished":
            raise SessionError("Session '{name}' is {status}.", name=row.name, status=row.status)
        if row.count + delta < 0:
            raise SessionError("The count cannot go below 0.")
        row.count += delta
        s.add(CountEventRow(session_id=session_id, kind="manual", delta=delta, count_after=row.count,
                            reason=why[:1000], user=user))
        st = _status(row)
    db.log(f"Manual correction {delta:+d} → {st.count}: {why}", level="warning", session_id=session_id)
    try:   # the corrected cycle becomes a labelled example for teach mode (issue 12)
        from core.live import cycles
        cycles.label_from_correction(db, session_id, delta)
    except Exception as e:  # teach-mode bookkeeping must never block a correction
        log.warning("correction not kept as a teach example: %s", e)
    return st


# --- reading ---------------------------------------------------------------------------
def open_session(db: Database, station: Optional[str] = None) -> Optional[SessionStatus]:
    """The open (active or paused) session, if any — what a restarted app resumes. With
    ``station`` only that station's (several stations share one PostgreSQL database)."""
    with db.session() as s:
        q = select(SessionRow).where(SessionRow.status.in_(OPEN_STATES))
        if station is not None:
            q = q.where(SessionRow.station == station)
        row = s.scalars(q.order_by(SessionRow.started_at.desc())).first()
        return _status(row) if row else None


def session_status(db: Database, session_id: str) -> SessionStatus:
    with db.session() as s:
        row = s.get(SessionRow, session_id)
        if row is None:
            raise SessionError("No such session: {sid}", sid=session_id)
        return _status(row)


def recent_log(db: Database, session_id: str, limit: int = 20) -> list[LogLine]:
    """The newest count events first (automatic counts and corrections)."""
    with db.session() as s:
        rows = s.scalars(select(CountEventRow).where(CountEventRow.session_id == session_id)
                         .order_by(CountEventRow.id.desc()).limit(limit)).all()
        return [LogLine(at=r.wall_time, kind=r.kind, delta=r.delta, count_after=r.count_after, reason=r.reason,
                        user=r.user, frame=r.frame, confidence=r.confidence) for r in rows]
