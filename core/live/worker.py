"""The counting worker: ONE background thread per process that pulls frames from the
source into the counting engine and records every count.

Stages of one frame (Frigate-like, each cheap and in order):

    source (RTSP / file / demo) → engine.update → [count?] capture.record_count (DB commit
    + atomic files) → publish (latest frame, count) for the pages

The loop never waits for the UI: pages only read :meth:`CountingWorker.status` and
:meth:`CountingWorker.latest_jpeg`, which copy small pieces of state under a lock; the frame
shown is the latest one and is drawn/encoded lazily only when someone asks, so a slow
browser never slows counting. Every frame is processed whether or not anyone watches.

Crash safety: the source position of each count is committed with it (and periodically
while the scene is idle); after a restart :meth:`start` finds the open session, reopens its
source at the stored position and counts on. Frame positions are monotonic per session, so
the database's unique (session, frame) constraint turns any replay into a no-op.

Example:
    >>> from core.platform.storage import Database
    >>> from core.platform.paths import Paths
    >>> w = CountingWorker(Database("sqlite://"), Paths.from_env(), realtime=False)
    >>> w.start()                                     # doctest: +SKIP
    >>> st = w.start_session("Batch-A", 100)          # doctest: +SKIP
    >>> w.status().count                              # doctest: +SKIP
    0
    >>> w.stop()                                      # doctest: +SKIP
"""
from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from core.live import capture, cycles, sessions
from core.live.sessions import SessionError, SessionStatus
from core.live.sources import is_stream_uri
from core.platform.errors import UserError
from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, slugify
from core.platform.settings import Settings
from core.platform.storage import Database

log = get("worker")

DEMO = "demo"
VIDEO_EXTS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")
BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 3.0                  # "capped at a few seconds"
POSITION_SAVE_S = 1.0                # idle position checkpoint period
FPS_WINDOW_S = 3.0                   # the frames/s shown: frames processed in the last seconds
SLOW_RATIO = 0.9                     # below this share of the source's rate: "counting is slow"
STALL_S = 3.0                        # no camera frame for this long while "live" = stalled


class UploadError(UserError):
    """An uploaded video that cannot be used; ``msgid``/``args_`` translate like SessionError."""


@dataclass
class WorkerStatus:
    """A consistent snapshot of the worker for the pages (cheap; no database access)."""
    running: bool = False
    source: str = ""                 # "demo", a file path or an rtsp:// URL
    source_label: str = ""
    source_status: str = "idle"      # idle | connecting | live | reconnecting | stalled | ended | error
    source_message: str = ""
    outages: int = 0                 # times the source was lost since it was opened
    fps: float = 0.0                 # frames processed per second over the last FPS_WINDOW_S (real rate)
    source_fps: float = 0.0          # the rate the source delivers (file: its own fps; camera: nominal)
    frames: int = 0                  # frames processed since start
    position: int = 0                # monotonic frame position of the current source
    session: Optional[SessionStatus] = None
    last_count_at: Optional[float] = None
    counts_version: int = 0          # bumps on every count/correction: pages refresh their log
    paused_for_analysis: bool = False
    error: str = ""

    @property
    def count(self) -> int:
        return self.session.count if self.session else 0

    @property
    def slow(self) -> bool:
        """The counter processes fewer frames than the source sends: a warning about this
        machine, not a source outage."""
        return bool(self.source_status == "live" and self.source_fps > 0 and self.frames > 2 * self.source_fps
                    and self.fps < SLOW_RATIO * self.source_fps)

    @property
    def monitoring(self) -> bool:
        """Green "Monitoring active": a session is counting and frames arrive."""
        return bool(self.session and self.session.is_active and self.source_status == "live"
                    and not self.paused_for_analysis)


# --- uploaded files ----------------------------------------------------------------------
def _sniff_container(head: bytes) -> Optional[str]:
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mov"
    return None


def validate_upload(data: bytes, filename: str, paths: Paths, max_mb: float) -> Path:
    """Check an uploaded video (container, size, decodable frames) and store it under
    ``data/uploads``; raises :class:`UploadError` with one clear message otherwise.

    >>> validate_upload(b"", "x.mp4", Paths.from_env(), 500)
    Traceback (most recent call last):
    ...
    core.live.worker.UploadError: The file is empty.
    """
    size = len(data)
    if size == 0:
        raise UploadError("The file is empty.")
    if size > max_mb * 1024 * 1024:
        raise UploadError("The file is too large ({size} MB; the limit is {limit} MB).",
                          size=round(size / 1024 / 1024, 1), limit=max_mb)
    ext = Path(filename or "").suffix.lower()
    if ext not in VIDEO_EXTS:
        raise UploadError("Not a video file: use one of {exts}.", exts=", ".join(VIDEO_EXTS))
    if _sniff_container(data[:64]) is None:
        raise UploadError("The file is not a video container (MP4, MOV, AVI, MKV or WebM), whatever its name says.")
    dest = paths.uploads / f"{slugify(Path(filename).stem)}-{uuid.uuid4().hex[:8]}{ext}"
    atomic_write_bytes(dest, data)
    try:
        _check_decodable(dest)
    except UploadError:
        dest.unlink(missing_ok=True)
        raise
    return dest


def _check_decodable(path: Path) -> None:
    from core.live.sources import SourceError, probe_video
    try:
        probe_video(path)          # container, codec, a first decodable frame
    except SourceError as e:
        raise UploadError("The video cannot be decoded: {why}", why=str(e)) from None
    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise UploadError("The video cannot be decoded: no readable frames.")


def describe_source(uri: str) -> str:
    if uri == DEMO:
        return "demo clip"
    if uri.startswith(("rtsp://", "rtsps://")):
        # never show camera credentials (rtsp://user:pass@host)
        rest = uri.split("://", 1)[1]
        return uri.split("://", 1)[0] + "://" + rest.split("@", 1)[-1]
    return Path(uri).name


def check_source_uri(uri: str, paths: Paths) -> str:
    """Normalise and check a source before use: ``demo``, an ``rtsp://`` URL with a host,
    or an existing video file. Raises :class:`UploadError` (clear message) otherwise."""
    uri = (uri or "").strip()
    if not uri or uri == DEMO:
        if not paths.demo_clip.exists():
            raise UploadError("The demo clip is missing: {path}", path=str(paths.demo_clip))
        return DEMO
    if "://" in uri:
        from core.live.sources import AddressError, validate_stream_url  # the same check as Settings
        try:
            return validate_stream_url(uri)
        except AddressError as e:
            raise UploadError(e.msgid, **e.args_) from None
    p = Path(uri)
    if not p.is_file():
        raise UploadError("No such video file: {path}", path=uri)
    _check_decodable(p)                 # a .txt renamed .mp4 or a 0-byte file: refused here
    return str(p)


# --- the worker -----------------------------------------------------------------------------
class CountingWorker:
    """One per process (``st.cache_resource`` in app.py); every browser tab shares it."""

    def __init__(self, db: Database, paths: Paths, settings: Settings | None = None, source: str | None = None,
                 realtime: bool = True, loop: bool = True, station: str = ""):
        self.db = db
        self.paths = paths
        self.settings = settings or db.load_settings()
        self.realtime = realtime        # pace file sources at their frame rate (a camera does by itself)
        self.loop = loop                # loop file sources (the demo plays forever)
        self.station = station
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._analysis = threading.Event()
        self._analysis_idle = threading.Event()
        self._reopen = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._status = WorkerStatus()
        self._source_uri = source or ""
        self.default_to_demo = True       # no source given: play the bundled demo (MSM_SOURCE=none: nothing)
        self._engine: Any = None
        self._logged_decision: Any = None   # the engine decision last written to the log
        self._stored_decision: Any = None   # ... and last stored for teach mode
        self._want_reset = False
        self._outline: Optional[list[list[float]]] = None    # the last counted sheet's corners
        self._settings_dirty = False
        self._latest: Optional[tuple[int, np.ndarray, Any]] = None      # (position, image, box)
        self._jpeg_cache: tuple[int, int, bytes] | None = None        # (position, width, bytes)
        self._fps_times: deque[float] = deque(maxlen=2048)
        self._src: Any = None
        self._detector: Any = None
        self._next_pos = 0                # monotonic frame position of the current source
        self._in_outage = False
        self._t_off = 0.0
        self._t_last = -1.0
        self._last_frame_t = 0.0
        self._last_saved_pos = 0
        self._last_save_t = 0.0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "CountingWorker":
        """Resume the open session (after a restart) and start the thread."""
        with self._lock:
            if self._thread and self._thread.is_alive():
                return self
            open_ = sessions.open_session(self.db, self.station)
            if open_ is not None:
                self._source_uri = open_.source or self._source_uri
                self._clean_temp_files(open_)
                log.info("resuming open session %s at count %d (position %d)", open_.id, open_.count,
                         open_.source_position)
            if not self._source_uri and self.default_to_demo:
                self._source_uri = DEMO if self.paths.demo_clip.exists() else ""
            self._status = replace(self._status, running=True, session=open_, source=self._source_uri,
                                   source_label=describe_source(self._source_uri) if self._source_uri else "")
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="counting-worker", daemon=True)
            self._thread.start()
        return self

    def _close_source(self) -> None:
        with self._lock:
            src = self._src
        if src is not None:
            try:
                src.close()
            except Exception:
                pass

    def _clean_temp_files(self, sess: SessionStatus) -> None:
        """A kill -9 during an atomic write leaves ``.name.xxxx.tmp``: never a final name."""
        try:
            folder = self.paths.sessions.joinpath(*sess.folder.split("/"))
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
        except OSError as e:
            log.warning("could not clean temp files of %s: %s", sess.id, e)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop and join the thread (``on_release`` of the cache calls this)."""
        self._stop.set()
        self._analysis.clear()
        self._close_source()            # a source waiting on a dead camera must not hold the join
        t = self._thread
        if t and t.is_alive() and t is not threading.current_thread():
            t.join(timeout)
        with self._lock:
            self._status = replace(self._status, running=False)

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    # -- reading (pages) --------------------------------------------------------------------
    def status(self) -> WorkerStatus:
        """The state for pages. While frames do not arrive, the loop is blocked in the
        source, so the source's own status (reconnecting…) and the time since the last
        frame are read here: an outage is visible at once."""
        with self._lock:
            src = self._src
            cur = self._status.source_status
            new = cur
            msg = self._status.source_message
            if src is not None:
                s = _state_name(getattr(src, "status", None))
                if s == "connecting" and getattr(src, "reconnects", 0):
                    s = "reconnecting"          # tried and failed at least once: say so
                if s == "stalled" and not is_stream_uri(self._status.source):
                    # a file cannot stall: no frame read for a while means this loop was busy
                    # (a model loading, a slow disk); that is a slow counter, not an outage
                    s = cur
                if s in ("connecting", "reconnecting", "stalled", "error") and cur != s:
                    new = s
                if s in ("reconnecting", "error"):
                    msg = str(getattr(src, "last_error", "") or msg)
            if new == "live" and is_stream_uri(self._status.source) and self._last_frame_t \
                    and time.monotonic() - self._last_frame_t > STALL_S:
                new = "stalled"             # a camera that stopped sending (a busy CPU never stalls a file)
            if new != cur or msg != self._status.source_message:
                lost = cur == "live" and new in ("reconnecting", "stalled", "error") and not self._in_outage
                if lost:
                    self._in_outage = True
                self._status = replace(self._status, source_status=new, source_message=msg,
                                       outages=self._status.outages + (1 if lost else 0))
            return replace(self._status, fps=self._recent_fps())

    def _recent_fps(self) -> float:
        """Frames processed per second over the last FPS_WINDOW_S, computed now: a loop
        that falls behind or stops shows it at once (never a stale figure)."""
        now = time.monotonic()
        times = self._fps_times
        while times and now - times[0] > FPS_WINDOW_S:
            times.popleft()
        if len(times) < 2:
            return 0.0
        span = max(now - times[0], times[-1] - times[0])
        return (len(times) - 1) / span if span > 0 else 0.0

    def latest_frame(self, annotated: bool = True) -> Optional[np.ndarray]:
        """The newest processed frame, with the sheet box and status drawn (lazily, here)."""
        with self._lock:
            latest = self._latest
            st = self._status
        if latest is None:
            return None
        _pos, img, box = latest
        if not annotated:
            return img
        return draw_overlay(img, box, st)

    def latest_jpeg(self, max_width: int = 960, quality: int = 80) -> Optional[bytes]:
        """The latest frame as JPEG, encoded at most once per frame (shared by all tabs)."""
        with self._lock:
            latest = self._latest
            cache = self._jpeg_cache
        if latest is None:
            return None
        if cache and cache[0] == latest[0] and cache[1] == max_width:
            return cache[2]
        img = self.latest_frame()
        if img is None:
            return None
        h, w = img.shape[:2]
        if w > max_width:
            img = cv2.resize(img, (max_width, int(h * max_width / w)), interpolation=cv2.INTER_AREA)
        data = capture.encode_jpeg(img, quality)
        with self._lock:
            self._jpeg_cache = (latest[0], max_width, data)
        return data

    # -- session control (pages, CLI) -------------------------------------------------------
    def start_session(self, name: Any, target: Any, user: str = "") -> SessionStatus:
        with self._lock:
            if self._analysis.is_set():
                raise SessionError("Defect analysis is running: wait for it to finish.")
            if not self._source_uri:
                raise SessionError("No video source: choose the demo clip, a file or an RTSP camera.")
            st = sessions.start_session(self.db, self.paths, name, target, source=self._source_uri, user=user,
                                        tz=self.settings.ui.timezone, station=self.station)
            # Counting starts from the scene as it is now: whatever is already in the bin
            # is the baseline, and positions of this session start after the current frame.
            if self._status.frames:
                capture.save_position(self.db, st.id, self._status.position)
            st = sessions.session_status(self.db, st.id)
            self._reset_engine()
            self._publish_session(st)
            return st

    def pause(self) -> SessionStatus:
        with self._lock:
            st = sessions.pause_session(self.db, self._require_session())
            self._publish_session(st)
            return st

    def resume(self) -> SessionStatus:
        with self._lock:
            if self._analysis.is_set():
                raise SessionError("Defect analysis is running: wait for it to finish.")
            st = sessions.resume_session(self.db, self._require_session())
            self._reset_engine()        # the scene may have changed while paused: new baseline
            self._publish_session(st)
            return st

    def finish(self) -> SessionStatus:
        with self._lock:
            st = sessions.finish_session(self.db, self.paths, self._require_session())
            self._publish_session(None)
            self._status = replace(self._status, counts_version=self._status.counts_version + 1)
            return st

    def correct(self, delta: int, reason: Any, user: str = "") -> SessionStatus:
        with self._lock:
            st = sessions.correct_count(self.db, self._require_session(), delta, reason, user=user)
            self._publish_session(st)
            return st

    def _require_session(self) -> str:
        sess = self._status.session
        if sess is None:
            raise SessionError("No session is open.")
        return sess.id

    def _publish_session(self, st: Optional[SessionStatus]) -> None:
        self._status = replace(self._status, session=st, counts_version=self._status.counts_version + 1)

    # -- source and settings ------------------------------------------------------------------
    def set_source(self, uri: str) -> str:
        """Switch the source (``demo``, a file, ``rtsp://…``); refused while a session is open."""
        with self._lock:
            if self._status.session is not None:
                raise SessionError("Finish the session before changing the video source.")
            uri = check_source_uri(uri, self.paths)
            self._source_uri = uri
            self._status = replace(self._status, source=uri, source_label=describe_source(uri),
                                   source_status="connecting", source_message="", outages=0, position=0)
            self._latest = None
            self._next_pos = 0
            self._reset_engine()
            self._reopen.set()
        self._close_source()                # stop waiting on the old source now
        return uri

    def apply_settings(self, settings: Settings) -> None:
        """Take new thresholds live (the loop applies them between two frames)."""
        with self._lock:
            self.settings = settings
            self._settings_dirty = True

    def pause_for_analysis(self, timeout: float = 10.0) -> bool:
        """Stop pulling frames so defect analysis gets the CPU/GPU memory; refused (False)
        while a session is counting. The source is closed and reopened afterwards."""
        with self._lock:
            sess = self._status.session
            if sess is not None and sess.is_active:
                return False
            self._analysis_idle.clear()
            self._analysis.set()
            self._status = replace(self._status, paused_for_analysis=True)
        self._close_source()
        if self.alive:
            self._analysis_idle.wait(timeout)
        return True

    def resume_after_analysis(self) -> None:
        with self._lock:
            self._reset_engine()            # the scene may have changed meanwhile: new baseline
            self._analysis.clear()
            self._status = replace(self._status, paused_for_analysis=False)

    # -- the loop --------------------------------------------------------------------------------
    def _set_source_status(self, status: str, message: str = "", outage: bool = False) -> None:
        with self._lock:
            self._status = replace(self._status, source_status=status, source_message=message,
                                   outages=self._status.outages + (1 if outage else 0))

    def _reset_engine(self) -> None:
        self._want_reset = True         # the loop thread rebuilds it before the next frame

    def _make_engine(self) -> Any:
        from core.counting import engine as counting
        with self._lock:
            cfg = self.settings
            self._settings_dirty = False
            provider = self._detector
        detect_fn = None
        if provider is not None and cfg.counting.verifier in ("auto", "detector"):
            try:
                detect_fn = provider()      # the trained metal_sheet detector, when there is one
            except Exception as e:          # no detector: the model-free verifier meets the bar alone
                log.warning("sheet detector unavailable (%s): model-free counting", e)
        return counting.CountingEngine(cfg.counting, counting.make_verifier(cfg.counting, detect_fn))

    def set_detector(self, provider: Any) -> None:
        """``provider() -> detect_fn | None`` (e.g. ``ModelManager.sheet_detect_fn``): the
        ``metal_sheet`` detector the verifier combines with the "top really changed"
        check. Taken at the next engine start (session start / resume)."""
        with self._lock:
            self._detector = provider

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stop.is_set():
            if self._analysis.is_set():
                self._analysis_idle.set()
                self._set_source_status("idle", "paused for defect analysis")
                self._stop.wait(0.2)
                continue
            uri = self._source_uri
            if not uri:
                self._set_source_status("idle", "no source")
                self._stop.wait(0.5)
                continue
            self._reopen.clear()
            try:
                got = self._consume(uri)
            except Exception as e:          # a broken source must never kill the worker
                log.warning("source %s failed: %s", describe_source(uri), e)
                got = 0
                with self._lock:
                    was_live = self._status.source_status in ("live", "stalled")
                self._set_source_status("reconnecting" if is_stream_uri(uri) else "error", str(e),
                                        outage=was_live)
            if self._stop.is_set():
                break
            if self._reopen.is_set():
                backoff = BACKOFF_START_S
                continue
            if got > 0 and self.loop and not is_stream_uri(uri):
                continue                         # the clip loops
            with self._lock:
                ended = self._status.source_status == "ended"
            # the source ended or failed: retry with exponential backoff (capped); an ended
            # file waits for a new source
            backoff = BACKOFF_START_S if got > 0 else min(backoff * 2, BACKOFF_MAX_S)
            if ended:
                while not self._stop.is_set() and not self._reopen.is_set():
                    self._stop.wait(0.2)
                continue
            self._stop.wait(backoff)
        self._set_source_status("idle", "stopped")

    def _open(self, uri: str) -> Any:
        from core.live.sources import open_source
        if is_stream_uri(uri):
            fps = self.settings.camera.fps_limit
            return open_source(uri, fps_limit=fps if fps and fps > 0 else None)
        # files: the worker loops (new engine baseline each pass) and paces them itself,
        # so positions map to file frames exactly (position % frame_count)
        return open_source(str(self.paths.demo_clip) if uri == DEMO else uri)

    def _consume(self, uri: str) -> int:
        """Read one opening of the source until it ends, fails, or we are told to stop.
        Returns the number of frames processed; a looping file reopens at once."""
        is_file = not is_stream_uri(uri)
        with self._lock:
            sess = self._status.session
            was_live = self._status.source_status in ("live", "stalled")
            # resume after a restart (0 = nothing processed yet; a replay of frame 0 would be
            # refused by the unique (session, frame) constraint anyway)
            if sess is not None and sess.source == uri and 0 < sess.source_position and \
                    sess.source_position + 1 > self._next_pos:
                self._next_pos = sess.source_position + 1
        self._set_source_status("connecting" if not was_live else "reconnecting", describe_source(uri))
        src = self._open(uri)
        with self._lock:
            self._src = src
        got = 0
        try:
            info = getattr(src, "info", None)
            n_frames = int(getattr(info, "frame_count", 0) or 0) if is_file else 0
            # a file resumes at its stored position (modulo the clip length when looping);
            # a live camera cannot seek: its positions simply continue
            skip = (self._next_pos % n_frames if n_frames else 0) if is_file else 0
            if skip == 0 and is_file and self._next_pos > 0:
                self._reset_engine()            # a new pass of the clip: the bin "empties"
            pace_t0: Optional[float] = None
            pace_v0 = pace_last = 0.0
            for frame in src:
                if self._stop.is_set() or self._reopen.is_set() or self._analysis.is_set():
                    break
                if skip > 0:
                    skip -= 1
                    continue
                pos = self._next_pos
                self._next_pos += 1
                got += 1
                if is_file and self.realtime:
                    vt = float(getattr(frame, "t", 0.0) or 0.0)
                    now = time.monotonic()
                    if pace_t0 is None or vt < pace_last or vt - pace_last > 2.0:
                        pace_t0, pace_v0 = now, vt          # start or jump: re-anchor the clock
                    pace_last = vt
                    wait = pace_t0 + (vt - pace_v0) - now
                    if wait > 0:
                        self._stop.wait(min(wait, 1.0))
                    elif wait < -0.5:                   # fell behind (busy CPU): play on from
                        pace_t0, pace_v0 = now, vt      # here instead of racing to catch up
                self._process(frame, pos, src)
        finally:
            with self._lock:
                self._src = None
            try:
                src.close()
            except Exception:
                pass
        if not self._stop.is_set() and not self._reopen.is_set() and not self._analysis.is_set():
            if is_file and self.loop and got > 0:
                return got                       # next pass right away
            self._set_source_status("reconnecting" if not is_file else "ended", "stream ended",
                                    outage=not is_file and got > 0)
        return got

    def _process(self, frame: Any, pos: int, src: Any) -> None:
        img = frame.image
        src_status = _state_name(getattr(src, "status", "live")) or "live"
        if "RECONNECTED" in str(getattr(frame, "flags", "")):
            with self._lock:
                if not self._in_outage:          # the outage was too short for a poll to see it
                    self._status = replace(self._status, outages=self._status.outages + 1)
                self._in_outage = False
        elif self._in_outage and src_status == "live":
            self._in_outage = False
        if src_status not in ("connecting", "live", "reconnecting", "stalled", "ended", "error"):
            src_status = "live"
        if self._want_reset:
            self._want_reset = False
            self._engine = None
            self._outline = None
        if self._engine is None or self._settings_dirty:
            if self._engine is not None and self._settings_dirty and hasattr(self._engine, "apply_settings"):
                with self._lock:
                    cfg = self.settings
                    self._settings_dirty = False
                self._engine.apply_settings(cfg.counting)
            else:
                self._engine = self._make_engine()
        # video time, kept monotonic across loops and reconnects (the engine handles dropped
        # frames by timestamps, so real gaps stay gaps)
        fps_src = float(getattr(src, "fps", 0) or 0) or 10.0
        raw_t = getattr(frame, "t", None)
        raw_t = pos / fps_src if raw_t is None else float(raw_t)
        if raw_t + self._t_off <= self._t_last:
            self._t_off = self._t_last + 1.0 / fps_src - raw_t
        t = raw_t + self._t_off
        self._t_last = t
        event = self._engine.update(img, pos, t)
        dec = getattr(self._engine, "last_decision", None)
        if dec is not None and dec is not self._logged_decision:
            self._logged_decision = dec
            # one line per decision, count or not, with the cues that decided (issue 12)
            log.info("decision frame %d: %s p=%.2f by %s; cues %s", dec.frame, "COUNT" if dec.accept else "no count",
                     dec.confidence if dec.accept else 1 - dec.confidence, ",".join(dec.decided_by),
                     " ".join(f"{k}={v:.3f}" for k, v in (dec.cues or {}).items()))
        with self._lock:
            sess = self._status.session
        if dec is not None and self._stored_decision is not dec and sess is not None and sess.is_active:
            self._stored_decision = dec
            try:    # every decision with its cues: teach mode's examples (issue 12)
                cycles.record_decision(self.db, sess.id, dec)
            except Exception as e:  # bookkeeping must never stop counting
                log.warning("counting cycle not stored: %s", e)
        result = None
        if event is not None and sess is not None and sess.is_active:
            # the top sheet's outline, drawn on the capture and on the live view until the next count
            self._outline = capture.sheet_outline(event.image, getattr(event, "box", None))
            result = capture.record_count(self.db, self.paths, sess.id, event, outline=self._outline)
            if result is not None:
                # published only after the commit: the UI never shows an uncommitted count
                self.db.log(f"Sheet #{result.count} detected", session_id=sess.id)
                with self._lock:
                    cur = self._status.session
                    if cur is not None and cur.id == sess.id:
                        cur = replace(cur, count=result.count, source_position=pos)
                        self._status = replace(self._status, session=cur, last_count_at=time.time(),
                                               counts_version=self._status.counts_version + 1)
        elif sess is not None and self._idle() and time.monotonic() - self._last_save_t > POSITION_SAVE_S:
            self._last_save_t = time.monotonic()
            capture.save_position(self.db, sess.id, pos)
        box = getattr(event, "box", None) if event is not None else self._engine_box()
        if self._outline is not None and box is not None:
            box = self._outline             # drawn as the sheet's outline instead of the change box
        now = time.monotonic()
        with self._lock:
            self._fps_times.append(now)
            self._latest = (pos, img, box)
            self._last_frame_t = now
            self._status = replace(self._status, source_status=src_status, source_message="",
                                   source_fps=self._nominal_fps(fps_src, src), frames=self._status.frames + 1,
                                   position=pos)

    def _nominal_fps(self, fps_src: float, src: Any) -> float:
        """The rate the source is meant to deliver: a camera's own fps, capped by the
        configured fps limit (frames above it are dropped on purpose, not missed)."""
        limit = float(getattr(src, "fps_limit", 0) or 0)
        return min(fps_src, limit) if limit > 0 else fps_src

    def _snapshot(self) -> Any:
        try:
            eng = self._engine
            return eng.snapshot() if eng is not None else None
        except Exception:
            return None

    def _idle(self) -> bool:
        """True when the scene is stable (nothing being placed): a safe resume point."""
        snap = self._snapshot()
        state = getattr(snap, "state", None) if snap is not None else None
        if state is None and isinstance(snap, dict):
            state = snap.get("state")
        return _state_name(state) in ("0", "stable", "empty", "idle")

    def _engine_box(self) -> Any:
        snap = self._snapshot()
        if snap is None:
            return None
        box = getattr(snap, "last_box", None)
        if box is None and isinstance(snap, dict):
            box = snap.get("last_box")
        return box


def _state_name(x: Any) -> str:
    """``"live"`` from "live", an Enum member (value or name) or None → ""."""
    if x is None:
        return ""
    v = getattr(x, "value", None)
    if isinstance(v, str):
        return v.lower()
    return str(getattr(x, "name", x)).lower()


# --- drawing the live view --------------------------------------------------------------------
def draw_overlay(img: np.ndarray, box: Any, st: WorkerStatus) -> np.ndarray:
    """The live frame with the sheet box and a green/red status banner."""
    out = img.copy() if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 240))
    if box is not None:
        try:
            if len(box) == 4 and hasattr(box[0], "__len__"):      # the sheet's outline (4 corners)
                capture.draw_outline(out, box, thick)
            else:
                x1, y1, x2, y2 = (int(round(float(v))) for v in box)
                cv2.rectangle(out, (x1, y1), (x2, y2), (40, 200, 40), thick)
        except (TypeError, ValueError):
            pass
    # No words on the frame: one JPEG is shared by every tab, and each tab has its own
    # language; the page states the status in words right beside the video.
    if st.session is None:
        text, color = "--", (90, 90, 90)
    elif st.monitoring:
        text, color = f"{st.count}/{st.session.target}", (40, 160, 40)
    else:
        text, color = f"|| {st.count}/{st.session.target}", (40, 40, 210)
    scale = max(0.45, min(h, w) / 600)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(out, (0, 0), (tw + 16, th + 16), color, -1)
    cv2.putText(out, text, (8, th + 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


# --- command line: a headless station and the memory benchmark -------------------------------
def _print_json(obj: Any) -> None:
    import json
    print(json.dumps(obj, ensure_ascii=False, default=str), flush=True)


def _status_json(st: WorkerStatus) -> dict[str, Any]:
    sess = st.session
    return {"source": describe_source(st.source) if st.source else "", "source_status": st.source_status,
            "outages": st.outages, "frames": st.frames, "position": st.position,
            "session_id": sess.id if sess else None, "count": st.count,
            "target": sess.target if sess else None, "is_active": bool(sess and sess.is_active)}


def cli_live(argv: list[str]) -> int:
    """``python -m core live --source PATH|rtsp://…|demo [--session NAME --target N]``

    Runs the counting worker without the UI (a headless station; also what the crash
    test kills). Resumes an open session if there is one. Prints one JSON status line per
    ``--every`` seconds on stdout and a final one; ``--until-ended`` stops when a file
    source ends, ``--finish`` then finishes the session.
    """
    import argparse
    import sys

    from core.platform import log as _log
    ap = argparse.ArgumentParser(prog="python -m core live", description=cli_live.__doc__.splitlines()[0])
    ap.add_argument("--source", default="", help="demo, a video file or rtsp:// URL (default: the open session's)")
    ap.add_argument("--session", default=None, help="start a session with this name (if none is open)")
    ap.add_argument("--target", default="100")
    ap.add_argument("--no-loop", action="store_true", help="play a file once instead of looping it")
    ap.add_argument("--fast", action="store_true", help="do not pace files in real time")
    ap.add_argument("--until-ended", action="store_true", help="exit when a file source has ended")
    ap.add_argument("--finish", action="store_true", help="finish the session on exit")
    ap.add_argument("--seconds", type=float, default=0.0, help="stop after this many seconds (0 = no limit)")
    ap.add_argument("--every", type=float, default=1.0, help="status line period (s)")
    ap.add_argument("--serve", action="store_true",
                    help="run as the app's worker process (commands from the database, status and "
                         "frames into --channel); started by core.live.process.LiveOwner")
    ap.add_argument("--channel", default="", help="with --serve: the shared channel file")
    ap.add_argument("--station", default="", help="with --serve: the station name")
    ap.add_argument("--parent", type=int, default=0, help="with --serve: exit when this process is gone")
    ap.add_argument("--view-fps", type=float, default=10.0, help="with --serve: frames/s encoded for viewers")
    a = ap.parse_args(argv)
    _log.setup()
    if a.serve:
        if not a.channel:
            print("error: --serve needs --channel", file=sys.stderr)
            return 2
        from core.live.process import serve
        try:
            return serve(a.channel, a.station, a.source, a.parent, a.view_fps, loop=not a.no_loop,
                         realtime=not a.fast)
        except (SessionError, UploadError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    paths = Paths.from_env().ensure()
    db = Database()
    w = CountingWorker(db, paths, realtime=not a.fast, loop=not a.no_loop)
    try:
        if a.source and sessions.open_session(db) is None:
            w.set_source(a.source)
        if a.session is not None and sessions.open_session(db) is None:
            w.start_session(a.session, a.target)     # before the thread: not a frame is missed
        w.start()
    except (SessionError, UploadError) as e:
        w.stop()
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    next_print = t0
    try:
        while True:
            st = w.status()
            if time.monotonic() >= next_print:
                _print_json(_status_json(st))
                next_print += a.every
            if a.until_ended and st.source_status == "ended":
                break
            if a.seconds and time.monotonic() - t0 > a.seconds:
                break
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        w.stop()
    st = w.status()
    out = _status_json(st)
    if a.finish and st.session is not None:
        done = sessions.finish_session(db, paths, st.session.id)
        out.update(count=done.count, finish_alert=done.finish_alert, is_active=False)
    _print_json(out)
    return 0
