"""Frame sources: a video file, the bundled demo clip, or an ``rtsp://`` camera.

Iterating a source yields :class:`Frame` objects (image, 0-based index, video time ``t``
in seconds, UTC wall time, flags). Black frames and frozen (repeated) frames of a failing
stream are flagged, not hidden — the counting engine decides what to do with them.
RTSP sources reconnect with exponential backoff (capped at a few seconds); their
``status`` can be read from any thread at any time.

Example:
    >>> from core.live.sources import open_source, probe_video
    >>> info = probe_video("data/demo/demo.mp4")              # doctest: +SKIP
    >>> with open_source("data/demo/demo.mp4") as src:          # doctest: +SKIP
    ...     for frame in src:
    ...         if FrameFlag.BLACK in frame.flags: continue
    ...         print(frame.index, frame.t, frame.image.shape)

Errors a user can cause (missing file, zero bytes, not a video, no decodable frames,
unreachable URL) raise :class:`SourceError` with one clear sentence.
"""
from __future__ import annotations

import enum
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

# FFmpeg's own console chatter ("moov atom not found", connection refused …) would reach
# the user next to our one clear message; it must be set before the first capture opens
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from core.counting.engine import BURST_DT  # noqa: E402  (one burst rule for the source and the engine)
from core.platform import log  # noqa: E402
from core.platform.urls import redact_url  # noqa: E402

_log = log.get("sources")

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(Exception):
    """Bad input a user can fix; ``str(e)`` is one clear sentence."""


class AddressError(ValueError):
    """A stream address that cannot be used: ``msgid`` + ``args_`` (pages translate), one sentence."""

    def __init__(self, msgid: str, **args: object):
        self.msgid, self.args_ = msgid, args
        super().__init__(msgid.format(**args))

    def translated(self, _: Callable[[str], str]) -> str:
        return _(self.msgid).format(**self.args_)


STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")


def validate_stream_url(url: object) -> str:
    """THE check of a camera / stream address, shared by Settings and the Live page: the
    address cleaned, or :class:`AddressError`. Empty = no camera (``""``).

    >>> validate_stream_url("  rtsp://10.0.0.5:554/stream1 ")
    'rtsp://10.0.0.5:554/stream1'
    >>> validate_stream_url("http://example.com/x y")
    Traceback (most recent call last):
    ...
    core.live.sources.AddressError: The camera address must not contain spaces or control characters.
    """
    from urllib.parse import urlsplit
    u = str(url or "").strip()
    if not u:
        return ""
    if len(u) > 500:
        raise AddressError("The camera address is too long (at most 500 characters).")
    if any(ch.isspace() for ch in u) or any(ord(ch) < 32 for ch in u):
        raise AddressError("The camera address must not contain spaces or control characters.")
    parts = urlsplit(u)
    if parts.scheme.lower() not in STREAM_SCHEMES:
        raise AddressError("The camera address must start with rtsp://, rtsps://, http:// or https://.")
    try:
        port = parts.port
    except ValueError:
        raise AddressError("The camera address has an invalid port.") from None
    if not parts.hostname or (port is not None and not 0 < port < 65536):
        raise AddressError("The camera address has no host name.")
    return u


class FrameFlag(enum.Flag):
    NONE = 0
    BLACK = enum.auto()        # (nearly) black frame — a failing camera or stream
    FROZEN = enum.auto()       # identical to the previous frame — the stream repeats itself
    RECONNECTED = enum.auto()  # first frame after an RTSP reconnect


class SourceStatus(str, enum.Enum):
    CONNECTING = "connecting"
    LIVE = "live"
    RECONNECTING = "reconnecting"
    STALLED = "stalled"        # connected, but no new frame for ``stall_after_s``
    ENDED = "ended"
    ERROR = "error"
    CLOSED = "closed"


@dataclass
class Frame:
    image: np.ndarray          # BGR uint8, source resolution
    index: int                 # 0-based, counts every frame read (looping continues counting)
    t: float                   # video time, seconds (monotonic across loops and reconnects)
    wall_time: datetime        # UTC, aware
    flags: FrameFlag = FrameFlag.NONE

    @property
    def is_black(self) -> bool:
        return FrameFlag.BLACK in self.flags

    @property
    def is_frozen(self) -> bool:
        return FrameFlag.FROZEN in self.flags


@dataclass
class VideoInfo:
    uri: str
    width: int
    height: int
    fps: float
    frame_count: int           # 0 when unknown (streams)
    duration_s: float          # 0 when unknown
    is_stream: bool
    codec: str = ""


@dataclass
class Backoff:
    """Reconnect delays: ``initial`` × ``factor``ⁿ, capped at ``cap`` seconds.

    >>> b = Backoff(0.5, 2.0, 4.0)
    >>> [b.delay(n) for n in range(5)]
    [0.5, 1.0, 2.0, 4.0, 4.0]
    """
    initial: float = 0.5
    factor: float = 2.0
    cap: float = 4.0

    def delay(self, attempt: int) -> float:
        return min(self.cap, self.initial * self.factor ** attempt)


def is_stream_uri(uri: str) -> bool:
    return str(uri).lower().startswith(STREAM_SCHEMES)


def black_or_frozen(img: np.ndarray, prev_sample: Optional[np.ndarray]) -> tuple[FrameFlag, np.ndarray]:
    """Cheap flags from a strided green sample (1/64 of the pixels): black when nearly all dark
    and flat, frozen when bit-identical to the previous sample (live sensors never repeat
    a frame exactly; a stalled stream or decoder does)."""
    sample = np.ascontiguousarray(img[::8, ::8, 1] if img.ndim == 3 else img[::8, ::8])
    flags = FrameFlag.NONE
    mean, std = cv2.meanStdDev(sample)
    if float(mean[0, 0]) < 12.0 and float(std[0, 0]) < 6.0:
        flags |= FrameFlag.BLACK
    if prev_sample is not None and prev_sample.shape == sample.shape and np.array_equal(prev_sample, sample):
        flags |= FrameFlag.FROZEN
    return flags, sample


def _set_timeouts(cap: cv2.VideoCapture, open_ms: int, read_ms: int) -> None:
    for prop, v in ((getattr(cv2, "CAP_PROP_OPEN_TIMEOUT_MSEC", None), open_ms),
                    (getattr(cv2, "CAP_PROP_READ_TIMEOUT_MSEC", None), read_ms)):
        if prop is not None:
            cap.set(prop, v)


def _open_capture(uri: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0) -> cv2.VideoCapture:
    if is_stream_uri(uri):
        # the timeouts must be given at open time for the FFmpeg backend to honour them
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(read_timeout_s * 1000)]
        if uri.lower().startswith("rtsp"):
            os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")
        return cv2.VideoCapture(uri, cv2.CAP_FFMPEG, params)
    return cv2.VideoCapture(uri, cv2.CAP_FFMPEG)


def _check_file(path: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise SourceError(f"video file not found: {path}")
    if p.is_dir():
        raise SourceError(f"not a video file (it is a folder): {path}")
    if p.stat().st_size == 0:
        raise SourceError(f"video file is empty (0 bytes): {path}")
    return p


def _probe_open(uri: str, timeout_s: float = 5.0) -> tuple[cv2.VideoCapture, np.ndarray, VideoInfo]:
    """Open ``uri`` and read its first frame: (open capture, first frame, info), or
    :class:`SourceError`. The capture stays open for the caller (one open per source)."""
    stream = is_stream_uri(uri)
    if not stream:
        _check_file(uri)
    cap = _open_capture(uri, timeout_s, timeout_s)
    try:
        if not cap.isOpened():
            if stream:
                raise SourceError(f"cannot reach the camera stream: {redact_url(uri)}")
            raise SourceError(f"not a readable video file: {uri}")
        ok, img = cap.read()
        if not ok or img is None:
            if stream:
                raise SourceError(f"the camera stream sends no frames: {redact_url(uri)}")
            raise SourceError(f"the video has no decodable frames: {uri}")
    except BaseException:
        cap.release()
        raise
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    if not (0.5 < fps < 1000):
        fps = 25.0 if stream else 30.0
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not stream else 0
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
    codec = "".join(chr((fourcc >> (8 * i)) & 0xFF) for i in range(4)).strip("\x00 ") if fourcc else ""
    h, w = img.shape[:2]
    info = VideoInfo(uri=uri if not stream else redact_url(uri), width=w, height=h, fps=fps,
                     frame_count=max(0, n), duration_s=(n / fps if n > 0 else 0.0), is_stream=stream, codec=codec)
    return cap, img, info


def probe_video(path_or_url: str | os.PathLike, timeout_s: float = 5.0) -> VideoInfo:
    """Open, read one frame, and describe the video; raises :class:`SourceError`.

    >>> probe_video("/nope.mp4")
    Traceback (most recent call last):
    ...
    core.live.sources.SourceError: video file not found: /nope.mp4
    """
    cap, _img, info = _probe_open(str(path_or_url), timeout_s)
    cap.release()
    return info


class FrameSource:
    """Iterable frames from a file or stream. Create with :func:`open_source`.

    Files end (``status`` "ended") unless ``loop``; streams reconnect forever with
    :class:`Backoff` until :meth:`close`. ``realtime`` paces a file at its own fps (the
    live page plays the demo clip like a camera); ``fps_limit`` drops frames above it.
    ``sleep`` and ``clock`` are injectable so reconnect logic is testable quickly.

    ``analysis_fps`` (counting a file or stream as fast as it decodes): frames above that
    rate are only grabbed — decoded but never converted to BGR, the costliest step after
    decoding — and not yielded; ``Frame.index`` and ``t`` stay the source's own frame
    number and time (``fps_limit``, by contrast, renumbers the frames it keeps). ``want(t)``
    does the same per frame: the consumer (the counting engine's ``wants``) says which
    frames it will analyse. ``flags=False`` leaves ``Frame.flags`` empty (no black/frozen
    sample per frame) for a consumer that judges frames itself (``core.live.count``).
    ``yuv=True`` (a file read start to end, as ``core count`` does): PyAV decodes it and
    ``Frame.image`` is a :class:`~core.counting.frames.YuvFrame`, the decoded planes, converted
    only where the consumer looks; numbering, times and ``want`` are the same. OpenCV reads
    what PyAV cannot open.
    """

    def __init__(self, uri: str, *, loop: bool = False, fps_limit: Optional[float] = None,
                 realtime: bool = False, analysis_fps: Optional[float] = None,
                 want: Optional[Callable[[float], bool]] = None, backoff: Optional[Backoff] = None,
                 open_timeout_s: float = 5.0, read_timeout_s: float = 5.0, stall_after_s: float = 3.0,
                 max_reconnects: Optional[int] = None, flags: bool = True, yuv: bool = False,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.uri = str(uri)
        self.is_stream = is_stream_uri(self.uri)
        self.loop, self.fps_limit, self.realtime = loop, fps_limit, realtime
        self.analysis_fps = analysis_fps if analysis_fps and analysis_fps > 0 else None
        self.want = want
        self._grab_only = bool(self.analysis_fps or want)
        self.flags = flags
        self.backoff = backoff or Backoff()
        self.open_timeout_s, self.read_timeout_s, self.stall_after_s = open_timeout_s, read_timeout_s, stall_after_s
        self.max_reconnects = max_reconnects
        self._sleep, self._clock = sleep, clock
        self._lock = threading.Lock()
        self._status = SourceStatus.CONNECTING
        self._closed = threading.Event()
        self._last_frame_clock: Optional[float] = None
        self.reconnects = 0
        self.frames_read = 0
        self.last_error = ""
        self.info: Optional[VideoInfo] = None
        self.fps = 0.0
        self._cap: Optional[cv2.VideoCapture] = None
        self._pending: Optional[np.ndarray] = None
        self._iterating = False
        # a file counted as fast as it decodes: pictures as decoded (YUV), converted only where
        # the consumer looks (see core.counting.frames); OpenCV reads it when PyAV cannot
        self._yuv = bool(yuv) and not self.is_stream and not loop and not realtime and not fps_limit
        self._av: Optional[tuple[Any, Any, Any]] = None     # (container, stream, first picture)
        if self._yuv:
            opened = _av_open(self.uri)
            if opened is not None:
                self._av, self.info = opened[:3], opened[3]
                self.fps = self.info.fps
            else:
                self._yuv = False
        if not self.is_stream and self._av is None:
            # bad files fail here, clearly; the capture stays open for iteration
            self._cap, self._pending, self.info = _probe_open(self.uri, open_timeout_s)
            self.fps = self.info.fps

    # --- status, readable from any thread
    @property
    def status(self) -> SourceStatus:
        with self._lock:
            st, last = self._status, self._last_frame_clock
        if st == SourceStatus.LIVE and last is not None and self._clock() - last > self.stall_after_s:
            return SourceStatus.STALLED
        return st

    def _set(self, st: SourceStatus) -> None:
        with self._lock:
            if self._status != SourceStatus.CLOSED or st == SourceStatus.CLOSED:
                self._status = st

    def close(self) -> None:
        self._closed.set()
        self._set(SourceStatus.CLOSED)
        if not self._iterating and self._cap is not None:   # never iterated: free it now
            self._cap.release()
            self._cap = None
        if not self._iterating and self._av is not None:
            self._av[0].close()
            self._av = None

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- iteration
    def _connect(self) -> Optional[cv2.VideoCapture]:
        cap = _open_capture(self.uri, self.open_timeout_s, self.read_timeout_s)
        if cap.isOpened():
            f = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
            if 0.5 < f < 1000:
                self.fps = f
            elif not self.fps:
                self.fps = 25.0
            return cap
        cap.release()
        return None

    def __iter__(self) -> Iterator[Frame]:
        if self._av is not None:
            av_open, self._av = self._av, None
            yield from self._iter_yuv(_yuv_frames(*av_open))
            return
        index = 0
        t_offset = 0.0           # keeps t monotonic across loops / reconnects
        last_t = -1.0
        prev_sample: Optional[np.ndarray] = None
        attempt = 0
        reconnected = False
        start_clock = self._clock()
        next_emit_t = 0.0
        next_analysis_t = 0.0
        file_index = 0
        read_t = -1.0            # time of the last frame read (kept or not)
        self._iterating = True
        if self._cap is not None:               # a file, opened while probing
            self._set(SourceStatus.LIVE)
            with self._lock:
                self._last_frame_clock = self._clock()
        try:
            while not self._closed.is_set():
                if self._cap is None:
                    self._set(SourceStatus.RECONNECTING if self.frames_read else SourceStatus.CONNECTING)
                    cap = self._connect()
                    if cap is None:
                        self.last_error = f"cannot open {redact_url(self.uri)}"
                        if not self.is_stream:
                            self._set(SourceStatus.ERROR)
                            raise SourceError(f"not a readable video file: {self.uri}")
                        if self.max_reconnects is not None and attempt >= self.max_reconnects:
                            self._set(SourceStatus.ERROR)
                            return
                        d = self.backoff.delay(attempt)
                        attempt += 1
                        self.reconnects += 1
                        _log.warning("stream unreachable, retrying in %.1f s", d)
                        self._closed.wait(d) if self._sleep is time.sleep else self._sleep(d)
                        continue
                    self._cap = cap
                    if self.frames_read:
                        reconnected = True
                    self._set(SourceStatus.LIVE)
                    with self._lock:
                        self._last_frame_clock = self._clock()
                cap = self._cap
                img: Optional[np.ndarray]
                if self._pending is not None:      # the frame read while probing
                    ok, img, self._pending = True, self._pending, None
                elif self._grab_only:
                    ok, img = cap.grab(), None     # converted below only when it is analysed
                else:
                    ok, img = cap.read()
                if not ok or (img is None and not self._grab_only):
                    cap.release()
                    self._cap = None
                    if self.is_stream:
                        self.last_error = "stream read failed"
                        if self.max_reconnects is not None and attempt >= self.max_reconnects:
                            self._set(SourceStatus.ERROR)
                            return
                        d = self.backoff.delay(attempt)
                        attempt += 1
                        self.reconnects += 1
                        self._set(SourceStatus.RECONNECTING)
                        _log.warning("stream lost, reconnecting in %.1f s", d)
                        self._closed.wait(d) if self._sleep is time.sleep else self._sleep(d)
                        continue
                    if self.loop and self.frames_read:
                        t_offset = last_t + 1.0 / (self.fps or 30.0)
                        file_index = 0
                        continue
                    self._set(SourceStatus.ENDED)
                    return
                attempt = 0
                now = self._clock()
                with self._lock:
                    self._last_frame_clock = now
                if self.is_stream:
                    t = now - start_clock
                else:
                    # constant frame rate files: the frame number fixes the time exactly
                    t = t_offset + file_index / (self.fps or 30.0)
                    file_index += 1
                self.frames_read += 1
                # frames that arrive less than 4 ms apart are a burst of buffered frames (a
                # stream that just connected or caught up): their times say nothing about
                # their spacing, so no rate limit drops them
                burst = self.is_stream and 0.0 < t - read_t < BURST_DT
                read_t = t
                if self._grab_only:
                    if ((self.analysis_fps and t + 1e-6 < next_analysis_t and not burst)
                            or (self.want and not self.want(t))):
                        index += 1             # skipped, never converted: the numbering stays the source's
                        continue
                    if self.analysis_fps:
                        next_analysis_t = max(next_analysis_t + 1.0 / self.analysis_fps, t)
                    if img is None:
                        ok, img = cap.retrieve()
                        if not ok or img is None:
                            index += 1
                            continue
                if self.fps_limit and self.fps_limit > 0 and t + 1e-6 < next_emit_t and not burst:
                    continue          # drop: above the fps limit
                if self.fps_limit and self.fps_limit > 0:
                    next_emit_t = max(next_emit_t + 1.0 / self.fps_limit, t)
                if self.realtime and not self.is_stream:
                    wait = (start_clock + t) - self._clock()
                    if wait > 0:
                        self._closed.wait(wait)
                flags = FrameFlag.NONE
                if self.flags:
                    flags, prev_sample = black_or_frozen(img, prev_sample)
                if reconnected:
                    flags |= FrameFlag.RECONNECTED
                    reconnected = False
                last_t = t
                yield Frame(img, index, t, datetime.now(timezone.utc), flags)
                index += 1
        finally:
            if self._cap is not None:
                self._cap.release()
                self._cap = None
            if self._closed.is_set():
                self._set(SourceStatus.CLOSED)

    def _iter_yuv(self, frames: Iterator[Any]) -> Iterator[Frame]:
        """:meth:`__iter__` for a file decoded by PyAV: the same numbering, times, ``want`` and
        ``analysis_fps``; the images are :class:`~core.counting.frames.YuvFrame` (or BGR
        arrays for pictures in other layouts)."""
        self._iterating = True
        self._set(SourceStatus.LIVE)
        prev_sample: Optional[np.ndarray] = None
        next_analysis_t = 0.0
        fps = self.fps or 30.0
        try:
            for index, make in enumerate(frames):
                if self._closed.is_set():
                    return
                with self._lock:
                    self._last_frame_clock = self._clock()
                t = index / fps               # constant frame rate files: the frame number fixes the time
                self.frames_read += 1
                if self.analysis_fps:
                    if t + 1e-6 < next_analysis_t:
                        continue
                    next_analysis_t = max(next_analysis_t + 1.0 / self.analysis_fps, t)
                if self.want and not self.want(t):
                    continue                  # decoded, never converted
                img = make()
                flags = FrameFlag.NONE
                if self.flags:
                    flags, prev_sample = black_or_frozen(img.y if hasattr(img, "y") else img, prev_sample)
                yield Frame(img, index, t, datetime.now(timezone.utc), flags)
            self._set(SourceStatus.ENDED)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
            if self._closed.is_set():
                self._set(SourceStatus.CLOSED)


# H.264/HEVC pictures no other picture refers to (most B pictures) are decoded without their
# deblocking filter: nothing is predicted from them, so nothing drifts, and the engine reads
# 160 px and 640 px reductions of them. Measured on 720p bench clips: decoding ~10 % cheaper,
# such a picture's grey at 160 px off by 0.04-0.06 levels rms (at most 6); a count's image
# may show the encoder's block edges a little more
SKIP_NONREF_DEBLOCK = True


def _av_open(path: str) -> Optional[tuple[Any, Any, Any, VideoInfo]]:
    """Open a file with PyAV and decode its first picture: (container, stream, picture, info),
    or None when PyAV cannot (then OpenCV opens it, and says clearly what is wrong)."""
    container = None
    try:
        import av
        _check_file(path)
        # the stream probe decodes key frames only: by default it decodes the first ~7 pictures
        # (to guess the decoder's delay) and then they are decoded again. Its options reach the
        # probe's decoder alone, not the one that decodes the file below: the same pictures, bit
        # for bit (checked on MJPEG, MPEG-4 and H.264 in mp4, avi, mkv, ts and mov); a 720p clip
        # opens in 0.2 ms instead of 7.8 (~2 % of counting 11 s of fast-fed 720p at 14 frames/s)
        container = av.open(path, options={"skip_frame": "nonkey"})
        stream = container.streams.video[0]
        # FFmpeg's default (slice threads): measured on the 720p bench clips, ~12 % less CPU per
        # frame than frame threads ("AUTO") and less wall time too. One thread would cost ~3 %
        # less CPU but ~25 % more wall time (clips/heldout3 fast_feed_720p15: count/decode by the clock
        # 0.86 → 0.68): not a trade for a counter that runs next to the line
        if SKIP_NONREF_DEBLOCK:
            stream.codec_context.options = {"skip_loop_filter": "noref"}
        first = next(container.decode(stream))
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        if not (0.5 < fps < 1000):
            fps = 30.0
        n = int(stream.frames or 0)
        info = VideoInfo(uri=path, width=first.width, height=first.height, fps=fps, frame_count=n,
                         duration_s=(n / fps if n > 0 else 0.0), is_stream=False,
                         codec=str(stream.codec_context.name or ""))
        return container, stream, first, info
    except Exception as e:        # no PyAV, a file only OpenCV reads, or a bad file: OpenCV's turn
        _log.debug("PyAV does not read %s (%s): OpenCV opens it", path, e)
        if container is not None:
            try:
                container.close()
            except Exception:
                pass
        return None


def _yuv_frames(container: Any, stream: Any, first: Any) -> Iterator[Callable[[], Any]]:
    """For each decoded picture (``first`` was decoded while opening), a function that makes
    its frame: a :class:`~core.counting.frames.YuvFrame` for limited-range 4:2:0 video (what
    cameras and encoders write), else a BGR array."""
    from core.counting.frames import YuvFrame

    def maker(fr: Any) -> Callable[[], Any]:
        if fr.format.name == "yuv420p" and fr.color_range != 2:     # 2: full range (JPEG)
            def make() -> Any:
                h, w = fr.height, fr.width
                pl = fr.planes
                y = np.frombuffer(pl[0], np.uint8).reshape(-1, pl[0].line_size)[:h, :w]
                u = np.frombuffer(pl[1], np.uint8).reshape(-1, pl[1].line_size)[:(h + 1) // 2, :(w + 1) // 2]
                v = np.frombuffer(pl[2], np.uint8).reshape(-1, pl[2].line_size)[:(h + 1) // 2, :(w + 1) // 2]
                return YuvFrame(y, u, v, to_bgr=lambda: fr.to_ndarray(format="bgr24"))
            return make
        return lambda: fr.to_ndarray(format="bgr24")

    try:
        yield maker(first)
        for fr in container.decode(stream):
            yield maker(fr)
    except Exception as e:    # a damaged tail: the frames decoded so far count, as with OpenCV
        _log.warning("decoding %s stopped: %s", container.name, e)
    finally:
        container.close()


def open_source(uri: str | os.PathLike, *, loop: bool = False, fps_limit: Optional[float] = None,
                realtime: bool = False, **kw: Any) -> FrameSource:
    """A :class:`FrameSource` for a file path, the demo clip (``"demo"``) or a stream URL.

    Files are probed at once, so a bad file raises :class:`SourceError` here; a stream
    that cannot be reached is retried while iterating (watch ``status``).
    """
    u = str(uri)
    if u == "demo":
        from core.platform.paths import Paths
        u = str(Paths.from_env().demo_clip)
    return FrameSource(u, loop=loop, fps_limit=fps_limit, realtime=realtime, **kw)
