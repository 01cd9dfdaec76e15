"""The counting loop in its own process, and its owner in the app.

Layout (one station)::

    app process (Streamlit)                       worker process (python -m core live --serve)
    ─────────────────────────                     ─────────────────────────────────────────────
    LiveOwner  ── spawns, watches, restarts ──▶   CountingWorker (the counting thread)
      .status() ◀── channel: status JSON ───────   publisher: status ≤10/s, frame JPEG ≤10/s
      FrameHub + StreamServer ◀── channel: JPEG    (encoded once, only while someone watches)
      .pause() ── live_commands row (DB) ──────▶   command thread: execute, publish, ack by id
                 ◀── acknowledged row ───────────

Nothing a viewer does runs in the worker process: page reruns, the MJPEG connections and
WebSocket traffic stay in the app; the worker only counts, writes the database and files,
and publishes. :class:`LiveOwner` has the methods of :class:`CountingWorker` the pages use,
so pages, health and engineering code work unchanged.

The owner restarts a worker that dies (exponential backoff, reset after a healthy run) or
hangs (no heartbeat); the new worker resumes the open session from its stored position
(the database's unique (session, frame) keeps a replay from counting twice). A worker
whose app dies (kill -9 of Streamlit) notices its parent is gone and exits; a per-station
lock file guarantees two workers never count the same station at once.

Example:
    >>> owner = LiveOwner(Database("sqlite://"), Paths.from_env())   # doctest: +SKIP
    >>> owner.start().pause()                                        # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any, Optional

import numpy as np

from core.live import commands
from core.live.channel import Channel, default_path
from core.live.sessions import SessionError, SessionStatus
from core.live.worker import CountingWorker, WorkerStatus, describe_source
from core.platform.log import get
from core.platform.paths import PROJECT_ROOT, Paths, slugify
from core.platform.storage import Database

log = get("live.process")

PUBLISH_S = 0.1                 # status/frame publishing period (≤ 10 frames/s for viewers)
COMMAND_POLL_S = 0.05           # how often the worker looks for new commands
VIEW_DEMAND_S = 3.0             # encode frames while a viewer asked within this time
RAW_DEMAND_S = 5.0
RESTART_MIN_S = 0.5
RESTART_MAX_S = 10.0
HEALTHY_RUN_S = 30.0            # a worker that ran this long resets the backoff
DEFAULT_STREAM_PORT = 8502     # the live video's port when none is configured (taken: any free one)
HANG_S = 20.0                   # no heartbeat for this long: the worker is killed and restarted
COMMAND_TIMEOUT_S = 10.0
LOG_LINES = 12                  # count events the live page's log shows
STARTING = "counting worker starting"
RESTARTING = "counting worker restarting"


# --- shapes on the wire ----------------------------------------------------------------------
def session_to_dict(s: Optional[SessionStatus]) -> Optional[dict[str, Any]]:
    if s is None:
        return None
    d = dataclasses.asdict(s)
    for k in ("started_at", "finished_at"):
        d[k] = d[k].isoformat() if d[k] is not None else None
    return d


def session_from_dict(d: Optional[dict[str, Any]]) -> Optional[SessionStatus]:
    if not d:
        return None
    d = dict(d)
    for k in ("started_at", "finished_at"):
        d[k] = datetime.fromisoformat(d[k]) if d.get(k) else None
    names = {f.name for f in dataclasses.fields(SessionStatus)}
    return SessionStatus(**{k: v for k, v in d.items() if k in names})


def status_to_dict(st: WorkerStatus) -> dict[str, Any]:
    d = {f.name: getattr(st, f.name) for f in dataclasses.fields(WorkerStatus) if f.name != "session"}
    d["session"] = session_to_dict(st.session)
    return d


def status_from_dict(d: dict[str, Any]) -> WorkerStatus:
    names = {f.name for f in dataclasses.fields(WorkerStatus)}
    kw = {k: v for k, v in d.items() if k in names and k != "session"}
    return WorkerStatus(session=session_from_dict(d.get("session")), **kw)


def public_status(st: WorkerStatus, last_command: str = "") -> dict[str, Any]:
    """What ``/status.json`` serves (the live page polls it ~2/s instead of rerunning
    Streamlit): the session, the source, whether the worker restarts, the last command the
    worker executed. A contract for the page's script: add keys, never rename them.

    Example:
        >>> d = public_status(WorkerStatus(running=True, source_status="live", fps=29.9, source_fps=30.0))
        >>> d["session"], d["source"]["status"], d["source"]["fps"], d["restarting"]
        (None, 'live', 29.9, False)
    """
    s = st.session
    return {
        "session": None if s is None else {"id": s.id, "name": s.name, "count": s.count, "target": s.target,
                                           "status": s.status},
        "monitoring": st.monitoring,
        "source": {"status": st.source_status, "label": st.source_label, "message": st.source_message,
                   "fps": round(float(st.fps), 1), "source_fps": round(float(st.source_fps), 1),
                   "slow": st.slow, "outages": st.outages},
        "counts_version": st.counts_version,
        "running": st.running,
        "restarting": (not st.running) and st.source_message == RESTARTING,
        "paused_for_analysis": st.paused_for_analysis,
        "last_command": last_command,
    }


# --- the worker process ----------------------------------------------------------------------
class WorkerRuntime:
    """What runs inside the worker process around :class:`CountingWorker`: the command
    thread and the publisher (status + frames into the channel)."""

    def __init__(self, worker: CountingWorker, channel: Channel, station: str = "", view_fps: float = 10.0):
        self.w = worker
        self.db = worker.db
        self.ch = channel
        self.station = station
        self.view_period = 1.0 / max(0.5, min(view_fps, 10.0))
        self._stop = threading.Event()
        self._pub_lock = threading.Lock()
        self._last_view_pos = -1
        self._last_view_t = 0.0
        self._last_raw_pos = -1
        self._last_raw_t = 0.0
        self.last_command = ""          # id of the last command executed (published with the status)

    def publish(self) -> WorkerStatus:
        """Status (and, while someone watches, the frame) into the channel."""
        with self._pub_lock:
            st = self.w.status()
            d = status_to_dict(st)
            d["last_command"] = self.last_command
            self.ch.write_status(d)
            self.ch.beat()
            now = time.monotonic()
            if st.position != self._last_view_pos and now - self._last_view_t >= self.view_period * 0.95 \
                    and self.ch.view_demand_age() < VIEW_DEMAND_S:
                jpeg = self.w.latest_jpeg(max_width=960)
                if jpeg:
                    self.ch.write_frame(jpeg, st.position)
                    self._last_view_pos, self._last_view_t = st.position, now
            if st.position != self._last_raw_pos and now - self._last_raw_t >= 0.5 \
                    and self.ch.raw_demand_age() < RAW_DEMAND_S:
                img = self.w.latest_frame(annotated=False)
                if img is not None:
                    from core.live.capture import encode_jpeg
                    self.ch.write_raw(encode_jpeg(img, 92), st.position)
                    self._last_raw_pos, self._last_raw_t = st.position, now
            return st

    def execute(self, c: commands.Command) -> dict[str, Any]:
        w, a = self.w, c.args
        if c.kind == "start_session":
            return {"session": session_to_dict(w.start_session(a.get("name"), a.get("target"), a.get("user", "")))}
        if c.kind in ("pause", "resume", "finish"):
            return {"session": session_to_dict(getattr(w, c.kind)())}
        if c.kind == "correct":
            return {"session": session_to_dict(w.correct(int(a.get("delta", 0)), a.get("reason", ""),
                                                         a.get("user", "")))}
        if c.kind == "set_source":
            return {"uri": w.set_source(a.get("uri", ""))}
        if c.kind == "apply_settings":
            w.apply_settings(self.db.load_settings())
            return {}
        if c.kind == "pause_for_analysis":
            return {"ok": bool(w.pause_for_analysis(float(a.get("wait_s", 10.0))))}
        if c.kind == "resume_after_analysis":
            w.resume_after_analysis()
            return {}
        raise SessionError("Unknown command: {kind}", kind=c.kind)

    def _idempotent_replay(self, c: commands.Command, e: BaseException) -> Optional[dict[str, Any]]:
        """A re-run command whose effect is already there (re-run after a restart, or a
        double click in two tabs): answer with the current state instead of an error."""
        st = self.w.status()
        s = st.session
        if c.kind == "pause" and s is not None and s.status == "paused":
            return {"session": session_to_dict(s)}
        if c.kind == "resume" and s is not None and s.is_active:
            return {"session": session_to_dict(s)}
        return None

    def command_loop(self) -> None:
        last_prune = 0.0
        while not self._stop.is_set():
            try:
                pending = commands.take_pending(self.db, self.station)
            except Exception as e:             # the database is briefly busy: try again
                log.warning("reading commands failed: %s", e)
                pending = []
            for c in pending:
                if commands.expired(c):
                    commands.finish(self.db, c.id, error=SessionError(
                        "This command arrived too late and was not applied: try again."))
                    continue
                try:
                    result, err = self.execute(c), None
                except Exception as e:
                    result = self._idempotent_replay(c, e)
                    err = None if result is not None else e
                    if err is not None and not isinstance(err, SessionError) and \
                            type(err).__name__ != "UploadError":
                        log.exception("command %s failed", c.kind)
                self.last_command = c.id
                self.publish()                 # the page sees the new state with the ack
                commands.finish(self.db, c.id, result=result, error=err)
            if time.monotonic() - last_prune > 600:
                last_prune = time.monotonic()
                try:
                    commands.prune(self.db)
                except Exception:
                    pass
            self._stop.wait(COMMAND_POLL_S)

    def run(self, parent_pid: int = 0, seconds: float = 0.0) -> None:
        t = threading.Thread(target=self.command_loop, name="live-commands", daemon=True)
        t.start()
        t0 = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    self.publish()
                except Exception as e:         # never let the publisher take counting down
                    log.warning("publishing failed: %s", e)
                if parent_pid and not _alive(parent_pid):
                    log.warning("the app (pid %d) is gone: stopping the worker", parent_pid)
                    break
                if seconds and time.monotonic() - t0 > seconds:
                    break
                self._stop.wait(self.view_period)
        finally:
            self._stop.set()
            t.join(5)

    def stop(self) -> None:
        self._stop.set()


def _alive(pid: int) -> bool:
    if os.getppid() != pid:                 # re-parented: our app died
        return False
    return True


def _station_lock(paths: Paths, station: str, parent_pid: int, timeout_s: float = 30.0) -> Any:
    """An exclusive lock per data folder and station: one counting worker at a time (an
    orphan of a killed app still finishing its last frame holds it for a moment)."""
    import fcntl
    paths.runs.mkdir(parents=True, exist_ok=True)
    f = open(paths.runs / f"worker-{slugify(station) or 'default'}.lock", "a+")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if time.monotonic() > deadline or (parent_pid and not _alive(parent_pid)):
                f.close()
                raise SessionError("Another counting worker runs for this station.")
            time.sleep(0.1)


def serve(channel_path: str, station: str = "", source: str = "", parent_pid: int = 0,
          view_fps: float = 10.0, loop: bool = True, realtime: bool = True) -> int:
    """Body of ``python -m core live --serve``: the worker process the owner starts."""
    paths = Paths.from_env().ensure()
    lock = _station_lock(paths, station, parent_pid)
    db = Database()
    w = CountingWorker(db, paths, station=station, loop=loop, realtime=realtime)
    try:   # the sheet detector for the verifier, loaded here: the worker process owns its models
        from core.models.manager import ModelManager
        w.set_detector(ModelManager(db, paths).sheet_detect_fn)
    except Exception as e:
        log.warning("sheet detector not wired (%s): model-free counting", e)
    ch = Channel.open(channel_path)
    rt = WorkerRuntime(w, ch, station, view_fps)
    stopping = threading.Event()

    def _term(_sig: int, _frm: Any) -> None:
        stopping.set()
        rt.stop()
    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    try:
        n = commands.recover(db, station)
        if n:
            log.info("%d command(s) left by the previous worker recovered", n)
        from core.live import sessions
        if source == "none":            # MSM_SOURCE=none: start with no source (the operator picks one)
            w.default_to_demo = False
        elif source and sessions.open_session(db, station) is None:
            try:
                w.set_source(source)
            except Exception as e:      # a source that vanished: the page says "no source"
                log.warning("source %s unusable: %s", describe_source(source), e)
        w.start()
        rt.publish()
        rt.run(parent_pid=parent_pid)
    finally:
        w.stop()
        try:
            rt.publish()
        except Exception:
            pass
        ch.close()
        db.dispose()
        lock.close()
    return 0


# --- the owner in the app --------------------------------------------------------------------
class LiveOwner:
    """Starts, watches and stops the worker process; the pages' handle on it (it has the
    methods of :class:`CountingWorker` that pages call). One per app process
    (``st.cache_resource`` in app.py); every tab shares it."""

    def __init__(self, db: Database, paths: Paths, source: Optional[str] = None, station: str = "",
                 stream_host: str = "127.0.0.1", stream_port: Optional[int] = None, python: str = sys.executable,
                 loop: bool = True):
        self.db = db
        self.paths = paths
        self.settings = db.load_settings()
        self.station = station
        self._source = source or ""
        self.python = python
        self.loop = loop                  # False: a file plays once (tests, benchmarks)
        self.channel_path = default_path(paths.data, station)
        self._channel: Optional[Channel] = None
        self._proc: Optional[subprocess.Popen] = None
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._watchdog: Optional[threading.Thread] = None
        self.restarts = 0
        self._started_at = 0.0
        self._stream_host, self._stream_port = stream_host, stream_port
        self.hub: Any = None
        self.server: Any = None
        self._status_cache: tuple[int, WorkerStatus] = (-1, WorkerStatus())
        self._last_command = ""
        self._log_cache: tuple[Any, list[dict[str, Any]]] = (None, [])

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "LiveOwner":
        from core.live.stream import FrameHub, StreamServer
        with self._lock:
            if self._proc is not None:
                return self
            self._channel = Channel.create(self.channel_path)
            self.hub = FrameHub(self._channel).start()
            self.server = None
            ports = [self._stream_port] if self._stream_port is not None else [DEFAULT_STREAM_PORT, 0]
            for port in ports:
                try:
                    self.server = StreamServer(self.hub, self._stream_host, port, status=self.status_json,
                                               status_version=self._status_version).start()
                    break
                except OSError as e:   # the port is taken: the video is off, counting is not
                    log.warning("video stream server could not listen on %s:%s: %s", self._stream_host, port, e)
            self._spawn()
            self._watchdog = threading.Thread(target=self._watch, name="live-owner", daemon=True)
            self._watchdog.start()
        return self

    def _spawn(self) -> None:
        cmd = [self.python, "-m", "core", "live", "--serve", "--channel", str(self.channel_path),
               "--station", self.station, "--parent", str(os.getpid())]
        if self._source:
            cmd += ["--source", self._source]
        if not self.loop:
            cmd += ["--no-loop"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self._proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=None, start_new_session=True)
        self._started_at = time.monotonic()
        log.info("counting worker process started (pid %d)", self._proc.pid)

    def _watch(self) -> None:
        backoff = RESTART_MIN_S
        while not self._stopping.wait(0.25):
            with self._lock:
                p = self._proc
            if p is None:
                continue
            rc = p.poll()
            if rc is None:
                ran = time.monotonic() - self._started_at
                _pid, age = self._channel.heartbeat() if self._channel else (0, 0.0)
                if ran > HANG_S and age > HANG_S:
                    log.error("counting worker (pid %d) sent no heartbeat for %.0f s: killing it", p.pid, age)
                    p.kill()
                continue
            if self._stopping.is_set():
                break
            ran = time.monotonic() - self._started_at
            if ran > HEALTHY_RUN_S:
                backoff = RESTART_MIN_S
            log.error("counting worker (pid %d) exited with %s after %.1f s: restarting in %.1f s",
                      p.pid, rc, ran, backoff)
            if self._stopping.wait(backoff):
                break
            backoff = min(backoff * 2, RESTART_MAX_S)
            with self._lock:
                if self._stopping.is_set():
                    break
                self.restarts += 1
                self._spawn()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the worker process (SIGTERM, then SIGKILL), the stream and the channel."""
        self._stopping.set()
        if self._watchdog is not None and self._watchdog is not threading.current_thread():
            self._watchdog.join(5)
        with self._lock:
            p, self._proc = self._proc, None
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if self.server is not None:
            self.server.stop()
        if self.hub is not None:
            self.hub.stop()
        if self._channel is not None:
            self._channel.close(unlink=True)
            self._channel = None

    @property
    def alive(self) -> bool:
        p = self._proc
        return bool(p is not None and p.poll() is None)

    @property
    def pid(self) -> Optional[int]:
        p = self._proc
        return p.pid if p is not None else None

    @property
    def stream_port(self) -> Optional[int]:
        return self.server.port if self.server is not None else None

    # -- reading ----------------------------------------------------------------------------------
    def status(self) -> WorkerStatus:
        """The worker's latest published status (a copy of a few hundred bytes)."""
        ch = self._channel
        if ch is None:
            return WorkerStatus(running=False)
        seq = ch.status_seq()
        cached = self._status_cache
        if seq != cached[0]:
            d = ch.read_status()
            if d is not None:
                self._last_command = str(d.get("last_command") or "")
                cached = (seq, status_from_dict(d))
                self._status_cache = cached
        st = cached[1]
        hb_pid, age = ch.heartbeat()
        if not self.alive or hb_pid != self.pid or age > 3.0:
            # the worker is (re)starting: the last figures are history, not a live rate
            st = dataclasses.replace(st, running=False, fps=0.0, source_status="connecting",
                                     source_message=RESTARTING if self.restarts else STARTING)
        return st

    def _status_version(self) -> int:
        ch = self._channel
        return ch.status_seq() if ch is not None else -1

    def status_json(self, st: Optional[WorkerStatus] = None) -> dict[str, Any]:
        """The public status the stream server's ``/status.json`` serves (:func:`public_status`);
        ``st``: a status already read (the page draws and keys on the same snapshot)."""
        st = st if st is not None else self.status()
        d = public_status(st, self._last_command)
        d["at"] = time.time()           # the page keeps the newer of two snapshots
        d["log"] = self._log(st)
        return d

    def _log(self, st: WorkerStatus) -> list[dict[str, Any]]:
        """The session's newest count events for the page's log, read from the database once
        per new count or correction for every viewer together (keyed by the version)."""
        s = st.session
        if s is None:
            return []
        key = (s.id, self.pid, st.counts_version, s.count)
        cached = self._log_cache
        if cached[0] != key:
            from core.live.sessions import recent_log
            from core.platform.i18n import fmt_dt
            try:
                lines = recent_log(self.db, s.id, limit=LOG_LINES)
            except Exception as e:          # the database is busy: the old lines, next time the new
                log.warning("reading the log failed: %s", e)
                return cached[1]
            tz = getattr(getattr(self.settings, "ui", None), "timezone", None)
            cached = (key, [{"time": fmt_dt(e.at, tz, with_date=False), "kind": e.kind, "n": e.count_after,
                             "delta": e.delta, "reason": e.reason} for e in lines])
            self._log_cache = cached
        return cached[1]

    def latest_jpeg(self, max_width: int = 960, quality: int = 80) -> Optional[bytes]:
        """The latest shown frame, as the worker encoded it for every viewer."""
        ch = self._channel
        if ch is None:
            return None
        ch.want_view()
        got = ch.read_frame()
        if got is None:
            deadline = time.monotonic() + 1.0
            while got is None and time.monotonic() < deadline:
                time.sleep(0.05)
                got = ch.read_frame()
        return got[2] if got else None

    def latest_frame(self, annotated: bool = True) -> Optional[np.ndarray]:
        """A decoded frame: the annotated view, or the full-resolution raw frame (asked
        from the worker on demand, for calibration and the ROI editor)."""
        import cv2
        ch = self._channel
        if ch is None:
            return None
        if annotated:
            data = self.latest_jpeg()
        else:
            ch.want_raw()
            got = ch.read_raw()
            deadline = time.monotonic() + 1.5
            while (got is None) and time.monotonic() < deadline:
                time.sleep(0.05)
                got = ch.read_raw()
            data = got[2] if got else None
        if not data:
            return None
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)

    # -- commands ---------------------------------------------------------------------------------
    def submit(self, kind: str, **args: Any) -> str:
        """Queue a command and return its id at once (the page shows "sent" until acked)."""
        return commands.submit(self.db, kind, self.station, **args)

    def command(self, cid: str) -> Optional[commands.Command]:
        return commands.get(self.db, cid)

    def wait(self, cid: str, timeout: float) -> Optional[commands.Command]:
        """The command once acknowledged, or None when still pending after ``timeout``."""
        return commands.wait(self.db, cid, timeout)

    def call(self, kind: str, timeout: float = COMMAND_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        """Submit and wait for the acknowledgement; a refused command raises its message."""
        cid = self.submit(kind, **args)
        c = commands.wait(self.db, cid, timeout)
        if c is None:
            raise SessionError("The counter has not confirmed yet; the command is queued and will be applied.")
        if c.status == "error":
            commands.raise_error(c.error)
        # the next status read must already show the new state
        self._status_cache = (-1, self._status_cache[1])
        return c.result

    def start_session(self, name: Any, target: Any, user: str = "") -> SessionStatus:
        return session_from_dict(self.call("start_session", name=str(name or ""), target=str(target or ""),
                                           user=user)["session"])

    def pause(self) -> SessionStatus:
        return session_from_dict(self.call("pause")["session"])

    def resume(self) -> SessionStatus:
        return session_from_dict(self.call("resume")["session"])

    def finish(self) -> SessionStatus:
        return session_from_dict(self.call("finish")["session"])

    def correct(self, delta: int, reason: Any, user: str = "") -> SessionStatus:
        return session_from_dict(self.call("correct", delta=int(delta), reason=str(reason or ""),
                                           user=user)["session"])

    def set_source(self, uri: str) -> str:
        got = self.call("set_source", uri=uri)["uri"]
        self._source = got                # a restarted worker starts on it too
        return got

    def apply_settings(self, settings: Any) -> None:
        """Saved settings reach the worker process (it reloads them from the database)."""
        self.settings = settings
        self.call("apply_settings")

    def pause_for_analysis(self, timeout: float = 10.0) -> bool:
        return bool(self.call("pause_for_analysis", timeout=timeout + 5, wait_s=timeout).get("ok"))

    def resume_after_analysis(self) -> None:
        self.call("resume_after_analysis")

    def set_detector(self, provider: Any) -> None:
        """Kept for the app's wiring: the worker process loads its own sheet detector."""
