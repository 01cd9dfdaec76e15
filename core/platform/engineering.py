"""Engineer settings: apply a change (validate → persist with audit → hand it to the running
worker), read the audit trail, validate and store uploaded alert sounds and ROI masks, and
draw the counted region on a frame for the ROI editor.

The Settings page is a thin view over these functions; the CLI and tests use them directly.

Example:
    >>> from core.platform.storage import Database
    >>> from core.platform.settings import Settings
    >>> db = Database("sqlite://")
    >>> s = Settings(); s.counting.motion_sensitivity = 0.7
    >>> apply_settings(db, s, who="eng").changed
    ['counting.motion_sensitivity']
    >>> [(a.key, a.old, a.new, a.who) for a in audit_trail(db)]
    [('counting.motion_sensitivity', 0.5, 0.7, 'eng')]
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import numpy as np

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes
from core.platform.settings import Settings
from core.platform.urls import redact_url  # noqa: F401  (re-exported for the pages)

log = get("engineering")

SOUND_KINDS = {"over_target": "over_target_sound", "finish_under": "finish_under_sound",
               "finish_over": "finish_over_sound"}
SOUND_EXTS = (".mp3", ".wav")
MAX_SOUND_BYTES = 5 * 2 ** 20
MAX_SOUND_S = 30.0
MAX_MASK_BYTES = 20 * 2 ** 20


class InputError(ValueError):
    """Bad engineer input: one clear English message (pages translate the msgid)."""

    def __init__(self, msgid: str, **args: Any):
        self.msgid, self.args_ = msgid, args
        super().__init__(msgid.format(**args))

    def translated(self, _: Any) -> str:
        return _(self.msgid).format(**self.args_)


# --------------------------------------------------------------------------- apply + audit
@dataclass
class ApplyResult:
    changed: list[str]
    applied_live: bool = False        # True when the running worker took the new settings
    live_error: str = ""
    source_reopened: bool = False     # the worker reopened the camera with the new URL / limits
    camera_deferred: bool = False     # camera change waits until the open session is finished
    camera_kept: str = ""             # the camera changed but the counter still watches this source


def apply_settings(db: Any, new: Settings, who: str, worker: Any = None) -> ApplyResult:
    """Validate and persist ``new`` (audited per field), then push it to the running
    counting worker so it takes effect without a restart.

    Raises ValueError (every problem in one message) when ``new`` is invalid; nothing is
    saved then.
    """
    old_url = db.load_settings().camera.rtsp_url
    changed = db.save_settings(new, who=who or "engineer")
    res = ApplyResult(changed=changed)
    fn = getattr(worker, "apply_settings", None)
    if changed and callable(fn):
        try:
            fn(new)
            res.applied_live = True
        except Exception as e:  # saved anyway; the worker picks it up on its next start
            log.warning("worker.apply_settings failed: %s", e, exc_info=True)
            res.live_error = str(e)
    # the camera itself (URL, FPS limit, resolution) is reopened when the worker is watching
    # the configured camera; the worker refuses while a session is open (never mid-batch)
    if any(k.startswith("camera.") for k in changed) and callable(getattr(worker, "set_source", None)):
        try:
            current = str(getattr(worker.status(), "source", "") or "")
        except Exception:
            current = ""
        if old_url and current == old_url and new.camera.rtsp_url:
            try:
                worker.set_source(new.camera.rtsp_url)
                # "reopened" only when the running counter really watches the new address now
                res.source_reopened = str(getattr(worker.status(), "source", "")) == new.camera.rtsp_url
            except Exception as e:  # e.g. a session is open: the camera changes after it
                log.info("camera not reopened now: %s", e)
                res.camera_deferred = True
        if not res.source_reopened and not res.camera_deferred:
            try:
                res.camera_kept = str(getattr(worker.status(), "source_label", "") or current or "–")
            except Exception:
                res.camera_kept = current or "–"
    return res


@dataclass
class AuditEntry:
    key: str
    old: Any
    new: Any
    who: str
    at: datetime


def audit_trail(db: Any, limit: int = 100, key_prefix: str = "") -> list[AuditEntry]:
    """Newest settings changes first: who, when, old → new."""
    from sqlalchemy import select

    from core.platform.storage import SettingAuditRow
    q = select(SettingAuditRow).order_by(SettingAuditRow.at.desc(), SettingAuditRow.id.desc()).limit(limit)
    if key_prefix:
        q = q.where(SettingAuditRow.key.startswith(key_prefix))
    with db.session() as s:
        return [AuditEntry(r.key, r.old, r.new, r.who, r.at) for r in s.scalars(q)]


def validate_camera_url(url: Any) -> str:
    """The camera address cleaned, or :class:`InputError`. Empty = no camera (demo clip).

    >>> validate_camera_url("  rtsp://10.0.0.5:554/stream1 ")
    'rtsp://10.0.0.5:554/stream1'
    >>> validate_camera_url("ftp://x")
    Traceback (most recent call last):
    ...
    core.platform.engineering.InputError: The camera address must start with rtsp://, rtsps://, http:// or https://.
    """
    from core.live.sources import AddressError, validate_stream_url  # ONE validator (Live uses it too)
    try:
        return validate_stream_url(url)
    except AddressError as err:
        raise InputError(err.msgid, **err.args_) from None


# --------------------------------------------------------------------------- alert sounds
@dataclass
class SoundInfo:
    codec: str
    duration_s: float
    sample_rate: int
    channels: int


def validate_sound(data: bytes, filename: str) -> SoundInfo:
    """Decode an uploaded .mp3 / .wav completely (PyAV); raise :class:`InputError` when it
    is not a playable sound. A renamed text file, a truncated or empty file all fail here.

    >>> from core.live.alerts import synth_wav, DEFAULT_TONES
    >>> validate_sound(synth_wav(DEFAULT_TONES["finish_under"]), "a.wav").codec
    'pcm_s16le'
    """
    ext = Path(filename or "").suffix.lower()
    if ext not in SOUND_EXTS:
        raise InputError("Only .mp3 and .wav sounds can be used (got '{ext}').", ext=ext or filename)
    if not data:
        raise InputError("The sound file is empty.")
    if len(data) > MAX_SOUND_BYTES:
        raise InputError("The sound file is too large ({mb} MB, at most {limit} MB).",
                         mb=f"{len(data) / 2**20:.1f}", limit=MAX_SOUND_BYTES // 2**20)
    import av
    try:
        with av.open(io.BytesIO(data), mode="r", format={".mp3": "mp3", ".wav": "wav"}[ext]) as box:
            if not box.streams.audio:
                raise InputError("The file has no audio stream.")
            stream = box.streams.audio[0]
            samples, rate, channels = 0, 0, 0
            for frame in box.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate or rate
                channels = len(frame.layout.channels) if frame.layout else channels
            codec = stream.codec_context.name
    except InputError:
        raise
    except Exception as e:  # av.error.InvalidDataError and friends
        log.info("sound %s rejected: %s", filename, e)
        raise InputError("The file could not be decoded as {kind} audio.", kind=ext[1:].upper()) from None
    if samples == 0 or rate == 0:
        raise InputError("The sound file holds no audio samples.")
    dur = samples / rate
    if dur > MAX_SOUND_S:
        raise InputError("The sound is too long ({s} s, at most {limit} s).", s=f"{dur:.0f}", limit=int(MAX_SOUND_S))
    return SoundInfo(codec=codec, duration_s=round(dur, 3), sample_rate=rate, channels=channels)


def save_sound(paths: Paths, kind: str, data: bytes, filename: str) -> str:
    """Validate and store an alert sound under ``data/sounds``; returns the name to put in
    ``settings.alerts.<kind>_sound`` (relative to ``data/sounds``)."""
    if kind not in SOUND_KINDS:
        raise InputError("Unknown alert sound '{kind}'.", kind=kind)
    validate_sound(data, filename)
    name = f"custom_{kind}{Path(filename).suffix.lower()}"
    for old in paths.sounds.glob(f"custom_{kind}.*"):  # one custom file per alert
        if old.name != name:
            old.unlink(missing_ok=True)
    atomic_write_bytes(paths.sounds / name, data)
    return name


# --------------------------------------------------------------------------- ROI and mask
def parse_roi(x1: Any, y1: Any, x2: Any, y2: Any, width: int = 0, height: int = 0) -> Optional[list[int]]:
    """A validated ROI ``[x1, y1, x2, y2]`` in source pixels, clipped to the frame when its
    size is known; the whole frame (all zeros, or exactly the frame) gives None.

    >>> parse_roi(10, 20, 110, 220, 640, 480)
    [10, 20, 110, 220]
    >>> parse_roi(0, 0, 640, 480, 640, 480) is None
    True
    """
    try:
        box = [int(round(float(v))) for v in (x1, y1, x2, y2)]
    except (TypeError, ValueError):
        raise InputError("The region must be four whole numbers of pixels.") from None
    if box == [0, 0, 0, 0]:
        return None
    if width > 0 and height > 0:
        box = [max(0, min(box[0], width)), max(0, min(box[1], height)),
               max(0, min(box[2], width)), max(0, min(box[3], height))]
        if box == [0, 0, width, height]:
            return None
    if box[2] - box[0] < 16 or box[3] - box[1] < 16:
        raise InputError("The region is too small: right must be at least 16 px beyond left and "
                         "bottom at least 16 px below top.")
    return box


def save_mask(paths: Paths, data: bytes, filename: str) -> str:
    """Store a counted-area mask (PNG/JPEG, white = counted); returns its path relative to
    ``data/``. The image is decoded first, so a broken file never reaches the worker."""
    import cv2
    if not data:
        raise InputError("The mask file is empty.")
    if len(data) > MAX_MASK_BYTES:
        raise InputError("The mask file is too large (at most {limit} MB).", limit=MAX_MASK_BYTES // 2**20)
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise InputError("The mask could not be read as an image (use a PNG, white = counted area).")
    if int((img > 127).sum()) == 0:
        raise InputError("The mask is completely black: nothing would be counted.")
    ok, png = cv2.imencode(".png", np.where(img > 127, 255, 0).astype(np.uint8))
    rel = Path("masks") / "counting_mask.png"
    atomic_write_bytes(paths.data / rel, png.tobytes())
    return str(rel)


def roi_from_corners(p1: tuple[float, float], p2: tuple[float, float], width: int, height: int) -> list[int]:
    """The counting area spanned by two clicked corners (any order), clipped to the frame.

    >>> roi_from_corners((600.4, 20.2), (100.6, 400.0), 640, 480)
    [101, 20, 600, 400]
    >>> roi_from_corners((-5, -5), (700, 500), 640, 480)
    [0, 0, 640, 480]
    """
    xs = sorted((min(max(int(round(p1[0])), 0), width), min(max(int(round(p2[0])), 0), width)))
    ys = sorted((min(max(int(round(p1[1])), 0), height), min(max(int(round(p2[1])), 0), height)))
    return [xs[0], ys[0], xs[1], ys[1]]


def mask_from_polygon(points: list[tuple[float, float]], width: int, height: int) -> bytes:
    """A mask PNG of the frame's size: white = counted, black = the clicked polygon (the part of
    the frame to ignore: a walkway, a second stack). Needs three points or more.

    >>> import cv2
    >>> png = mask_from_polygon([(0, 0), (10, 0), (10, 10), (0, 10)], 40, 20)
    >>> m = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    >>> m.shape, int(m[5, 5]), int(m[5, 30])
    ((20, 40), 0, 255)
    """
    import cv2
    if len(points) < 3:
        raise InputError("Click at least three points around the part to ignore.")
    m = np.full((height, width), 255, np.uint8)
    cv2.fillPoly(m, [np.array([[round(x), round(y)] for x, y in points], np.int32)], 0)
    ok, png = cv2.imencode(".png", m)
    return png.tobytes()


def reference_frame(paths: Paths, worker: Any = None) -> Optional[np.ndarray]:
    """A BGR frame to draw the ROI on: the worker's latest frame when it has one, else the
    first frame of the bundled demo clip (never opens the camera from the UI — that could
    block on a dead RTSP URL)."""
    for name in ("latest_frame", "last_frame", "frame"):
        v = getattr(worker, name, None) if worker is not None else None
        try:
            if callable(v):
                try:
                    v = v(annotated=False)   # core.live.worker: the clean frame, no overlay
                except TypeError:
                    v = v()
        except Exception:
            v = None
        img = getattr(v, "image", v)
        if isinstance(img, np.ndarray) and img.ndim == 3:
            return img
    clip = paths.demo_clip
    if clip.exists():
        import cv2
        cap = cv2.VideoCapture(str(clip))
        try:
            ok, img = cap.read()
        finally:
            cap.release()
        if ok:
            return img
    return None


def roi_preview(frame: np.ndarray, roi: Optional[list[int]], mask: Optional[np.ndarray] = None) -> np.ndarray:
    """The frame with everything outside the counted area dimmed and the ROI outlined (BGR)."""
    import cv2
    h, w = frame.shape[:2]
    keep = np.zeros((h, w), np.uint8)
    if roi:
        x1, y1, x2, y2 = roi
        keep[max(0, y1):min(h, y2), max(0, x1):min(w, x2)] = 1
    else:
        keep[:] = 1
    if mask is not None:
        m = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST) if mask.shape[:2] != (h, w) else mask
        keep &= (m > 127).astype(np.uint8)
    out = frame.copy()
    out[keep == 0] = (out[keep == 0] * 0.35).astype(np.uint8)
    if roi:
        cv2.rectangle(out, (roi[0], roi[1]), (roi[2] - 1, roi[3] - 1), (0, 200, 0), max(2, w // 300))
    return out


