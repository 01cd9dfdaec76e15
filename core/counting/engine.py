"""The counting engine: one metal sheet = one occlusion cycle that leaves a new top.

Stages (Frigate-style, each one cheap until a decision is due)::

    frame ─► reduce (strided + INTER_AREA to ~160 px, grey + red−blue, gain-normalised)  every frame
          ─► change vs last stable background / vs previous frame (shake tolerant)     every frame
          ─► state machine  STABLE → MOTION ⇄ OCCLUDED → SETTLING                      every frame
          ─► cycle figures (peak change, swept area, swept edges, way in/out)          cycle frames
          ─► verify: cues + one logistic rule (core.counting.cues), optional detector  decision frames only
          ─► CountEvent (with the clean stable full-resolution frame to capture)

* STABLE — the scene matches the background ``B`` (the last stable frame).
* MOTION — something moves (an arm, its shadow, a sheet in flight).
* OCCLUDED — nothing moves but the entry zone (a thin band along the frame edge, or the ring
  around the ROI) still differs from ``B``: an arm pausing in view. No decision meanwhile.
* SETTLING — nothing moves and the entry zone matches ``B`` again (arm gone); after
  ``settle_s`` of stillness the verifier compares ``B`` with the new stable frame ``S``.
  The arm must have been seen LEAVING (motion in a wider edge band, or the entry zone
  clearing) since the last motion inside; otherwise (a dark sleeve on a dark floor the camera
  cannot see) the engine waits ``NO_EXIT_SETTLE_S`` instead. A faint trace left on ONE side of
  the entry zone (a few pixels: an arm it can hardly tell from the floor, resting) holds a
  decision whose way out was only inferred, up to ``FAINT_RIM_S``. A trace on the last moving or
  first still frame that is gone for ``TAIL_CLEAR_S`` is the arm's tail slipping out: its way
  out (a fast arm that crossed the edge band between two frames) -- only where the stillness
  began from motion, not as the zone fell back from OCCLUDED with nothing moving. A trace that
  shows after the stillness began while a little of the area still differs holds the decision
  until the zone has been clear ``LATE_TRACE_CLEAR_S`` (an arm the colour of the bin's rim,
  leaving, fades in and out of the zone), or ``TRACE_CLEAR_S`` where more differs (hands resting
  over the sheet), even after a way out was seen. Either way ``S`` becomes the new background --
  except after a "no sheet" verdict while a good part of the area still differs (hands hovering
  unseen at the edge): then the engine waits ``DEFER_S`` or until something moves again, so that
  the background never takes them in.
* Fast feeding: when the next arm moves into the entry zone before ``settle_s`` ran out, the
  cycle is decided at once on the last still frame, so two sheets never merge. That frame
  starts the next cycle; none of its figures go into the decided one.
* Jolts: a still (or idle) scene that moves and, within ``JOLT_MAX_FRAMES``, is back at the still
  frame before it was jolted by the camera (shake, a badly compressed run of frames), not entered
  by an arm: the jolt is undone, and the stillness goes on with its time.

The verifier (:class:`ModelFreeVerifier`) measures per decision: fine texture change, tone
change with a cut edge (soft shadows and light do not count), new/lost/parallel long edges,
thin outline lines (an identical sheet laid a pixel or more off), whether the changed region
is the same surface moved (rigid ECC registration: a nudge), and from the cycle: the peak
changed area, the area swept and the area whose sharp structure was swept (a carried sheet vs
a bare arm or a passing shadow). One logistic model combines them into a probability with the
two cues that decided (:mod:`core.counting.cues`); a station can fit its own in teach mode
(:mod:`core.counting.teach`). Every decision is kept in :attr:`CountingEngine.decisions`.

Failing streams: black frames are ignored (they never advance anything); a frame with a
repeated or older timestamp is ignored; dropped frames are handled through the
timestamps (a gap never counts as more than 0.12 s of stillness). A frozen picture (the
same image again with a new timestamp) shows "nothing moved" — it cannot create motion,
and while it shows the arm at the rim it can never lead to a decision. Something left in
the entry zone for good (10 s still) makes the engine re-learn the scene without counting,
so counting never blocks.

Per-frame cost: green channel + two strided chroma channels at ~160/80 px, a coarse gain
map, 5×5 min/max comparisons, a 5×5 high-pass during cycles (~0.2–0.3 ms at 720p)
against ~1.2–1.7 ms of H.264 decoding; a decision costs ~10–20 ms once per arm cycle.
While the scene is idle only ``CountingSettings.idle_fps`` frames/s are analysed (15,
:meth:`CountingEngine.wants`; an arm takes many frames to come in), every frame once something
moves; a file counted by ``core.live.count`` does not even convert the skipped frames to BGR.

Example:
    >>> from core.counting import CountingEngine
    >>> from core.platform.settings import CountingSettings
    >>> eng = CountingEngine(CountingSettings())
    >>> for i, frame in enumerate(frames):                     # doctest: +SKIP
    ...     ev = eng.update(frame, i, i / 30.0)
    ...     if ev: print(ev.index, ev.frame, ev.reason)
"""
from __future__ import annotations

import enum
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Protocol, Sequence, runtime_checkable

import cv2
import numpy as np

from core.counting.cues import STRONG_STILL, shift_image
from core.counting.frames import Image, YuvFrame, pixels
from core.platform.settings import CountingSettings

_log = logging.getLogger("msm.counting")   # plain logging: the engine reaches no platform code

SMALL_W = 160          # per-frame analysis width (px)
DECISION_W = 640       # verifier analysis width (px)
NO_EXIT_SETTLE_S = 2.5  # stillness needed when no arm was seen leaving through the edge band
MIN_STILL_S = 0.06     # still this long before a fast-feeding arm re-enters: decide on that still frame
CLEAR_RUN_S = 0.6      # ... or, with no way out seen, the entry zone this long without a trace, all still
TRACE_CLEAR_S = 0.6    # a trace seen in a stillness holds its decision until the zone is clear this long
LATE_TRACE_CHANGE = 0.03      # ... where at least this much of the area still differs (hands over the sheet)
LATE_TRACE_CHANGE_MAX = 0.1   # ... but less than this (a new sheet of another look, its corner in the zone)
# ... and where less differs but at least LATE_TRACE_MIN did as the trace showed, until the zone is
# clear this long: an arm the colour of the bin's rim fades in and out of the zone as it leaves,
# its remains over the stack ~1 % of the area (a trace of camera noise comes with next to none;
# a sheet whose corner lies in the zone, with far more)
LATE_TRACE_CLEAR_S = 0.3
LATE_TRACE_MIN = 0.008
BURST_DT = 0.004       # frames closer than this came in a burst (buffered), not from the camera's clock
STUCK_S = 10.0         # still, but the entry zone differs from the background this long: decide anyway
# ... summed over a cycle's still spells (brief motions between them do not restart it): after
# a decision taken with an arm's remains at the edge, that edge differs from the background for
# good, and each later arm's motion had restarted the wait, so nothing was decided again
STUCK_OVER_CYCLE = True
RIM_CLEAR_PX = 1       # changed pixels (~160 px image) an entry-zone side may show and still be empty
FAINT_RIM_S = 6.0      # still this long with a faint trace in the entry zone: decide anyway
ELSEWHERE_MAX = 0.02   # changed share outside the counted area that means "put down elsewhere"
BP_WARP = True         # a shifted ``after``'s band-pass: its own, shifted (kept as the next background's)
EDGE_REUSE = True      # a background's edges are those its decision found on it (as ``after``)
EDGE_GAIN_TOL = 0.02   # ... and ``after``'s edges are its own, unless its exposure differs more than this
# a "no sheet" verdict while this much of the area still differs: wait ... (one limit with the
# strong-surface rule's: where the engine waits for hands still there, that rule stays out)
DEFER_CHANGE = STRONG_STILL
DEFER_S = 2.0          # ... this long still (or until something moves again) before adopting the scene
FAINT_RIM_PEAK = 0.02  # ... a trace that holds a decision back only after a cycle that changed this much
# no way out seen, but a faint trace in the entry zone as the motion ended (the arm's tail slipping
# out below the limits) and none since, this long while all was still: the arm is taken as gone
TAIL_CLEAR_S = 0.3
TAIL_AFTER_MOTION = True   # a tail's trace counts only on a stillness that began from motion

_NO_IMAGE = np.empty((0, 0, 3), np.uint8)   # a count event's image when the caller keeps none
Box = list[int]        # [x1, y1, x2, y2] in source pixels


# --------------------------------------------------------------------------- results
class EngineState(str, enum.Enum):
    STABLE = "stable"
    MOTION = "motion"
    OCCLUDED = "occluded"
    SETTLING = "settling"


@dataclass
class Change:
    """What the engine hands a verifier about the cycle being decided."""
    roi: Box                                 # source px
    mask: Optional[np.ndarray] = None        # uint8, source size, >0 = counted area (None = whole ROI)
    motion_box: Optional[Box] = None         # where motion was seen during the cycle (source px)
    cycle_s: float = 0.0                     # how long the occlusion cycle lasted
    frame: int = 0
    t: float = 0.0
    carried: float = 0.0                     # largest changed fraction of the ROI during the cycle
    final_change: float = 0.0                # changed fraction of the ROI at the decision (small image)
    swept: float = 0.0                       # share of the ROI that differed at some moment of the cycle
    swept_edges: float = 0.0                 # ... in its sharp structure (arm/sheet edges; never a soft shadow)
    came_not_left: float = 0.0               # changed only in the cycle's first half (share of the ROI)
    entered_wider: float = 0.0               # edge-band change on the way in minus on the way out
    span: float = 0.0                        # what the cycle's change enclosed beyond itself (cues.cycle_span)
    span_in: float = 0.0                     # ... thin lines kept, first half of the cycle (cues.thin_span)
    span_out: float = 0.0                    # ... second half
    elsewhere: float = 0.0                   # outside the counted area and entry zone, changed at the decision
                                             # (share of the counted area's size)
    final_rect: float = 0.0                  # how rectangular what differs at the decision is (cues.rect_fill)


@dataclass
class Verdict:
    accept: bool
    confidence: float
    reason: str
    box: Optional[Box] = None
    cues: Optional[dict[str, float]] = None   # the measured cues (see core.counting.cues)
    decided_by: Optional[list[str]] = None    # the cues that pushed the decision most


@runtime_checkable
class Verifier(Protocol):
    """Decides whether a cycle left a new sheet. ``before``/``after`` are full-resolution
    BGR stable frames."""
    name: str

    def verify(self, before: np.ndarray, after: np.ndarray, change: Change) -> Verdict: ...


@dataclass
class CountEvent:
    index: int                     # 1-based count
    frame: int                     # 0-based frame index at which the count was decided
    t: float                       # video time of that frame, s
    wall_time: datetime            # UTC, aware
    confidence: float
    reason: str
    box: Optional[Box]             # xyxy of the new sheet, source px
    image: np.ndarray = field(repr=False)   # the clean stable full-res frame to capture
    verifier: str = "model_free"
    cues: Optional[dict[str, float]] = None
    decided_by: Optional[list[str]] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (no image). ``cues``/``decided_by`` are added keys (the older keys
        keep their meaning)."""
        d = {"index": self.index, "frame": self.frame, "t": round(self.t, 3),
             "wall_time": self.wall_time.isoformat(), "confidence": round(self.confidence, 3),
             "reason": self.reason, "box": self.box, "verifier": self.verifier}
        if self.cues is not None:
            d["cues"] = self.cues
            d["decided_by"] = self.decided_by or []
        return d


@dataclass
class Decision:
    """One verifier decision (count or not) with its cues: the live log, teach mode."""
    frame: int
    t: float
    accept: bool
    confidence: float
    reason: str
    cues: Optional[dict[str, float]]
    decided_by: list[str]
    ms: float


@dataclass
class EngineStatus:
    state: EngineState
    motion: float                  # fraction of the ROI that moved since the previous frame
    change: float                  # fraction of the ROI that differs from the background
    rim: float                     # worst entry-zone side difference from the background
    frames_seen: int
    frames_ignored: int            # black frames
    count: int
    last_reason: str
    last_box: Optional[Box]
    last_decision_t: Optional[float]
    last_decision_ms: Optional[float] = None   # verifier time of the last decision (health panel)


# --------------------------------------------------------------------------- helpers
def _gray_small(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cheap reduction: take the green channel (≈ luminance) at a stride that leaves ~2×
    the target size, then INTER_AREA (averaging damps sensor noise). Only every 4th row of
    a 720p frame is touched: memory traffic, not arithmetic, is the cost (~100 µs)."""
    if isinstance(img, YuvFrame):   # a decoder's planes: the same figures without converting the frame
        return img.green_small(size)
    h, w = img.shape[:2]
    step = max(1, w // (size[0] * 2))
    sub = img[::step, ::step, 1] if img.ndim == 3 else img[::step, ::step]
    return cv2.resize(sub, size, interpolation=cv2.INTER_AREA)


def _chroma_small(img: np.ndarray, size: tuple[int, int]) -> Optional[np.ndarray]:
    """Red − blue at half the analysis size: an arm whose green level matches the floor
    (a red robot on a dark floor) still differs here. Two strided channels at 80 px
    cost ~30 µs."""
    if isinstance(img, YuvFrame):
        return img.chroma_small(size)
    if img.ndim != 3 or img.shape[2] < 3:
        return None
    w = img.shape[1]
    step = max(1, w // (size[0] * 2))
    r = cv2.resize(img[::step, ::step, 2], size, interpolation=cv2.INTER_AREA)
    b = cv2.resize(img[::step, ::step, 0], size, interpolation=cv2.INTER_AREA)
    return r.astype(np.float32) - b


def _highpass(g: np.ndarray) -> np.ndarray:
    """Sharp structure only (edges of an arm, a sheet): a soft shadow or a light change
    leaves it alone (~15 µs at 160 px)."""
    return g - cv2.blur(g, (5, 5))


REFRESH_HOLD_S = 0.25  # stillness after a frame before it may refresh the background
# a rolling-shutter flicker band is a gain per row: each row's residual gain after the coarse
# cells, taken out when within ±ROW_GAIN_TOL (0 = off), smoothed over ROW_SMOOTH rows of the
# analysis grid (one row's median is noisy on a dark floor: noise read as motion)
ROW_GAIN_TOL = 0.06
ROW_SMOOTH = 1.5
# an arm left the entry zone when the zone cleared after filling it (to OCC_PEAK_K × its limit),
# or while something moved: a still sleeve the camera hardly sees hovers around the limit
OCC_PEAK_K = 1.5
# the exposure gain from the frame's outer ring of cells where it disagrees with all cells' (a
# bright sheet filling most of the picture is no exposure change): see _cell_gains
RING_GAIN = True
GLITCH_CHECK = True                  # motion back to the still frame before it is a jolt's, no arm's
JOLT_CHECK = True                    # ... and a jolt of a few frames is undone (JOLT_MAX_FRAMES)
# ... within this many frames (and JOLT_MAX_S) of a still scene's first moving frame: the jolt
# (camera shake, a badly compressed run of frames) is undone, the stillness goes on as if it had
# not happened. A harsh camera jolting every few frames had restarted the stillness each time,
# and a sheet laid between two arms was never decided (merged with the next)
# (an idle scene's jolt: no cycle at all)
JOLT_MAX_FRAMES = 3
JOLT_MAX_S = 0.35
# what a jolt may change and be undone: the stillness's state and the cycle's figures
_JOLT_STATE = ("state", "_still_time", "_occluded_still", "_still_clear", "_clear_run", "_late_trace", "_late_hold", "_deferred",
               "_tail_trace", "_settled", "_settled_small", "_settled_ch", "_peak", "_cue_peak", "_last_motion_t", "_exit_seen",
               "_exit_moved", "_occ_peak", "_cycle_start", "_refresh_cand")
KEEP_BACKGROUND_IF_NOTHING = True    # a "no" with the picture back to the background keeps it
CHROMA_K = 1.5   # red−blue change limit, in grey-level thresholds
# ... for what a cycle brought in (its cue figures only; the states keep CHROMA_K): a dark
# brown sheet carried over a charcoal floor differs by ~18 in red−blue and ~8 in grey, below
# both limits, and came in unseen; the light scales red−blue (the 35 % term), a sheet does not
CUE_CHROMA_K = 0.75


def _chroma_changed(cur: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray, thr: float) -> np.ndarray:
    """Red−blue outside the reference's 5×5 range by more than ``CHROMA_K·thr`` plus 35 % of
    the reference's own colour strength."""
    t = CHROMA_K * thr
    return (cur > ref_hi + t + 0.35 * np.abs(ref_hi)) | (cur < ref_lo - t - 0.35 * np.abs(ref_lo))


def _tolerant_changed(cur: np.ndarray, ref_hi: np.ndarray, ref_lo: np.ndarray, thr: float) -> np.ndarray:
    """Pixels outside the 5×5 neighbourhood range of the reference (±thr): a shift of up
    to two small pixels (camera shake) changes nothing."""
    return (cur > ref_hi + thr) | (cur < ref_lo - thr)


_K5 = np.ones((5, 5), np.uint8)


def _hi_lo(ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # 5×5: camera shake of ±2 px means up to 4 px between two frames (2 small px at 320 px)
    return cv2.dilate(ref, _K5), cv2.erode(ref, _K5)


def _tolerant_band(hi_lo: tuple[np.ndarray, np.ndarray], thr: float) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) limits of :func:`_tolerant_changed`, computed once per reference:
    ``(cur > upper) | (cur < lower)`` is the same test, bit for bit."""
    hi, lo = hi_lo
    return hi + thr, lo - thr


def _chroma_band(hi_lo: tuple[np.ndarray, np.ndarray], thr: float,
                 k: Optional[float] = None) -> tuple[np.ndarray, np.ndarray]:
    """(upper, lower) limits of :func:`_chroma_changed`, computed once per reference (the
    same expressions, so the same test bit for bit; ``k``: another limit than ``CHROMA_K``).

    >>> cur = np.array([[0.0, 30.0, -40.0]], np.float32); ref = np.zeros((1, 3), np.float32)
    >>> up, lo = _chroma_band((ref + 5, ref - 5), 10.0)
    >>> bool((((cur > up) | (cur < lo)) == _chroma_changed(cur, ref + 5, ref - 5, 10.0)).all())
    True
    """
    hi, lo = hi_lo
    t = (CHROMA_K if k is None else k) * thr
    return hi + t + 0.35 * np.abs(hi), lo - t - 0.35 * np.abs(lo)


def load_mask(path: str) -> np.ndarray:
    m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise ValueError(f"cannot read the mask image: {path}")
    return m


# --------------------------------------------------------------------------- verifiers
class ModelFreeVerifier:
    """New sheet ⇔ a large connected region whose fine texture changed across the cycle.

    ``before`` and ``after`` are reduced to ~640 px grey, registered by phase correlation
    (camera shake), band-passed (lighting, flicker, exposure and soft shadows drop out)
    and compared block by block with normalised cross-correlation.

    >>> v = ModelFreeVerifier()
    >>> v.name
    'model_free'
    """
    name = "model_free"
    # reads a decoder's YUV planes itself (:meth:`_prep`): the engine hands frames over unconverted
    reads_planes = True

    def __init__(self, min_area: float = 0.04, ncc_threshold: float = 0.35, block: int = 16,
                 min_fill: float = 0.45, model: Any = None):
        from core.counting.cues import DEFAULT_MODEL, Scratch
        self.model = model or DEFAULT_MODEL       # the cue rule (a station's teach-mode fit, or the default)
        self._ws = Scratch()              # a decision's full-size temporaries, kept (no page faults)
        self.min_area = min_area          # of the ROI
        self.ncc_threshold = ncc_threshold
        self.block = block
        self.min_fill = min_fill          # changed blocks / bounding box of the region
        self._cache: Optional[tuple] = None
        self._next_cache: Optional[tuple] = None
        self._edge_cache: Optional[tuple] = None      # (key, edges) of the last ``after``: the next background
        self._win: Optional[np.ndarray] = None
        self._hwin: Optional[np.ndarray] = None
        self._half: Optional[tuple] = None     # (grey image, its pyrDown): ``after``'s, for the next decision
        # Hanning windows of _same_surface's crops, by size (at most 16). Measured: keeping them also
        # keeps the allocator from handing the decision's memory back between decisions (replay of the
        # 720p tuning decisions: 308 page faults per decision with them, 1070 without)
        self._wins: dict[tuple[int, ...], np.ndarray] = {}

    def _prep(self, img: Image, roi: Box, f: float) -> np.ndarray:
        x1, y1, x2, y2 = roi
        w, h = max(8, int(round((x2 - x1) * f))), max(8, int(round((y2 - y1) * f)))
        # green ≈ luminance; stride first so the area resize touches fewer pixels
        step = max(1, int((x2 - x1) / (w * 2)))
        if isinstance(img, YuvFrame):
            # a decoder's planes, reduced, on the chroma grid (even box): the frame is never converted
            if step == 1 and f <= 0.5 and not (x1 | y1 | x2 | y2) & 1:
                return img.green_area((x1, y1, x2, y2), (w, h))
            img = img.bgr()
        crop = img[y1:y2, x1:x2]
        if step == 1 and crop.ndim == 3:   # the same pixels; OpenCV's channel copy is ~25 % cheaper
            g = cv2.extractChannel(crop, 1, dst=self._ws.get("green", crop.shape[:2], np.uint8))
        else:
            g = np.ascontiguousarray(crop[::step, ::step, 1] if crop.ndim == 3 else crop[::step, ::step])
        return cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)

    @staticmethod
    def _bandpass(a: np.ndarray, win: Optional[np.ndarray] = None, ws: Any = None) -> np.ndarray:
        """Band-pass of ``a`` (times ``win`` when given), computed in place: the same values
        as ``G0.8(a·win) − G3(a·win)`` with two full-size arrays instead of four (each fresh
        array of a decision costs page faults, not only arithmetic).

        >>> a = np.random.default_rng(0).random((40, 60), dtype=np.float32) * 255
        >>> w = cv2.createHanningWindow((60, 40), cv2.CV_32F)
        >>> x = a * w
        >>> ref = cv2.GaussianBlur(x, (0, 0), 0.8) - cv2.GaussianBlur(x, (19, 19), 3.0)
        >>> bool(np.array_equal(ModelFreeVerifier._bandpass(a, w), ref))
        True
        """
        # fine texture only: (σ≈0.8 px) − (σ≈3 px) at ~640 px width; lighting, flicker,
        # exposure and soft shadows are low-frequency and drop out
        x = ws.get("bp_x", a.shape, a.dtype) if ws is not None else None
        x = np.multiply(a, win, out=x) if win is not None else a.copy()
        g = cv2.GaussianBlur(x, (0, 0), 0.8)
        cv2.GaussianBlur(x, (19, 19), 3.0, dst=x)     # cut at 3σ (OpenCV's own kernel reaches 4σ: 25 taps)
        return np.subtract(g, x, out=g)

    def _prepared(self, img: Image, roi: Box, f: float) -> tuple[np.ndarray, np.ndarray]:
        """(grey, band-pass) of the background. Cached by content: a decision's new stable
        frame becomes the next background (as a copy), so its figures are kept from
        :meth:`compare` and the next decision does not compute them again."""
        key = self._key(img, roi, f)
        if self._cache is not None and self._cache[0] == key:
            a, bp = self._cache[1], self._cache[2]
            if bp is None:    # kept from a registered (shifted) ``after``: its grey image only
                bp = self._bandpass(a, self._window(a.shape), self._ws)
                self._cache = (key, a, bp)
            return a, bp
        a = self._prep(img, roi, f)
        bp = self._bandpass(a, self._window(a.shape), self._ws)
        self._cache = (key, a, bp)
        return a, bp

    @staticmethod
    def _key(img: Image, roi: Box, f: float) -> tuple:
        # a sparse sample of the pixels (~1/140 of them): two different camera frames never match
        px = img.y if isinstance(img, YuvFrame) else img
        return (img.shape, tuple(roi), f, hash(px[::13, ::11].tobytes()))

    def _window(self, shape: tuple[int, ...]) -> np.ndarray:
        """Hanning window: registration needs it, and the comparison uses it too — the
        frame's outer margin (where shake brings new content into view and the arm enters)
        weighs little, the stack in the middle fully."""
        if self._win is None or self._win.shape != shape:
            self._win = cv2.createHanningWindow((shape[1], shape[0]), cv2.CV_32F)
        return self._win

    def compare(self, before: Image, after: Image, change: Change) -> dict[str, Any]:
        """The block map and figures behind a verdict (exposed for tests and tuning)."""
        roi = change.roi
        f = min(1.0, DECISION_W / max(1, roi[2] - roi[0]))
        a, bpa = self._prepared(before, roi, f)
        b = b_raw = self._prep(after, roi, f)
        # register after → before (camera shake) at half resolution (10× cheaper, ample
        # for ±2 px); ignore implausible shifts
        # the background's half image was made by the decision that set it (same grey image)
        ha = self._half[1] if self._half is not None and self._half[0] is a else cv2.pyrDown(a)
        hb = cv2.pyrDown(b)
        self._half = (b_raw, hb.copy())    # a copy: phaseCorrelate windows its inputs in place
        if self._hwin is None or self._hwin.shape != ha.shape:
            self._hwin = cv2.createHanningWindow((ha.shape[1], ha.shape[0]), cv2.CV_32F)
        (dx, dy), _resp = cv2.phaseCorrelate(ha, hb, self._hwin)
        dx, dy = 2.0 * dx, 2.0 * dy
        warped = abs(dx) <= 6 and abs(dy) <= 6 and (abs(dx) > 0.05 or abs(dy) > 0.05)
        key_b = self._key(after, roi, f)
        if warped:     # a translation: warpAffine's figures at a fifth of its cost (shift_image)
            b = shift_image(b, dx, dy, self._ws, "b")
        if warped and BP_WARP:
            bpr = self._bandpass(b_raw, self._window(b.shape), self._ws)
            bpb = shift_image(bpr, dx, dy, self._ws, "bp")
            self._next_cache = (key_b, b_raw, bpr)
        else:
            bpb = self._bandpass(b, self._window(b.shape), self._ws)
            # ``after`` is the next background: keep its figures (its grey image only when it
            # was shifted here; the next decision band-passes the unshifted one)
            self._next_cache = (key_b, b_raw, None if warped else bpb)
        B = self.block
        nh, nw = a.shape[0] // B, a.shape[1] // B
        if nh < 2 or nw < 2:
            return {"changed": np.zeros((1, 1), bool), "ncc": np.ones((1, 1)), "f": f, "shift": (dx, dy)}
        changed, ncc, textured = self._tex_changed(bpa, bpb, nh, nw)
        valid = np.ones((nh, nw), bool)
        if change.mask is not None:
            x1, y1, x2, y2 = roi
            m = change.mask[y1:y2, x1:x2]
            valid = cv2.resize(m, (nw, nh), interpolation=cv2.INTER_AREA) > 127
            changed &= valid
        return {"changed": changed, "ncc": ncc, "f": f, "shift": (dx, dy), "textured": textured,
                "a": a, "b": b, "valid": valid, "bpa": bpa, "b_raw": b_raw, "warped": warped,
                "keys": (self._cache[0] if self._cache is not None else None, key_b)}

    def _tex_changed(self, bpa: np.ndarray, bpb: np.ndarray, nh: int, nw: int,
                     keep: bool = True) -> tuple[np.ndarray, ...]:
        """Blocks whose band-passed texture changed: (changed, ncc, textured). ``keep``: the
        product buffer is a kept work array (full-size images; a crop's size changes every time)."""
        B = self.block
        ca, cb = bpa[:nh * B, :nw * B], bpb[:nh * B, :nw * B]
        # block means of the products (INTER_AREA with an integer factor = exact block mean)
        area = cv2.INTER_AREA
        # one product buffer for the three (a kept work array for the full-size images)
        p = np.multiply(ca, cb, out=self._ws.get("prod", ca.shape, np.result_type(ca, cb)) if keep else None)
        sab = cv2.resize(p, (nw, nh), interpolation=area)
        saa = cv2.resize(np.multiply(ca, ca, out=p), (nw, nh), interpolation=area)
        sbb = cv2.resize(np.multiply(cb, cb, out=p), (nw, nh), interpolation=area)
        ncc = sab / np.sqrt(saa * sbb + 1e-9)
        ea, eb = np.sqrt(np.maximum(saa, 0)), np.sqrt(np.maximum(sbb, 0))
        # texture present somewhere: below this the block is too flat to tell (sensor noise)
        e_min = 0.9
        textured = (ea > e_min) | (eb > e_min)
        ratio = (np.maximum(ea, eb) + 0.2) / (np.minimum(ea, eb) + 0.2)
        changed = textured & ((ncc < self.ncc_threshold) | (ratio > 3.0))
        return changed, ncc, textured

    def _outline_edges(self, c: dict[str, Any], gain: float) -> tuple[np.ndarray, np.ndarray]:
        """(before's, after's) edges for :func:`~core.counting.cues.outline_cues`. ``after``'s
        are found on it as decoded (then kept: it is the next background; brought to the
        background's exposure first when that differs by more than ``EDGE_GAIN_TOL``) and moved
        by the registration's whole pixels (the outline cues allow a pixel); the background's
        were found by the decision that set it."""
        from core.counting import cues as C
        key_a, key_b = c["keys"]
        kept = self._edge_cache
        # the background's own slot ("a") is not touched by the two searches below: no copy needed
        ea = kept[1] if kept is not None and kept[0] == key_a else C._edges(c["a"], self._ws, "a")
        raw = C._edges(c["b_raw"], self._ws, "r").copy()     # kept: the next decision's background
        self._edge_cache = (key_b, raw)
        if abs(gain - 1.0) <= EDGE_GAIN_TOL:
            e = raw
        else:      # at the background's exposure, as the other cues see ``after``
            e = C._edges(np.divide(c["b_raw"], gain, out=self._ws.get("bn_raw", c["b_raw"].shape)), self._ws, "b")
        if c["warped"]:
            e = C.shift_mask(e, int(round(c["shift"][0])), int(round(c["shift"][1])))
        return ea, e

    def _same_surface(self, c: dict[str, Any], tone_mask: np.ndarray, gain: float) -> float:
        """1 − (blocks still changed after the changed region's own best shift) / (blocks
        changed): ~1 = the same surface moved (a nudge, a straightened sheet); ~0 = a new
        surface, or nothing to tell (almost no block changed: the other cues decide)."""
        from core.counting import cues as C
        a, b, valid = c["a"], c["b"], c["valid"]
        B = self.block
        nh, nw = valid.shape
        orig = (c["changed"] | tone_mask) & valid
        n0 = int(orig.sum())
        if n0 < max(2, 0.005 * valid.size):
            return 0.0
        ys, xs = np.nonzero(orig)
        x1, y1 = max(0, xs.min() - 1) * B, max(0, ys.min() - 1) * B
        x2, y2 = min(nw, xs.max() + 2) * B, min(nh, ys.max() + 2) * B
        # copies: phaseCorrelate windows its inputs in place when their size needs no padding
        ca, cb = a[y1:y2, x1:x2].copy(), b[y1:y2, x1:x2].copy()
        if ca.shape[0] < 16 or ca.shape[1] < 16:
            return 0.0
        win = self._wins.get(ca.shape)
        if win is None:
            if len(self._wins) >= 16:
                self._wins.clear()
            win = self._wins[ca.shape] = cv2.createHanningWindow((ca.shape[1], ca.shape[0]), cv2.CV_32F)
        # at full resolution: at half, a sheet laid 1-3 px off an identical one reads as the
        # same surface moved (hard corpus D, r_017: same_surface 0.64 → 1.0, a sheet missed)
        (dx, dy), _ = cv2.phaseCorrelate(ca, cb, win)
        if abs(dx) > 12 or abs(dy) > 12:
            dx = dy = 0.0
        # refine to a rigid motion (a straightened sheet also turns a little): ECC from the shift
        # (at half resolution: ~8× cheaper, ample for a motion of a few px and a degree)
        W = np.float32([[1, 0, dx / 2], [0, 1, dy / 2]])
        try:
            _cc, W = cv2.findTransformECC(cv2.pyrDown(ca), cv2.pyrDown(cb), W, cv2.MOTION_EUCLIDEAN,
                                          (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 12, 1e-4), None, 3)   # a nudge converges in a few
            W[:, 2] *= 2.0
        except cv2.error:       # no convergence: keep the plain shift
            W = np.float32([[1, 0, dx], [0, 1, dy]])
        ang = abs(math.degrees(math.atan2(float(W[1, 0]), float(W[0, 0]))))
        tx, ty = float(W[0, 2]), float(W[1, 2])
        if abs(tx) > 14 or abs(ty) > 14 or ang > 4.0 or (abs(tx) < 0.5 and abs(ty) < 0.5 and ang < 0.1):
            return 0.0    # nothing moved as a whole: whatever changed is new
        # the crop's motion in full-image coordinates: x_b = R (x − o) + t + o
        o = np.float32([x1, y1])
        R = W[:, :2]
        # re-check only the changed region's blocks (+ a blur margin): the same figures on far less
        # area, so only that part of ``b`` is moved (its origin p: x_b = R (x + p) + t' for x in it)
        m = 2 * B
        p1x, p1y = max(0, x1 - m), max(0, y1 - m)
        p2x, p2y = min(b.shape[1], x2 + m), min(b.shape[0], y2 + m)
        p = np.float32([p1x, p1y])
        Wp = np.hstack([R, (W[:, 2] + o - R @ o + R @ p)[:, None]]).astype(np.float32)
        b2 = cv2.warpAffine(b, Wp, (p2x - p1x, p2y - p1y), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REFLECT)
        win = self._window(b.shape)
        inner = (slice(y1 - p1y, y2 - p1y), slice(x1 - p1x, x2 - p1x))     # the region's own blocks
        bp2 = self._bandpass(b2, win[p1y:p2y, p1x:p2x])[inner]
        bh, bw = (y2 - y1) // B, (x2 - x1) // B
        ch2, _n, _t = self._tex_changed(c["bpa"][y1:y2, x1:x2], bp2, bh, bw, keep=False)
        tn2, _g = C.tone_changed(a[y1:y2, x1:x2], b2[inner], B, bh, bw, gain=gain)
        resid = int(((ch2 | tn2) & orig[y1 // B:y1 // B + bh, x1 // B:x1 // B + bw]).sum())
        return float(np.clip(1.0 - resid / n0, 0.0, 1.0))

    def verify(self, before: Image, after: Image, change: Change) -> Verdict:   # type: ignore[override]
        """Measure every cue (:mod:`core.counting.cues`) and apply the one logistic rule."""
        from core.counting import cues as C
        self._next_cache = None
        c = self.compare(before, after, change)
        if self._next_cache is not None:
            self._cache = self._next_cache
        if "a" not in c:   # ROI too small to tell anything
            return Verdict(False, 0.5, "counted area too small to compare", cues=C.Cues().to_dict())
        a, b, valid = c["a"], c["b"], c["valid"]
        B, f = self.block, c["f"]
        nh, nw = valid.shape
        tex_area, _fill, tex_box = C._largest(c["changed"], valid)
        tone_mask, gain = C.tone_changed(a, b, B, nh, nw)
        bn = np.divide(b, max(gain, 1e-3), out=self._ws.get("bn", b.shape, b.dtype))   # ``after`` at the background's exposure
        tone_area, _tfill, tone_box = C._largest(tone_mask, valid)
        if tone_area > 0:   # only a change with a cut edge is a sheet; soft shadows and light are not
            px = cv2.resize((tone_mask & valid).astype(np.uint8), (nw * B, nh * B), interpolation=cv2.INTER_NEAREST) > 0
            full = self._ws.get("full", a.shape, bool)
            full.fill(False)
            full[:nh * B, :nw * B] = px
            sharp = C.edge_sharpness(a, bn, full)
            tone_area *= float(np.clip((sharp - 0.05) / 0.07, 0.0, 1.0))
            if tone_area < 0.005:
                tone_box = None
        pix_valid = None
        if change.mask is not None:   # the counted area at pixel level, a few px inside its border
            rx1, ry1, rx2, ry2 = change.roi
            pm = cv2.resize(change.mask[ry1:ry2, rx1:rx2], (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA) > 127
            pix_valid = cv2.erode(pm.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        edges = self._outline_edges(c, gain) if EDGE_REUSE else None
        new_e, lost_e, par, new_box = C.outline_cues(a, bn, pix_valid, with_box=True, ws=self._ws, edges=edges)
        boxes = [(tb[0] * B, tb[1] * B, tb[2] * B, tb[3] * B) for tb in (tex_box, tone_box) if tb]
        if new_box is not None:
            boxes.append(new_box)
        same = self._same_surface(c, tone_mask, gain)
        if boxes:
            x1 = min(bx[0] for bx in boxes); y1 = min(bx[1] for bx in boxes)
            x2 = max(bx[0] + bx[2] for bx in boxes); y2 = max(bx[1] + bx[3] for bx in boxes)
        else:
            x1 = y1 = x2 = y2 = 0
        cues = C.Cues(tex_area=tex_area, tone_area=tone_area, same_surface=same, new_edges=new_e,
                      lost_edges=lost_e, parallel=par, carried=change.carried, final_change=change.final_change,
                      outline=C.thin_outline(a, bn, valid=pix_valid, ws=self._ws), swept=change.swept,
                      swept_edges=change.swept_edges, came_not_left=change.came_not_left,
                      entered_wider=change.entered_wider, span=change.span, span_in=change.span_in,
                      span_out=change.span_out)
        p, top = C.score(cues, self.model)
        here_only = change.elsewhere < ELSEWHERE_MAX        # nothing new outside the counted area
        unseen = here_only and C.unseen_sheet(cues)
        rim = here_only and C.carried_rim(cues)
        if not C.visible_change(cues) and not (here_only and C.brought_unseen(cues)) and not unseen and not rim:
            # the one hard rule before the model: a count needs SOME visible change of the
            # counted area's top (texture, tone with a cut edge, an outline or edges) -- or an
            # arm that plainly brought something it did not take away, with nothing new
            # anywhere else in the picture (an identical sheet laid exactly on the last one)
            p, top = min(p, 0.05), ["tex_area", "outline"]
        elif p < self.model.threshold and C.new_cover(cues) and change.final_rect >= C.NEW_COVER_RECT:
            # a new surface with cut edges, a rectangle, now covers a sheet-sized part of the area:
            # a first sheet on an empty bin, or one of another colour (the rule's final_change
            # weight was fitted where what still differed was an arm's remains, 2-10 % of the area;
            # a hand resting there unseen at the edge is no rectangle)
            p, top = self.model.threshold, ["final_change", "tone_area" if tone_area >= tex_area else "tex_area"]
        elif p < self.model.threshold and unseen:
            # an identical sheet the floor's colour: only the arm's figures show it
            p, top = self.model.threshold, ["span", "came_not_left"]
        elif p < self.model.threshold and rim:
            # an identical sheet the stack's colour: only its rim showed, on the way in
            p, top = self.model.threshold, ["span_in", "came_not_left"]
        elif p < self.model.threshold and C.strong_new_surface(cues):
            # texture, outline and tone or mostly new edges changed and the arm left something
            # behind: the rule's arm weights must not overrule a surface change this clear
            # (hands that carried a sheet in came in hardly wider than they left)
            p, top = self.model.threshold, ["tex_area", "tone_area" if tone_area >= C.STRONG_TONE else "new_edges"]
        accept = p >= self.model.threshold
        box = None
        if boxes:
            rx, ry = change.roi[0], change.roi[1]
            box = [int(rx + x1 / f), int(ry + y1 / f), int(rx + x2 / f), int(ry + y2 / f)]
        why = ", ".join(f"{k} {getattr(cues, k):.2f}" for k in top)
        if accept:
            reason = f"new sheet (p {p:.2f}; {why}; new surface over {max(tex_area, tone_area):.0%} of the area)"
        else:
            reason = f"no new sheet (p {p:.2f}; {why})"
        return Verdict(accept, float(p if accept else 1 - p), reason, box if accept else None,
                       cues=cues.to_dict(), decided_by=top)


DetectFn = Callable[[np.ndarray], Sequence[tuple[float, float, float, float, float]]]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


class DetectorVerifier:
    """Model-agnostic detector check combined with the model-free "top really changed".

    ``detect_fn(image_bgr) -> [(x1, y1, x2, y2, conf), ...]`` — e.g. the trained YOLO
    ``metal_sheet`` model. It runs only on decision frames.

    >>> v = DetectorVerifier(lambda img: [(0, 0, 10, 10, 0.9)], min_conf=0.5)
    >>> v.name
    'detector'
    """
    name = "detector"

    def __init__(self, detect_fn: DetectFn, min_conf: float = 0.5, change_verifier: Optional[Verifier] = None):
        self.detect_fn = detect_fn
        self.min_conf = min_conf
        self.change_verifier = change_verifier or ModelFreeVerifier()

    def verify(self, before: np.ndarray, after: np.ndarray, change: Change) -> Verdict:
        mf = self.change_verifier.verify(before, after, change)
        if not mf.accept:
            return Verdict(False, mf.confidence, f"detector skipped: {mf.reason}", cues=mf.cues,
                           decided_by=mf.decided_by)
        try:
            dets = [d for d in self.detect_fn(after) if d[4] >= self.min_conf]
        except Exception as e:  # a broken model must not stop counting: fall back, say so
            _log.warning("sheet detector failed (%s); using the model-free verdict", e)
            return replace(mf, reason=f"{mf.reason}; detector failed, model-free verdict")
        if not dets:
            return Verdict(False, 1 - mf.confidence * 0.5, f"top changed but no metal_sheet ≥ {self.min_conf:.2f}",
                           cues={**(mf.cues or {}), "detector": 0.0}, decided_by=["detector"])
        best = max(dets, key=lambda d: (_iou(d, mf.box) if mf.box else 0.0, d[4]))
        box = [int(v) for v in best[:4]]
        return Verdict(True, float(min(1.0, (best[4] + mf.confidence) / 2)),
                       f"metal_sheet {best[4]:.2f} and {mf.reason}", box,
                       cues={**(mf.cues or {}), "detector": round(float(best[4]), 4)},
                       decided_by=["detector"] + list(mf.decided_by or [])[:1])


def make_verifier(cfg: CountingSettings, detect_fn: Optional[DetectFn] = None) -> Verifier:
    """The verifier the settings ask for: detector when one is given and not disabled,
    else model-free (the default when no weights are present)."""
    mf = ModelFreeVerifier(model=station_model(cfg))
    if detect_fn is not None and cfg.verifier in ("auto", "detector"):
        return DetectorVerifier(detect_fn, cfg.sheet_confidence, change_verifier=mf)
    return mf


def station_model(cfg: CountingSettings) -> Any:
    """The station's teach-mode cue model from the settings, or None (= the default rule).
    A model fitted for an older set of cues is ignored (with a warning), never half-used."""
    from core.counting.cues import FEATURE_NAMES, CueModel
    d = getattr(cfg, "cue_model", None)
    if not d:
        return None
    try:
        m = CueModel.from_dict(d)
    except (KeyError, TypeError, ValueError) as e:
        _log.warning("station cue model unusable (%s): default rule", e)
        return None
    if len(m.weights) != len(FEATURE_NAMES):
        _log.warning("station cue model has %d weights, the rule %d inputs: default rule", len(m.weights),
                     len(FEATURE_NAMES))
        return None
    return m


# --------------------------------------------------------------------------- engine
class CountingEngine:
    """Frame-by-frame stacking counter. Feed every frame to :meth:`update`.

    >>> import numpy as np
    >>> eng = CountingEngine(CountingSettings())
    >>> eng.update(np.zeros((48, 64, 3), np.uint8), 0, 0.0) is None
    True
    >>> eng.state.value
    'stable'
    """

    def __init__(self, cfg: Optional[CountingSettings] = None, verifier: Optional[Verifier] = None,
                 copy_frames: bool = True, event_images: bool = True):
        self.cfg = cfg or CountingSettings()
        self.verifier: Verifier = verifier or ModelFreeVerifier()
        # the background and a count's capture are copies of the frame unless the caller
        # never draws on its frames (core.live.count): a 720p copy costs ~0.2 ms
        self.copy_frames = copy_frames
        # False: a count's event carries no image (a caller that keeps none, as ``core count``:
        # a decoder's frame is then never converted to BGR, ~2.6 ms at 720p)
        self.event_images = event_images
        self._mask_src: Optional[np.ndarray] = None
        self.reset()

    # --- configuration
    def apply_settings(self, cfg: CountingSettings) -> None:
        """Live update (thresholds, ROI, mask) without losing the count or background."""
        roi_changed = cfg.roi != self.cfg.roi or cfg.mask_path != self.cfg.mask_path
        self.cfg = cfg
        self._thresholds()
        mf = getattr(self.verifier, "change_verifier", self.verifier)
        if isinstance(mf, ModelFreeVerifier):      # a teach-mode fit applies at once
            from core.counting.cues import DEFAULT_MODEL
            mf.model = station_model(cfg) or DEFAULT_MODEL
        if roi_changed and self._shape is not None:
            self._geometry(self._shape)
            if self._bg_full is not None:   # re-derive the small background for the new ROI
                self._set_background(self._bg_full, self._bg_t)

    def _thresholds(self) -> None:
        s = float(np.clip(self.cfg.motion_sensitivity, 0.0, 1.0))
        self.pix_thr = 26.0 - 20.0 * s          # grey levels (after gain normalisation)
        self.motion_frac = 0.012 - 0.01 * s      # fraction of the ROI
        self.rim_frac = 0.03 - 0.02 * s          # fraction of one entry-zone side
        self.settle_s = float(np.clip(self.cfg.settle_s, 0.05, 2.0))

    def reset(self) -> None:
        """Forget everything (new session, new source)."""
        self.state = EngineState.STABLE
        self.count = 0
        self.frames_seen = 0
        self.frames_ignored = 0
        self.last_reason = "waiting for the first frame"
        self.last_box: Optional[Box] = None
        self.last_decision_t: Optional[float] = None
        self._shape: Optional[tuple[int, int]] = None
        self._bg_full: Optional[np.ndarray] = None
        self._bg_t = 0.0
        self._bg_small = None
        self._bg_sub = None
        self._bg_cr = self._prev_cr = None
        self._bands_thr: Optional[float] = None   # pix_thr the background's change limits were made for
        self._bg_band: Any = None
        self._bg_hp_band: Any = None
        self._bg_cr_band: Any = None
        self._bg_cr_cue_band: Any = None
        self._cur_small: Optional[tuple] = None      # (frame, grey small, red−blue small) of the last frame analysed
        self._settled_small: Optional[tuple] = None  # the same for the SETTLING still frame
        self._glob = 1.0
        self._gain: Optional[np.ndarray] = None
        self._new_cells: Optional[np.ndarray] = None   # gain cells that differ from the background (_norm)
        self._was_moving = False                # motion on the last analysed frame
        self._glitch_ref: Optional[tuple] = None  # the still frame before a first frame of motion
        self._jolt: Optional[dict[str, Any]] = None   # the stillness as it was before a jolt (JOLT_MAX_FRAMES)
        self._decided_n = 0                     # decisions taken (or put off) so far
        self._prev_small = None
        self._prev_t: Optional[float] = None
        self._still_time = 0.0
        self._occluded_still = 0.0
        self._cycle_start: Optional[float] = None
        self._motion_acc: Optional[np.ndarray] = None
        self._peak = 0.0                      # largest changed fraction during the cycle
        self._cue_peak = 0.0                  # ... with the cue figures' weaker colour limit
        self._cyc_masks: list[tuple[float, np.ndarray, float]] = []   # (t, changed, rim) of each cycle frame
        self._last_motion_t = 0.0             # last frame of the cycle with motion or an arm at the rim
        self._exit_seen = False               # motion in the edge band since the last motion inside
        self._exit_moved = False              # ... seen as motion there (not only inferred from the band clearing)
        self._sharp_acc: Optional[np.ndarray] = None   # where sharp structure changed during the cycle
        self._settled: Optional[tuple[np.ndarray, int, float]] = None   # last still frame of SETTLING
        self.decisions: list[Decision] = []   # recent decisions with their cues (newest last)
        self.last_decision: Optional[Decision] = None
        self._motion = self._change = self._rim = 0.0
        self._last_refresh = 0.0
        self._refresh_cand: Optional[tuple] = None    # ((frame, grey, red−blue), t): the next background
        self._next_t: Optional[float] = None    # next frame time to analyse (idle_fps)
        self._seen_t: Optional[float] = None    # time of the last frame offered (wants) ...
        self._seen_ans = True                   # ... and the answer given for it
        self._prev_rim = 0.0
        self._occ_peak = 0.0
        self._rim_trace = False                 # a few changed pixels on one side of the entry zone
        self._ch_bg: Optional[np.ndarray] = None        # changed vs the background, last frame (small)
        self._settled_ch: Optional[np.ndarray] = None   # ... on the SETTLING still frame
        self._still_clear = False               # no one-sided trace in the entry zone on any later frame of this stillness
        self._clear_run = 0.0                   # seconds of this stillness since the zone last showed a trace
        self._late_trace = False                # ... which it showed after the stillness's first frame
        self._late_hold = False                 # ... while LATE_TRACE_MIN of the area differed
        self._tail_trace = False                # ... on the last moving or first still frame (an arm's tail)
        self._deferred = False                  # a "no sheet" verdict was put off in this stillness
        self._thresholds()

    def _geometry(self, shape: tuple[int, int]) -> None:
        H, W = shape
        self._shape = shape
        sw = min(SMALL_W, W)
        sh = max(8, int(round(H * sw / W)))
        self._small_size = (sw, sh)
        self._cr_size = (max(4, sw // 2), max(4, sh // 2))
        self._sx, self._sy = W / sw, H / sh
        roi = self.cfg.roi
        if roi:
            x1, y1, x2, y2 = [int(v) for v in roi]
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
            if x2 - x1 < 16 or y2 - y1 < 16:
                _log.warning("ROI %s is outside the %dx%d frame; using the whole frame", roi, W, H)
                x1, y1, x2, y2 = 0, 0, W, H
        else:
            x1, y1, x2, y2 = 0, 0, W, H
        self.roi: Box = [x1, y1, x2, y2]
        # small-image masks: counted area, and the entry zone sides (where the arm crosses)
        m = np.zeros((sh, sw), np.uint8)
        r = [int(x1 / self._sx), int(y1 / self._sy), int(np.ceil(x2 / self._sx)), int(np.ceil(y2 / self._sy))]
        m[r[1]:r[3], r[0]:r[2]] = 1
        self._mask_full: Optional[np.ndarray] = None
        if self.cfg.mask_path:
            src = load_mask(self.cfg.mask_path)
            self._mask_full = cv2.resize(src, (W, H), interpolation=cv2.INTER_NEAREST)
            m &= (cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA) > 127).astype(np.uint8)
        m[:2, :] = 0
        m[-2:, :] = 0
        m[:, :2] = 0
        m[:, -2:] = 0
        self._roi_small = m.astype(bool)
        self._roi_n = max(1, int(self._roi_small.sum()))
        bx = max(2, int(round(0.06 * (r[2] - r[0]))))
        by = max(2, int(round(0.06 * (r[3] - r[1]))))
        whole = r == [0, 0, sw, sh]
        sides = []
        exits: list = []
        if whole:   # band along each frame edge, minus the outermost 2 px where camera shake
            # brings content into view that has no neighbour in the background
            e = 2
            bx, by = max(2, int(round(0.06 * sw))), max(2, int(round(0.06 * sh)))
            for sl in ((slice(e, sh - e), slice(e, e + bx)), (slice(e, sh - e), slice(sw - e - bx, sw - e)),
                       (slice(e, e + by), slice(e, sw - e)), (slice(sh - e - by, sh - e), slice(e, sw - e))):
                sides.append(sl)
            # where a leaving arm is seen MOVING: a wider band (a settled sheet never moves)
            wx, wy = max(3, int(round(0.08 * sw))), max(3, int(round(0.08 * sh)))
            exits = [(slice(e, sh - e), slice(e, e + wx)), (slice(e, sh - e), slice(sw - e - wx, sw - e)),
                     (slice(e, e + wy), slice(e, sw - e)), (slice(sh - e - wy, sh - e), slice(e, sw - e))]
        else:       # a ring just outside the ROI (the bin rim): the arm must cross it
            for sl in ((slice(r[1], r[3]), slice(max(0, r[0] - bx), r[0])),
                       (slice(r[1], r[3]), slice(r[2], min(sw, r[2] + bx))),
                       (slice(max(0, r[1] - by), r[1]), slice(r[0], r[2])),
                       (slice(r[3], min(sh, r[3] + by)), slice(r[0], r[2]))):
                if sl[0].stop - sl[0].start > 0 and sl[1].stop - sl[1].start > 0:
                    sides.append(sl)
            if not sides:  # ROI touches every frame edge: fall back to its inner band
                sides = [(slice(r[1], r[3]), slice(r[0], r[0] + bx)), (slice(r[1], r[3]), slice(r[2] - bx, r[2])),
                         (slice(r[1], r[1] + by), slice(r[0], r[2])), (slice(r[3] - by, r[3]), slice(r[0], r[2]))]
        self._sides = sides
        self._side_n = [(sl, max(1, (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start))) for sl in sides]
        self._exit_n = [(sl, max(1, (sl[0].stop - sl[0].start) * (sl[1].stop - sl[1].start)))
                        for sl in (exits if whole else sides)]
        # the whole-frame mask used for the motion decision includes the rim ring
        self._watch = self._roi_small.copy()
        rim = np.zeros_like(self._roi_small)
        for sl in sides:
            self._watch[sl] = True
            rim[sl] = True
        self._grid = (8, max(3, int(round(8 * sh / sw))))
        self._watch_n = max(1, int(self._watch.sum()))
        # the rest of the picture (masked out, or outside the ROI and its ring): where a sheet
        # carried over the counted area may have been put down instead
        ew = ~self._watch
        ew[:2, :] = ew[-2:, :] = ew[:, :2] = ew[:, -2:] = False
        self._elsewhere = ew if ew.any() else None
        self._bg_sub = None

    def _norm(self, g: np.ndarray) -> np.ndarray:
        """Gain normalisation to the background's exposure: a coarse gain map absorbs
        drift, flicker, auto-exposure and slow light gradients. Each cell's gain is the
        MEDIAN pixel ratio to the background (a sheet or arm covering part of a cell does
        not bias it); cells far from the global gain (mostly covered by new content) take
        the global gain. ``g`` is the raw uint8 small image; returns float32 in background
        grey levels."""
        gf = g.astype(np.float32)
        if self._bg_sub is None:
            return gf
        sub = gf[::3, ::3] / self._bg_sub
        ratio, self._glob, self._new_cells = self._cell_gains(sub, ring=RING_GAIN)
        gain = cv2.resize(ratio, self._small_size, interpolation=cv2.INTER_LINEAR)
        if ROW_GAIN_TOL > 0:
            # what the cells leave of a flicker band (sharpest in the top and bottom rows, past
            # the last cells' centres); a row with a larger residual is mostly covered by something new
            r = sub / gain[::3, ::3]
            k = r.shape[1] // 2
            res = np.partition(r, k, axis=1)[:, k]     # each row's median (upper middle: no mean of two)
            res[np.abs(res - 1.0) > ROW_GAIN_TOL] = 1.0
            if ROW_SMOOTH > 0:
                res = cv2.GaussianBlur(res[:, None].astype(np.float32), (1, 0), ROW_SMOOTH).ravel()
            gain = gain * cv2.resize(res[:, None].astype(np.float32), (1, self._small_size[1]),
                                     interpolation=cv2.INTER_LINEAR)
        self._gain = gain
        return gf / np.maximum(gain, 0.05)

    def _rel_gain(self, g: np.ndarray) -> np.ndarray | float:
        """Gain of ``g`` relative to the previous analysed frame (both at the background's
        exposure) in the cells that took the global gain because they differ from the
        background (a sheet laid since): there the background's gain map cannot follow a
        flicker band. Each such cell's median pixel ratio to the previous frame, unless it is
        more than 8 % off the frame's (something moved there); 1 elsewhere (measured on the
        hard corpora: correcting every cell let a low-contrast arm's motion pass as light)."""
        prev, new = self._prev_small, self._new_cells
        if prev is None or prev.shape != g.shape or new is None or not new.any():
            return 1.0
        # a flicker band of ±3 % moves a cell's gain by up to ~6 % between two frames
        ratio, _glob, _moved = self._cell_gains(g[::3, ::3] / np.maximum(prev[::3, ::3], 4.0), tol=0.08, fill=1.0)
        ratio[~new] = 1.0
        return np.maximum(cv2.resize(ratio, self._small_size, interpolation=cv2.INTER_LINEAR), 0.05)

    def _cell_gains(self, sub: np.ndarray, tol: float = 0.1, fill: Optional[float] = None,
                    ring: bool = False) -> tuple[np.ndarray, float, np.ndarray]:
        """(each grid cell's median pixel ratio, the global one, the cells more than ``tol``
        off it) of a ratio image; those cells (mostly covered by new content) take the global
        ratio (or ``fill``). ``ring``: where the outer ring of cells (mostly floor, the frame's
        border) disagrees with the median of all cells by more than ``tol``, the ring's median
        is the global ratio: a bright sheet laid on a dark bin that fills most of the picture
        moves most cells' ratio, the floor around it none; an exposure change moves both."""
        gh, gw = self._grid[1], self._grid[0]
        ch, cw = sub.shape[0] // gh, sub.shape[1] // gw
        cells = sub[:gh * ch, :gw * cw].reshape(gh, ch, gw, cw).transpose(0, 2, 1, 3).reshape(gh, gw, ch * cw)
        k = (ch * cw) // 2
        ratio = np.partition(cells, k, axis=2)[..., k]
        flat = ratio.ravel()
        glob = float(np.partition(flat, flat.size // 2)[flat.size // 2])
        if ring and gh > 2 and gw > 2:
            rc = np.concatenate([ratio[0], ratio[-1], ratio[1:-1, 0], ratio[1:-1, -1]])
            g_ring = float(np.partition(rc, rc.size // 2)[rc.size // 2])
            if abs(glob - g_ring) > tol * g_ring:
                glob = g_ring
        off = np.abs(ratio - glob) > tol * glob
        ratio[off] = glob if fill is None else fill
        return ratio, glob, off

    def _set_background(self, frame: np.ndarray, t: float, small: Optional[tuple] = None) -> None:
        """``frame`` becomes the reference: its exposure defines the grey levels (``small``:
        its (frame, grey, red−blue) small images, kept from its own analysis with a copy of
        the frame when frames are copied)."""
        self._bg_full = frame.copy() if self.copy_frames and small is None else frame
        self._bg_t = t
        self._refresh_cand = None
        raw = cr = None
        for cur in (small, self._cur_small, self._settled_small):   # its small images, when analysed already
            if cur is not None and cur[0] is frame:
                raw, cr = cur[1], cur[2]
                break
        if raw is None:
            raw = _gray_small(frame, self._small_size)
        if cr is None:
            cr = _chroma_small(frame, self._cr_size)
        g = raw.astype(np.float32)
        self._bg_sub = np.maximum(g[::3, ::3], 4.0)
        self._bg_small = g
        self._bg_hi, self._bg_lo = _hi_lo(g)
        self._bg_hp = _hi_lo(_highpass(g))
        self._bg_cr = None if cr is None else _hi_lo(cr)
        self._prev_cr = self._bg_cr
        self._last_refresh = t
        self._bands()

    def _bands(self) -> None:
        """The background's change limits at the current threshold (once per background,
        not per frame)."""
        thr = self.pix_thr
        self._bands_thr = thr
        self._bg_band = _tolerant_band((self._bg_hi, self._bg_lo), thr)
        self._bg_hp_band = _tolerant_band(self._bg_hp, 0.6 * thr)
        self._bg_cr_band = None if self._bg_cr is None else _chroma_band(self._bg_cr, thr)
        self._bg_cr_cue_band = None if self._bg_cr is None else _chroma_band(self._bg_cr, thr, CUE_CHROMA_K)

    # --- main entry
    def update(self, frame_bgr: np.ndarray, frame_index: int, t_seconds: float) -> Optional[CountEvent]:
        """Advance by one frame; returns a :class:`CountEvent` when a sheet is counted.
        ``frame_bgr``: a BGR array, or a decoder's :class:`~core.counting.frames.YuvFrame`
        (then a count's ``image`` is the converted frame)."""
        if frame_bgr is None or frame_bgr.size == 0:
            return None
        shape = frame_bgr.shape[:2]
        if self._shape != shape:
            first = self._shape is None
            self._geometry(shape)
            if not first:
                _log.warning("frame size changed to %dx%d: relearning the background", shape[1], shape[0])
            self._bg_full = None
        self.frames_seen += 1
        if not self.wants(t_seconds):
            return None
        fps = float(getattr(self.cfg, "idle_fps", 0.0) or 0.0)
        was_stable = self.state == EngineState.STABLE
        event = self._analyse(frame_bgr, frame_index, t_seconds)
        if fps > 0:
            if self.state == EngineState.STABLE and was_stable:
                # an idle scene is watched at idle_fps: an arm takes many frames to come in
                step = 1.0 / fps
                self._next_t = t_seconds + step if self._next_t is None else max(self._next_t + step, t_seconds)
            else:
                # a cycle (motion, settling, the decision) is analysed frame by frame: the
                # cycle's figures (swept area, peak) must not depend on a sampling rate
                self._next_t = t_seconds
        return event

    def wants(self, t: float) -> bool:
        """Whether the frame at video time ``t`` will be analysed (``cfg.idle_fps`` frames/s
        while the scene is idle, every frame during a cycle); the others are skipped at no
        cost. A file source can leave them unconverted (``want=``). Frames that arrive
        less than 4 ms apart are a burst of buffered frames (a stream that just connected or
        caught up): their times say nothing about when they were taken, so each is analysed.
        """
        if self._seen_t is not None and t == self._seen_t:
            return self._seen_ans          # asked again for the same frame (source, then update)
        fps = float(getattr(self.cfg, "idle_fps", 0.0) or 0.0)
        burst = self._seen_t is not None and 0.0 < t - self._seen_t < BURST_DT
        self._seen_t = t
        self._seen_ans = fps <= 0 or burst or self._next_t is None or t + 1e-6 >= self._next_t
        return self._seen_ans

    def _analyse(self, frame_bgr: np.ndarray, frame_index: int, t_seconds: float) -> Optional[CountEvent]:
        small_raw = _gray_small(frame_bgr, self._small_size)
        self._cur_small = (frame_bgr, small_raw, None)
        # black frame of a failing stream: no information at all
        mean, std = cv2.meanStdDev(small_raw)
        if float(mean[0, 0]) < 12.0 and float(std[0, 0]) < 6.0:
            self.frames_ignored += 1
            return None
        self._glob = 1.0
        self._gain = None
        g = self._norm(small_raw)
        if self._bg_full is None:
            self._set_background(frame_bgr, t_seconds)
            self._prev_small, self._prev_t = g, t_seconds
            self._prev_hi, self._prev_lo = _hi_lo(g)
            self.state = EngineState.STABLE
            self.last_reason = "background learned"
            return None
        dt = t_seconds - (self._prev_t if self._prev_t is not None else t_seconds)
        if dt <= 0:  # repeated / out-of-order timestamp: nothing new to learn from it
            return None
        # a gap (dropped frames, a stalled stream) is worth at most a few frame intervals
        dt = min(dt, 0.12)

        roi = self._watch
        if self._bands_thr != self.pix_thr:      # thresholds changed (apply_settings)
            self._bands()
        bg_up, bg_lo = self._bg_band
        ch_bg = (g > bg_up) | (g < bg_lo)
        cr = pre_cr = None
        # against the previous frame at the previous frame's exposure: where the picture differs
        # from the background (a sheet laid since), the background's gain map holds only the
        # global gain, and a flicker band rolling over the frame would show there as motion
        rel = self._rel_gain(g)
        # (g / 1.0 is g: no copy when no cell needs a relative gain)
        ch_prev = _tolerant_changed(g if isinstance(rel, float) and rel == 1.0 else g / rel, self._prev_hi,
                                    self._prev_lo, self.pix_thr)
        cr_raw = _chroma_small(frame_bgr, self._cr_size) if self._bg_cr is not None else None
        self._cur_small = (frame_bgr, small_raw, cr_raw)
        if cr_raw is not None and self._bg_cr_band is not None:
            # same exposure and light gradient as the background: red−blue scales with the light too
            gm = self._gain
            if gm is not None:
                h2, w2 = cr_raw.shape
                gm2 = gm[::2, ::2]
                cr = cr_raw / np.maximum(gm2[:h2, :w2] if gm2.shape[0] >= h2 and gm2.shape[1] >= w2
                                         else cv2.resize(gm, (w2, h2), interpolation=cv2.INTER_AREA), 0.05)
            else:
                cr = cr_raw * (1.0 / max(self._glob, 0.05))
            up = self._small_size
            # a colour change counts when it is large AND not proportional to the colour that was
            # there (light and exposure scale red−blue; an arm replaces it)
            cr_up, cr_lo = self._bg_cr_band
            cb = ((cr > cr_up) | (cr < cr_lo)).view(np.uint8)
            ch_bg |= cv2.resize(cb, up, interpolation=cv2.INTER_NEAREST).view(bool)
            pre_cr = self._prev_cr
            if self._prev_cr is not None:
                cp = _chroma_changed(cr, self._prev_cr[0], self._prev_cr[1], self.pix_thr).view(np.uint8)
                ch_prev |= cv2.resize(cp, up, interpolation=cv2.INTER_NEAREST).view(bool)
            self._prev_cr = _hi_lo(cr)
        self._change = np.count_nonzero(ch_bg & self._roi_small) / self._roi_n
        self._ch_bg = ch_bg
        self._motion = np.count_nonzero(ch_prev & roi) / self._watch_n
        rim_px = [np.count_nonzero(ch_bg[sl]) for sl, _n in self._side_n]
        self._rim = max((c / n for c, (_sl, n) in zip(rim_px, self._side_n)), default=0.0)
        ch_cue, cue_change, cue_rim = ch_bg, self._change, self._rim
        if cr is not None and (self.state != EngineState.STABLE or self._change > self.motion_frac
                               or self._rim > self.rim_frac):
            # the cycle's figures also see weaker colour changes (CUE_CHROMA_K); only while a
            # cycle runs or starts (they feed nothing else): an idle frame skips them
            w_up, w_lo = self._bg_cr_cue_band
            cw = ((cr > w_up) | (cr < w_lo)).view(np.uint8)
            ch_cue = ch_bg | cv2.resize(cw, self._small_size, interpolation=cv2.INTER_NEAREST).view(bool)
            cue_change = np.count_nonzero(ch_cue & self._roi_small) / self._roi_n
            cue_rim = max((np.count_nonzero(ch_cue[sl]) / n for sl, n in self._side_n), default=0.0)
        # a trace on ONE side only (an arm comes in from one side; camera shake shows on several)
        prev_trace, self._rim_trace = self._rim_trace, sum(c > RIM_CLEAR_PX for c in rim_px) == 1
        self._prev_small, self._prev_t = g, t_seconds
        pre_hi, pre_lo = self._prev_hi, self._prev_lo
        self._prev_hi, self._prev_lo = _hi_lo(g)

        moving = self._motion > self.motion_frac
        glitch_ref, self._glitch_ref = self._glitch_ref, None
        if moving and GLITCH_CHECK:
            if glitch_ref is not None:
                # the frame after a one-frame jolt of a still scene (an exposure step, a shaken
                # or badly compressed frame): back at the still frame before it, its motion is the
                # jolt's way back, no arm (an arm moving in view differs from both frames)
                if self._back_at(glitch_ref, g, cr, roi):
                    moving = False
            elif self.state == EngineState.SETTLING and not self._was_moving:
                self._glitch_ref = (pre_hi, pre_lo, pre_cr)
        jolt, self._jolt, undo = self._jolt, None, None
        if jolt is not None and JOLT_CHECK and jolt["decided_n"] == self._decided_n:
            # a jolt of a still scene is over when the picture is back at the still frame before it
            # (an arm that came in has left something or is still there: never back)
            if jolt["state"] == EngineState.STABLE:
                # (an idle scene: back when nothing differs from the background, as before it)
                is_back = self._change <= self.motion_frac and self._rim <= self.rim_frac
            else:
                is_back = self._back_at(jolt["ref"], g, cr, roi)
            if is_back:
                undo, moving = jolt, False
            elif jolt["frames"] < JOLT_MAX_FRAMES and t_seconds - jolt["t0"] <= JOLT_MAX_S:
                jolt["frames"] += 1
                self._jolt = jolt
        elif JOLT_CHECK and not self._was_moving and (
                (moving and self.state == EngineState.SETTLING and self._settled is not None)
                or (self.state == EngineState.STABLE and (self._change > self.motion_frac or self._rim > self.rim_frac))):
            # the first moving frame of a still scene (waiting for its decision, or idle): keep the
            # state as it is, to undo a jolt. An idle scene's jolt had started a cycle of its own,
            # the jolt's way in wider than its way out, like an arm that brought a sheet
            self._jolt = self._jolt_state(pre_hi, pre_lo, pre_cr, t_seconds - dt)
        was_moving, self._was_moving = self._was_moving, moving
        prev_rim, self._prev_rim = self._prev_rim, self._rim
        # the highest the entry zone rose since it was last clear: an arm crossing it fills it
        occ_peak = self._occ_peak
        self._occ_peak = max(occ_peak, self._rim) if self._rim > self.rim_frac else 0.0
        # the arm's way out: motion in the band along the edge. Motion inside the area with
        # none there means the arm (maybe a dark sleeve on a dark floor) is still in view
        rim_moving = max((np.count_nonzero(ch_prev[sl]) / n for sl, n in self._exit_n), default=0.0) > self.rim_frac
        event = None
        if undo is not None:
            # back at the still scene after a jolt: the stillness goes on, its time included; the
            # jolt's frames and this one are no part of the cycle's figures
            for k in _JOLT_STATE:
                setattr(self, k, undo[k])
            self._motion_acc, self._sharp_acc, self._cyc_masks = undo["acc"]
            self._still_time = undo["_still_time"] + (t_seconds - undo["t0"])
            self._clear_run = undo["_clear_run"] + (t_seconds - undo["t0"])
            return None
        moved_out_before = self._exit_moved    # the last arm seen moving out, as known before this frame
        if self.state == EngineState.STABLE:
            if self._change > self.motion_frac or self._rim > self.rim_frac:
                self.state = EngineState.MOTION
                self._refresh_cand = None
                self._occluded_still = 0.0
                self._cycle_start = t_seconds
                self._motion_acc = ch_cue.copy()
                self._peak, self._cue_peak = self._change, cue_change
                self._sharp_acc = self._sharp_changed(g)
                self._cyc_masks = [(t_seconds, ch_cue & self._roi_small, cue_rim)]
                self._last_motion_t = t_seconds
                self._exit_seen = self._exit_moved = rim_moving
            elif moving:
                self._refresh_cand = None
            elif self._refresh_cand is not None:
                cand_small, cand_t = self._refresh_cand
                if t_seconds - cand_t >= REFRESH_HOLD_S:
                    # nothing moved since the candidate was taken: it held no arm on its way in
                    self._refresh_cand = None
                    self._set_background(cand_small[0], cand_t, cand_small)
            elif t_seconds - self._last_refresh > 1.0:
                # absorb slow light drift and gradients while nothing happens -- with a frame
                # after which nothing moved for a while (the tip of an arm coming in, still
                # below the motion limits, must not become part of the background)
                f, raw, rb = self._cur_small
                # a copy now, when the caller may draw on its frame after this call
                self._refresh_cand = ((f.copy() if self.copy_frames else f, raw, rb), t_seconds)
        else:
            sharp = self._sharp_changed(g)
            arm_in_view = self._rim > self.rim_frac
            if (self.state == EngineState.SETTLING and arm_in_view and rim_moving and self._settled is not None
                    and (moved_out_before or self._still_clear or self._clear_run + 1e-6 >= CLEAR_RUN_S)
                    and self._still_time + 1e-6 >= MIN_STILL_S):
                # the next arm enters before settle_s ran out (fast feeding): decide now on the
                # last still frame, so that two sheets never merge into one cycle. Only once the
                # last arm was seen moving out, or the entry zone showed no trace while all was
                # still (or none for CLEAR_RUN_S at its end: small hands that slipped out below
                # the motion limits): otherwise this is that arm, resting hardly seen at the edge,
                # moving out. This frame is the next cycle's first: none of its figures go into
                # the decided cycle's (the next arm's entry had read as this arm's way out)
                f_, i_, t_ = self._settled
                event = self._decide(f_, i_, t_, self._settled_ch)
                if JOLT_CHECK:
                    # a jolt of the camera reads as the next arm too: back at the still scene
                    # within JOLT_MAX_FRAMES, it is undone (no cycle of its own)
                    self._jolt = self._jolt_state(pre_hi, pre_lo, pre_cr, t_seconds - dt)
                self.state = EngineState.MOTION          # this frame starts the next cycle
                self._cycle_start = t_seconds
                self._motion_acc = ch_prev.copy()
                self._peak, self._cue_peak = self._change, cue_change
                self._sharp_acc = sharp.copy()
                self._cyc_masks = [(t_seconds, ch_cue & self._roi_small, cue_rim)]
                self._last_motion_t = t_seconds
                self._exit_seen = self._exit_moved = True    # motion in the edge band, an arm in view
                return event
            if self._motion_acc is not None:
                self._motion_acc |= ch_cue
            self._peak = max(self._peak, self._change)
            self._cue_peak = max(self._cue_peak, cue_change)
            if self._sharp_acc is not None:
                self._sharp_acc |= sharp
            self._cyc_masks.append((t_seconds, ch_cue & self._roi_small, cue_rim))
            if len(self._cyc_masks) > 400:        # a long cycle: keep every other frame
                self._cyc_masks = self._cyc_masks[::2]
            if rim_moving and max(self._rim, prev_rim) > self.rim_frac:
                # motion in the edge band where something is (or just was) in view: a way out.
                # A flicker of the band with nothing in it (an arm the camera cannot tell from
                # the floor there) is no exit
                self._exit_seen = self._exit_moved = True
            elif moving and (self.state != EngineState.SETTLING or was_moving):
                # motion inside with none in the edge band: the arm is still in view. Once all was
                # still again, it takes two frames in a row: a one-frame blip of a harsh camera
                # (flicker, noise on tread plate) kept resetting the way out, and each sheet then
                # waited NO_EXIT_SETTLE_S
                self._exit_seen = self._exit_moved = False
            if moving or arm_in_view:
                self._last_motion_t = t_seconds
            if moving:
                self.state = EngineState.MOTION
                self._still_time = 0.0
                self._deferred = False
            elif arm_in_view:
                if self.state != EngineState.OCCLUDED and not STUCK_OVER_CYCLE:
                    self._occluded_still = 0.0
                self.state = EngineState.OCCLUDED
                self._still_time = 0.0
                self._occluded_still += dt
                if self._occluded_still >= STUCK_S:
                    # something stays at the rim for good (a parked cart, a moved bin): re-learn
                    # the scene instead of waiting forever; an object at the rim is no sheet
                    self._set_background(frame_bgr, t_seconds)
                    self.state = EngineState.STABLE
                    self._motion_acc = None
                    self.last_reason = f"rim occupied for {STUCK_S:.0f} s: background re-learned, no count"
                    _log.info("frame %d: %s", frame_index, self.last_reason)
            elif self.state in (EngineState.MOTION, EngineState.OCCLUDED):
                came_moving = self.state == EngineState.MOTION or was_moving
                if (self.state == EngineState.OCCLUDED or prev_rim > self.rim_frac) and (
                        occ_peak >= OCC_PEAK_K * self.rim_frac or was_moving):
                    # the arm held the entry zone and has now left it (a slow arm leaves
                    # the band without moving enough in it to count as motion there). Not when
                    # the zone only rose to its limit and fell back with nothing moving: hands on
                    # dark sleeves resting over the sheet, the sleeves' edges just at the limit
                    self._exit_seen = True        # (seen moving out, if it was, stays so)
                self.state = EngineState.SETTLING
                self._still_time = 0.0
                self._occluded_still = 0.0
                # a trace on the stillness's first frame is most often the arm's tail on its way
                # out (a fast-fed arm whose way out the edge band missed): only later frames count
                self._still_clear = True
                self._clear_run = 0.0
                self._late_trace = self._late_hold = False
                # ... a tail only where something moved: a stillness that begins as the zone falls
                # back from OCCLUDED with nothing moving (hands on dark sleeves resting over the
                # sheet, the sleeves' edges flickering at the zone's limit) shows no arm going out
                self._tail_trace = (self._rim_trace or prev_trace) and (not TAIL_AFTER_MOTION or came_moving)
                self._settled = (frame_bgr, frame_index, t_seconds)   # a reference: callers hand a new array per frame
                self._settled_small = self._cur_small
                self._settled_ch = ch_bg
            else:
                self._still_time += dt
                self._still_clear = self._still_clear and not self._rim_trace
                # a trace that went away while all was still: small hands slipping out at the
                # edge, below the motion limits. A resting arm's trace stays (or flickers back)
                self._clear_run = 0.0 if self._rim_trace else self._clear_run + dt
                self._late_trace = self._late_trace or self._rim_trace
                self._late_hold = self._late_hold or (self._rim_trace and LATE_TRACE_MIN <= self._change < LATE_TRACE_CHANGE)
                if (not self._exit_seen and self._tail_trace and not self._late_trace
                        and self._clear_run + 1e-6 >= TAIL_CLEAR_S):
                    # the way out was not seen in the edge band, but the arm's tail showed in the
                    # entry zone as it stopped moving and has not come back: it slipped out (a fast
                    # arm crossing the band between two frames). A sleeve the camera cannot see
                    # shows no tail; a resting arm's trace stays or flickers back (late trace)
                    self._exit_seen = True
                # no way out seen since the last motion inside: wait longer (an arm whose
                # sleeve the camera cannot see may still hold the sheet)
                need = self.settle_s if self._exit_seen else max(self.settle_s, NO_EXIT_SETTLE_S)
                # unless the arm was seen moving out: a faint trace left on one side of the entry
                # zone (a few pixels: an arm the camera can hardly tell from the floor, resting
                # there) means the arm is still in; an empty zone shows at most a pixel a side.
                # Past FAINT_RIM_S the trace is taken for part of the scene. Only after an arm came
                # in (a cycle that barely changed the area is a blip of the camera). A trace seen
                # after the stillness's first frame (on the first it is most often the arm's tail
                # on its way out) while LATE_TRACE_CHANGE to LATE_TRACE_CHANGE_MAX of the area
                # still differs holds until the zone has been clear for TRACE_CLEAR_S, even after
                # an arm was seen moving in the edge band (an arm that came in moves there too):
                # hands resting over the sheet fade in and out of the zone without moving. Not
                # with less (an identical sheet: nothing differs once the arm is gone) or more
                # (a new sheet of another look, its corner in the zone)
                if (((self._rim_trace and not self._exit_moved)
                     or (self._late_trace and self._clear_run + 1e-6 < TRACE_CLEAR_S
                         and LATE_TRACE_CHANGE <= self._change < LATE_TRACE_CHANGE_MAX)
                     or (self._late_hold and self._clear_run + 1e-6 < LATE_TRACE_CLEAR_S))
                        and self._peak >= FAINT_RIM_PEAK and self._still_time < FAINT_RIM_S):
                    need = FAINT_RIM_S
                if self._deferred:          # the last verdict was put off: DEFER_S more of stillness
                    need = DEFER_S
                if self._still_time + 1e-6 >= need:
                    event = self._decide(frame_bgr, frame_index, t_seconds, may_defer=True)
                else:
                    self._settled = (frame_bgr, frame_index, t_seconds)   # a reference: callers hand a new array per frame
                    self._settled_ch = ch_bg
                self._settled_small = self._cur_small
        return event

    def _back_at(self, ref: tuple, g: np.ndarray, cr: Optional[np.ndarray], roi: np.ndarray) -> bool:
        """Whether this frame (grey ``g``, red−blue ``cr``) is back at the still frame ``ref``
        (its grey bands and red−blue bands): no more of the watched area differs from it than
        motion does."""
        gh, gl, gcr = ref
        back = _tolerant_changed(g, gh, gl, self.pix_thr)
        if gcr is not None and cr is not None:
            cb2 = _chroma_changed(cr, gcr[0], gcr[1], self.pix_thr).view(np.uint8)
            back |= cv2.resize(cb2, self._small_size, interpolation=cv2.INTER_NEAREST).view(bool)
        return bool(np.count_nonzero(back & roi) / self._watch_n <= self.motion_frac)

    def _jolt_state(self, ref_hi: np.ndarray, ref_lo: np.ndarray, ref_cr: Optional[tuple], t0: float) -> dict[str, Any]:
        """The state to go back to if the picture returns to the still frame ``ref_*`` (the one at
        ``t0``) within JOLT_MAX_FRAMES: a jolt of the camera, no arm."""
        return {"ref": (ref_hi, ref_lo, ref_cr), "frames": 1, "t0": t0, "decided_n": self._decided_n,
                "acc": (None if self._motion_acc is None else self._motion_acc.copy(),
                        None if self._sharp_acc is None else self._sharp_acc.copy(), list(self._cyc_masks)),
                **{k: getattr(self, k) for k in _JOLT_STATE}}

    def _halves(self) -> tuple[list[tuple[np.ndarray, float]], list[tuple[np.ndarray, float]]]:
        """The cycle's (changed mask, rim) per frame, split at the middle of its moving part
        (both empty for a cycle of fewer than two frames)."""
        if len(self._cyc_masks) < 2 or self._cycle_start is None:
            return [], []
        mid = (self._cycle_start + max(self._last_motion_t, self._cycle_start)) / 2.0
        return ([(m, r) for t, m, r in self._cyc_masks if t <= mid],
                [(m, r) for t, m, r in self._cyc_masks if t > mid])

    def _asymmetry(self, first: list[tuple[np.ndarray, float]],
                   second: list[tuple[np.ndarray, float]]) -> tuple[float, float]:
        """How much more came in than went out, the cycle split at the middle of its moving
        part: (share of the ROI that changed in the first half and never in the second, how
        much wider the change in the edge band was in the first half than in the second). An
        arm goes out the way it came in; an arm that brought a sheet came in wider than it
        leaves, whatever the sheet's colour or texture. The area counts only near where sharp
        structure changed during the cycle (a passing soft shadow changes none). ``first``,
        ``second``: :meth:`_halves`."""
        if not first or not second:
            return 0.0, 0.0
        u1 = np.logical_or.reduce([m for m, _ in first])
        u2 = np.logical_or.reduce([m for m, _ in second])
        wider = max(r for _, r in first) - max(r for _, r in second)
        # only where sharp structure changed at some moment of the cycle (near an edge of the
        # arm or of a carried sheet): a soft shadow passing through changes none
        if self._sharp_acc is None:
            return 0.0, max(0.0, float(wider))
        near_sharp = cv2.dilate(self._sharp_acc.view(np.uint8), np.ones((3, 3), np.uint8), iterations=2) > 0
        return float(np.count_nonzero(u1 & ~u2 & near_sharp)) / self._roi_n, max(0.0, float(wider))

    def _elsewhere_change(self, ch_bg: Optional[np.ndarray]) -> float:
        """What differs from the background outside the counted area and the entry zone, as a
        share of the counted area (a sheet put down in a masked part shows there)."""
        if ch_bg is None or self._elsewhere is None:
            return 0.0
        return float(np.count_nonzero(ch_bg & self._elsewhere)) / self._roi_n

    def _sharp_changed(self, g: np.ndarray) -> np.ndarray:
        up, lo = self._bg_hp_band        # the background's high-pass range ± 0.6·thr
        hp = _highpass(g)
        return ((hp > up) | (hp < lo)) & self._roi_small

    def _decide(self, frame: np.ndarray, index: int, t: float,
                ch_bg: Optional[np.ndarray] = None, may_defer: bool = False) -> Optional[CountEvent]:
        from core.counting.cues import NEW_COVER_MIN, _bbox, cycle_span, rect_fill, thin_span
        self._decided_n += 1
        mb = None
        if self._motion_acc is not None and self._motion_acc.any():
            bx, by, bw, bh = _bbox(self._motion_acc)
            mb = [int(bx * self._sx), int(by * self._sy), int((bx + bw) * self._sx), int((by + bh) * self._sy)]
        first, second = self._halves()
        asym = self._asymmetry(first, second)
        # the fast-feeding path decides on the last still frame: its own change, not this frame's
        # (where the next arm already is)
        still_change = self._change if ch_bg is None else np.count_nonzero(ch_bg & self._roi_small) / self._roi_n
        change = Change(roi=list(self.roi), mask=self._mask_full, motion_box=mb,
                        cycle_s=t - (self._cycle_start or t), frame=index, t=t,
                        carried=self._cue_peak, final_change=still_change,
                        swept=(np.count_nonzero(self._motion_acc & self._roi_small) / self._roi_n
                               if self._motion_acc is not None else 0.0),
                        swept_edges=(np.count_nonzero(self._sharp_acc) / self._roi_n
                                     if self._sharp_acc is not None else 0.0),
                        came_not_left=asym[0], entered_wider=asym[1],
                        span=cycle_span([m for _t, m, _r in self._cyc_masks], self._roi_n),
                        span_in=thin_span([m for m, _r in first], self._roi_n),
                        span_out=thin_span([m for m, _r in second], self._roi_n),
                        elsewhere=self._elsewhere_change(self._ch_bg if ch_bg is None else ch_bg),
                        final_rect=(rect_fill((self._ch_bg if ch_bg is None else ch_bg) & self._roi_small)
                                    if still_change >= NEW_COVER_MIN else 0.0))
        t0 = time.perf_counter()
        try:
            if getattr(self.verifier, "reads_planes", False):
                verdict = self.verifier.verify(self._bg_full, frame, change)  # type: ignore[arg-type]
            else:
                verdict = self.verifier.verify(pixels(self._bg_full), pixels(frame), change)  # type: ignore[arg-type]
        except Exception as e:  # never let a verifier bug kill the counting loop
            _log.exception("verifier %s failed", getattr(self.verifier, "name", "?"))
            verdict = Verdict(False, 0.0, f"verifier error: {e}")
        ms = (time.perf_counter() - t0) * 1000
        self.last_decision_ms = ms
        if may_defer and not verdict.accept and not self._deferred and change.final_change >= DEFER_CHANGE:
            # nothing new, yet the picture still differs from the background: most often an
            # arm or hands still hovering there, unseen at the edge. Keeping this frame as the
            # background would keep them in it; wait until something moves again (the cycle
            # goes on) or DEFER_S of stillness, then decide again
            self._deferred = True
            self._still_time = 0.0
            self.last_reason = f"{verdict.reason}; {change.final_change:.0%} of the area still differs: waiting"
            _log.debug("frame %d: %s", index, self.last_reason)
            return None
        self._deferred = False
        self.last_reason = verdict.reason
        self.last_decision_t = t
        # nothing came and the picture is the background's again: the background stays (this frame
        # may hold the tip of the next arm, below every limit; it would stay in view for good)
        if verdict.accept or not KEEP_BACKGROUND_IF_NOTHING or still_change >= self.motion_frac or self._bg_full is None:
            self._set_background(frame, t)
        self.state = EngineState.STABLE
        self._still_time = 0.0
        self._motion_acc = None
        self._peak = self._cue_peak = 0.0
        self._cyc_masks = []
        self._settled = None
        self._sharp_acc = None
        self._settled_small = None
        self.last_decision = Decision(frame=index, t=t, accept=bool(verdict.accept), confidence=float(verdict.confidence),
                                      reason=verdict.reason, cues=verdict.cues, decided_by=list(verdict.decided_by or []),
                                      ms=ms)
        self.decisions.append(self.last_decision)
        del self.decisions[:-50]
        _log.debug("decision at frame %d t=%.2f: %s (%s, %.1f ms)", index, t,
                   "COUNT" if verdict.accept else "no count", verdict.reason, ms)
        if not verdict.accept:
            return None
        self.count += 1
        self.last_box = verdict.box
        return CountEvent(index=self.count, frame=index, t=t, wall_time=datetime.now(timezone.utc),
                          confidence=verdict.confidence, reason=verdict.reason, box=verdict.box,
                          # the caller may draw on its frame; the capture stays clean
                          image=(pixels(frame).copy() if self.copy_frames else pixels(frame)) if self.event_images
                          else _NO_IMAGE,
                          verifier=getattr(self.verifier, "name", "custom"),
                          cues=verdict.cues, decided_by=verdict.decided_by)

    def snapshot(self) -> EngineStatus:
        return EngineStatus(state=self.state, motion=self._motion, change=self._change, rim=self._rim,
                            frames_seen=self.frames_seen, frames_ignored=self.frames_ignored, count=self.count,
                            last_reason=self.last_reason, last_box=self.last_box,
                            last_decision_t=self.last_decision_t,
                            last_decision_ms=getattr(self, "last_decision_ms", None))
