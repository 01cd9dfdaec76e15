"""Background jobs (training, batch defect analysis, exports) that outlive a page reload.

A job runs in a daemon thread of the app process; its state lives in the ``jobs`` table,
so any page (or a reloaded tab) reads progress from the database. The job function gets a
:class:`JobContext` to report progress and to check for cancellation. Jobs left
``running`` by a killed process are marked failed on the next start.

Example:
    >>> from core.platform.storage import Database
    >>> runner = JobRunner(Database("sqlite://"))
    >>> def work(ctx, n):
    ...     for i in range(n):
    ...         ctx.progress((i + 1) / n, f"step {i + 1}")
    ...     return {"done": n}
    >>> jid = runner.submit("demo", work, n=3)
    >>> runner.wait(jid).status
    'done'
"""
from __future__ import annotations

import threading
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Optional

from sqlalchemy import select, update

from core.platform.log import get
from core.platform.storage import Database, JobRow, utcnow

log = get("jobs")


class JobCancelled(Exception):
    """Raised inside a job when cancellation was requested."""


@dataclass
class JobState:
    id: str
    kind: str
    status: str
    progress: float
    message: str
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


@dataclass
class JobContext:
    job_id: str
    db: Database
    _cancel: threading.Event
    _min_interval_s: float = 0.3
    _last_write: float = 0.0

    def progress(self, fraction: float, message: str = "", extra: dict[str, Any] | None = None) -> None:
        """Record progress (0..1). Raises :class:`JobCancelled` when cancel was asked.
        Writes are throttled so a tight loop does not hammer the database."""
        import time
        if self._cancel.is_set():
            raise JobCancelled()
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_write < self._min_interval_s and extra is None:
            return
        self._last_write = now
        values: dict[str, Any] = {"progress": max(0.0, min(1.0, float(fraction))), "message": message,
                                  "updated_at": utcnow()}
        if extra is not None:
            values["result"] = extra
        with self.db.session() as s:
            s.execute(update(JobRow).where(JobRow.id == self.job_id).values(**values))

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()


class JobRunner:
    """Runs job functions in threads and keeps their state in the database."""

    def __init__(self, db: Database):
        self.db = db
        self._threads: dict[str, threading.Thread] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._mark_interrupted()

    def _mark_interrupted(self) -> None:
        # once per Database object: a second runner in the same process (another page's)
        # must not mark the first runner's live jobs as interrupted
        import weakref
        marked = JobRunner.__dict__.get("_marked_dbs")
        if marked is None:
            marked = weakref.WeakSet()
            JobRunner._marked_dbs = marked  # type: ignore[attr-defined]
        if self.db in marked:
            return
        marked.add(self.db)
        # only this station's jobs: on a shared PostgreSQL another line's training keeps running
        here = station()
        with self.db.session() as s:
            for r in s.scalars(select(JobRow).where(JobRow.status.in_(("queued", "running")))):
                if (r.params or {}).get("_station", here) == here:
                    r.status, r.message, r.updated_at = "failed", "interrupted: the app was restarted", utcnow()

    def submit(self, kind: str, fn: Callable[..., Any], **params: Any) -> str:
        """Start ``fn(ctx, **params)`` in the background; returns the job id."""
        jid = f"{kind}-{uuid.uuid4().hex[:10]}"
        with self.db.session() as s:
            s.add(JobRow(id=jid, kind=kind, status="running", params={**_plain(params), "_station": station()}))
        cancel = threading.Event()
        t = threading.Thread(target=self._run, args=(jid, fn, params, cancel), name=f"job-{jid}", daemon=True)
        with self._lock:
            self._threads[jid], self._cancels[jid] = t, cancel
        t.start()
        return jid

    def _run(self, jid: str, fn: Callable[..., Any], params: dict[str, Any], cancel: threading.Event) -> None:
        ctx = JobContext(jid, self.db, cancel)
        try:
            result = fn(ctx, **params)
            status, msg, res = "done", "", result if isinstance(result, dict) else {"result": result}
        except JobCancelled:
            status, msg, res = "cancelled", "cancelled", None
        except Exception as e:  # the job failed; the message is for the user, the trace for the log
            log.error("job %s failed:\n%s", jid, traceback.format_exc())
            status, msg, res = "failed", f"{type(e).__name__}: {e}", None
        values: dict[str, Any] = {"status": status, "message": msg, "updated_at": utcnow()}
        if status == "done":
            values["progress"] = 1.0
        if res is not None:
            values["result"] = _plain(res)
        with self.db.session() as s:
            s.execute(update(JobRow).where(JobRow.id == jid).values(**values))

    def cancel(self, jid: str) -> bool:
        ev = self._cancels.get(jid)
        if ev is None:
            return False
        ev.set()
        return True

    def get(self, jid: str) -> Optional[JobState]:
        with self.db.session() as s:
            row = s.get(JobRow, jid)
            return _state(row) if row else None

    def latest(self, kind: str | None = None, limit: int = 10) -> list[JobState]:
        with self.db.session() as s:
            q = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
            if kind:
                q = q.where(JobRow.kind == kind)
            return [_state(r) for r in s.scalars(q)]

    def running(self, kind: str | None = None) -> list[JobState]:
        return [j for j in self.latest(kind, 50) if j.status == "running"]

    def wait(self, jid: str, timeout: float | None = None) -> JobState:
        t = self._threads.get(jid)
        if t is not None:
            t.join(timeout)
        st = self.get(jid)
        assert st is not None
        return st

    def close(self, timeout: float = 5.0) -> None:
        for ev in self._cancels.values():
            ev.set()
        for t in self._threads.values():
            t.join(timeout)


def station() -> str:
    """This station's name (``MSM_STATION``, else the host name): several stations may share
    one database."""
    import os
    import socket
    return os.environ.get("MSM_STATION") or socket.gethostname()


def _state(r: JobRow) -> JobState:
    return JobState(id=r.id, kind=r.kind, status=r.status, progress=r.progress, message=r.message,
                    params=r.params or {}, result=r.result or {}, created_at=r.created_at, updated_at=r.updated_at)


def _plain(d: Any) -> Any:
    import json
    return json.loads(json.dumps(d, default=str))
