"""Synthetic top-down stacking clips with ground truth — the project's own test data.

A fixed camera looks down on a floor (concrete, painted or tiles) with a bin or pallet.
Sheets are stacked in it; every physical sheet has its OWN fine surface texture
(brushed, mill scale, galvanized spangle or painted — "same finish" means same kind and
colour, never the same pixels). A robot arm (dark or bright, with a shadow) enters from a
frame edge carrying a sheet, releases it on the stack and leaves; a hand-only event
reaches in, touches the stack and leaves with nothing; the arm may pause in view on its
way out. Nuisances: slow light drift, mains flicker, auto-exposure jumps when a dark arm
enters, arm shadows, camera shake, sensor noise, lens blur, JPEG / H.264 artifacts, black
frames, frozen (repeated) frames and dropped frames.

Clip API::

    >>> from core.synthetic.clips import ClipSpec, Event, Nuisances, render_clip
    >>> spec = ClipSpec(width=320, height=240, fps=15, seed=1,
    ...                 events=[Event("sheet"), Event("hand"), Event("sheet", gap_s=0.4)])
    >>> truth = render_clip(spec, "/tmp/x.mp4")          # doctest: +SKIP
    >>> truth.expected_count, [e.stable_frame for e in truth.events]   # doctest: +SKIP
    (2, [31, 58, 80])

``ClipTruth`` (JSON via ``to_json``/``save``/``load``) holds per event: ``kind`` ("sheet" or
"hand"), ``enter_frame`` (arm first in view), ``release_frame`` (sheet released / stack
touched), ``stable_frame`` (first frame with arm and shadow gone: the scene is stable
again) and ``box`` (xyxy of the new sheet). Frame numbers are 0-based indices of the
written file (dropped frames are simply missing from it).

Still-frame API (detector training, measurement)::

    >>> import numpy as np
    >>> from core.synthetic.clips import render_still
    >>> img, top_box, boxes, meta = render_still(np.random.default_rng(0), (640, 480),
    ...                                          n_sheets=3, arm="partial")
    >>> img.shape, len(boxes), meta["finish"] in FINISHES
    ((480, 640, 3), 3, True)

``render_still(rng, size=(w, h), *, n_sheets=None, finish=None, floor=None,
container=None, arm=None, max_angle_deg=0, max_offset_px=None, nuisances=True)`` returns
``(image_bgr, top_sheet_box_xyxy | None, all_sheet_boxes, meta)``. ``arm`` is None (random),
"none", "partial" (the arm occludes part of the top sheet) or "carry" (a sheet in flight).
``meta`` has ``finish``, ``floor``, ``container``, ``angle_deg``, ``top_sheet_rect``
(cx, cy, w, h, angle — a cv2 rotated rect of the top sheet), ``top_sheet_corners``
(4×2 px), ``occluded_fraction`` of the top sheet, ``arm`` and ``sheet_size_px``.

CLI: ``python -m core synth --out DIR [--preset NAME|all] [--width W --height H --fps F]``
writes ``NAME.mp4`` + ``NAME.json`` per clip and prints the list as JSON.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Optional

import cv2
import numpy as np

FINISHES = ("brushed", "mill_scale", "galvanized", "painted")
FLOORS = ("concrete", "painted", "tiles")
CONTAINERS = ("bin", "pallet")
SIDES = ("left", "right", "top", "bottom")
OPTICS_SIGMA = 0.6     # px; the camera's blur (lens, demosaicing) applied to the static scene


# --------------------------------------------------------------------------- specs
@dataclass
class Event:
    """One arm cycle. ``kind`` "sheet" places a sheet; "hand" touches the stack only.

    ``gap_s`` is the stillness before the arm enters (after the previous event's scene
    became stable again); ``pause_s`` > 0 makes the arm stop in view on its way out;
    ``offset_px`` is the new sheet's offset from the one below (None = random 0–3 px).
    """
    kind: str = "sheet"
    gap_s: float = 1.0
    side: Optional[str] = None          # entry edge; None = random
    arm: Optional[str] = None           # "dark" | "bright"; None = random
    pause_s: float = 0.0
    offset_px: Optional[tuple[float, float]] = None
    speed: float = 1.0                  # >1 = faster arm


@dataclass
class Nuisances:
    light_drift: float = 0.0       # amplitude of slow gain drift (0.15 = ±15 %)
    drift_period_s: float = 20.0
    light_gradient: float = 0.0    # amplitude of a slowly swinging left/right gradient
    flicker: float = 0.0           # mains flicker amplitude (0.04 = ±4 %)
    mains_hz: float = 50.0
    auto_exposure: float = 0.0     # gain jump while a dark arm fills part of the view
    shadows: bool = True
    shake_px: int = 0              # camera shake, up to ± this many px (≤ 2 in the bar)
    noise_sigma: float = 2.0       # sensor noise (grey levels)
    jpeg_quality: int = 0          # > 0: every frame goes through JPEG at this quality
    black_frames: int = 0          # isolated black frames (failing stream)
    frozen_runs: int = 0           # runs of 2–6 repeated frames
    dropped_frames: int = 0        # frames missing from the file


@dataclass
class SceneConfig:
    floor: Optional[str] = None        # None = random
    finish: Optional[str] = None
    container: Optional[str] = None
    initial_sheets: int = 0            # sheets already on the stack at frame 0
    sheet_frac: tuple[float, float] = (0.48, 0.56)   # sheet size as a fraction of (w, h)


@dataclass
class ClipSpec:
    width: int = 640
    height: int = 480
    fps: float = 30.0
    seed: int = 0
    events: list[Event] = field(default_factory=lambda: [Event()])
    nuisances: Nuisances = field(default_factory=Nuisances)
    scene: SceneConfig = field(default_factory=SceneConfig)
    lead_in_s: float = 1.0
    tail_s: float = 1.5
    codec: str = "h264"                # h264 (PyAV, browser-playable) | mp4v | mjpg (.avi; OpenCV)
    crf: int = 23
    name: str = "clip"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EventTruth:
    kind: str
    index: int                     # 1-based sheet number (0 for hand events)
    enter_frame: int
    release_frame: int
    stable_frame: int
    box: Optional[list[int]] = None
    pause_s: float = 0.0


@dataclass
class ClipTruth:
    path: str
    width: int
    height: int
    fps: float
    frames: int
    expected_count: int
    events: list[EventTruth]
    black_frames: list[int] = field(default_factory=list)
    frozen_frames: list[int] = field(default_factory=list)
    dropped_scene_frames: list[int] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def sheet_events(self) -> list[EventTruth]:
        return [e for e in self.events if e.kind == "sheet"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.to_json())
        return p

    @classmethod
    def load(cls, path: str | Path) -> "ClipTruth":
        d = json.loads(Path(path).read_text())
        d["events"] = [EventTruth(**e) for e in d["events"]]
        return cls(**d)


# --------------------------------------------------------------------------- textures
def _u(h: int) -> float:
    """Texture scale unit: textures are defined at 480 px height and scale with it."""
    return max(h / 480.0, 0.5)


def _blur_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Zero-mean, unit-std noise with features of about ``sigma`` px (cheap: noise at a
    lower resolution, upsampled)."""
    h, w = shape
    if sigma <= 1.2:
        n = rng.standard_normal((h, w)).astype(np.float32)
        if sigma > 0.5:
            n = cv2.GaussianBlur(n, (0, 0), sigma)
    else:
        f = max(1, int(sigma))
        sh, sw = max(2, h // f + 2), max(2, w // f + 2)
        n = rng.standard_normal((sh, sw)).astype(np.float32)
        n = cv2.resize(n, (sw * f, sh * f), interpolation=cv2.INTER_CUBIC)[:h, :w]
    s = float(n.std()) or 1.0
    return (n - float(n.mean())) / s


def finish_colour(rng: np.random.Generator, finish: str) -> tuple[float, float, float]:
    """The clip-wide colour of a finish (BGR) — "same finish" shares it."""
    if finish == "brushed":
        g = rng.uniform(150, 195)
        return (g + rng.uniform(0, 8), g, g - rng.uniform(0, 6))
    if finish == "mill_scale":
        g = rng.uniform(65, 95)
        return (g + rng.uniform(4, 12), g + 2, g)
    if finish == "galvanized":
        g = rng.uniform(160, 190)
        return (g + 4, g + 2, g)
    palette = [(150, 95, 40), (60, 70, 170), (70, 140, 70), (200, 200, 195), (40, 150, 200)]
    c = palette[int(rng.integers(len(palette)))]
    return tuple(float(x) for x in c)  # type: ignore[return-value]


def sheet_texture(rng: np.random.Generator, w: int, h: int, finish: str,
                  colour: tuple[float, float, float], unit: float) -> np.ndarray:
    """One physical sheet's surface (BGR uint8): shared kind and colour, unique texture."""
    shape = (h, w)
    if finish == "brushed":
        streak = rng.standard_normal((h, max(8, w // 8))).astype(np.float32)
        streak = cv2.resize(streak, (w, h), interpolation=cv2.INTER_LINEAR)
        k = max(3, int(25 * unit)) | 1
        streak = cv2.blur(streak, (k, 1))
        streak /= float(streak.std()) or 1.0
        lum = 9 * streak + 5 * _blur_noise(rng, shape, 0.9 * unit) + 6 * _blur_noise(rng, shape, 40 * unit)
    elif finish == "mill_scale":
        lum = 13 * _blur_noise(rng, shape, 14 * unit) + 7 * _blur_noise(rng, shape, 3 * unit) \
            + 5 * _blur_noise(rng, shape, 0.9 * unit)
    elif finish == "galvanized":
        cell = 26 * unit
        n = max(4, int(w * h / (cell * cell)))
        seeds = np.full((h, w), 255, np.uint8)
        ys = rng.integers(0, h, n)
        xs = rng.integers(0, w, n)
        seeds[ys, xs] = 0
        _d, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL)
        shade = rng.normal(0, 13, int(labels.max()) + 1).astype(np.float32)
        lum = shade[labels] + 4 * _blur_noise(rng, shape, 0.9 * unit) + 4 * _blur_noise(rng, shape, 30 * unit)
    else:  # painted: orange peel + a few specks; weakest texture of all finishes
        lum = 6 * _blur_noise(rng, shape, 2.2 * unit) + 4 * _blur_noise(rng, shape, 0.9 * unit) \
            + 3 * _blur_noise(rng, shape, 35 * unit)
        for _ in range(int(w * h / (60 * unit) ** 2)):
            cv2.circle(lum, (int(rng.integers(w)), int(rng.integers(h))), max(1, int(unit)),
                       float(rng.choice([-30, 25])), -1)
    img = np.empty((h, w, 3), np.float32)
    for c in range(3):
        img[..., c] = colour[c] + lum
    # the cut edge of the sheet shows as a thin bright/dark rim
    e = max(1, int(round(1.5 * unit)))
    img[:e] *= 0.7
    img[-e:] *= 0.7
    img[:, :e] *= 0.75
    img[:, -e:] *= 0.75
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), OPTICS_SIGMA)


def floor_texture(rng: np.random.Generator, w: int, h: int, floor: str, unit: float) -> np.ndarray:
    shape = (h, w)
    if floor == "concrete":
        g = rng.uniform(105, 145)
        lum = g + 12 * _blur_noise(rng, shape, 30 * unit) + 6 * _blur_noise(rng, shape, 4 * unit) \
            + 4 * _blur_noise(rng, shape, 0.9 * unit)
        img = np.dstack([lum, lum, lum + 3]).astype(np.float32)
        for _ in range(3):  # cracks
            p = (int(rng.integers(w)), int(rng.integers(h)))
            q = (p[0] + int(rng.integers(-w // 3, w // 3)), p[1] + int(rng.integers(-h // 3, h // 3)))
            cv2.line(img, p, q, (g - 40, g - 40, g - 40), max(1, int(unit)))
    elif floor == "painted":
        base = np.array([(95, 120, 90), (110, 110, 110), (130, 100, 70)][int(rng.integers(3))], np.float32)
        lum = 5 * _blur_noise(rng, shape, 20 * unit) + 3 * _blur_noise(rng, shape, 1.5 * unit)
        img = base[None, None, :] + lum[..., None]
        x = int(rng.uniform(0.03, 0.1) * w)   # yellow safety line
        cv2.rectangle(img, (x, 0), (x + int(12 * unit), h), (30, 200, 230), -1)
    else:  # tiles
        t = int(60 * unit)
        g = rng.uniform(150, 200)
        lum = g + 6 * _blur_noise(rng, shape, 3 * unit)
        img = np.dstack([lum, lum - 4, lum - 8]).astype(np.float32)
        for y in range(0, h, t):
            for x in range(0, w, t):
                img[y:y + t, x:x + t] += rng.uniform(-10, 10)
        gw = max(2, int(round(2 * unit)))   # grout
        for y in range(0, h, t):
            img[y:y + gw, :] = g - 60
        for x in range(0, w, t):
            img[:, x:x + gw] = g - 60
    return np.clip(img, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- scene
@dataclass
class _Sheet:
    x: int       # top-left in canvas px
    y: int
    tex: np.ndarray

    @property
    def box(self) -> list[int]:
        h, w = self.tex.shape[:2]
        return [self.x, self.y, self.x + w, self.y + h]


class StackScene:
    """Floor + container + stack, rendered once per change; arm layers are drawn on top.

    Coordinates are canvas px; the canvas has a ``pad`` margin on each side so camera
    shake is a cheap crop.
    """

    def __init__(self, rng: np.random.Generator, width: int, height: int, cfg: SceneConfig,
                 pad: int = 0):
        self.rng, self.w, self.h, self.pad = rng, width, height, pad
        self.unit = _u(height)
        self.floor = cfg.floor or str(rng.choice(FLOORS))
        self.finish = cfg.finish or str(rng.choice(FINISHES))
        self.container = cfg.container or str(rng.choice(CONTAINERS))
        self.colour = finish_colour(rng, self.finish)
        fw, fh = cfg.sheet_frac
        self.sw = int(width * rng.uniform(fw * 0.95, fw * 1.05)) // 2 * 2
        self.sh = int(height * rng.uniform(fh * 0.95, fh * 1.05)) // 2 * 2
        # stack centre: near the middle, never near the border band the engine watches
        self.cx = width / 2 + rng.uniform(-0.04, 0.04) * width + pad
        self.cy = height / 2 + rng.uniform(-0.04, 0.04) * height + pad
        cw, ch = width + 2 * pad, height + 2 * pad
        self.base = floor_texture(rng, cw, ch, self.floor, self.unit)
        self._draw_container()
        # lens + sensor blur: a real camera never shows 1-px steps at full contrast
        self.base = cv2.GaussianBlur(self.base, (0, 0), OPTICS_SIGMA)
        self.sheets: list[_Sheet] = []
        self.canvas = self.base.copy()

    def _draw_container(self) -> None:
        u = self.unit
        mx, my = int(self.sw * 0.08 + 10 * u), int(self.sh * 0.08 + 10 * u)
        x1, y1 = int(self.cx - self.sw / 2 - mx), int(self.cy - self.sh / 2 - my)
        x2, y2 = int(self.cx + self.sw / 2 + mx), int(self.cy + self.sh / 2 + my)
        img = self.base
        if self.container == "pallet":
            plank = int(26 * u)
            wood = np.array([60, 110, 150], np.float32)
            for y in range(y1, y2, plank + int(8 * u)):
                rows = min(plank, y2 - y)
                tone = wood + self.rng.uniform(-15, 15)
                grain = 8 * _blur_noise(self.rng, (rows, x2 - x1), 2 * u)
                img[y:y + rows, x1:x2] = np.clip(tone[None, None] + grain[..., None], 0, 255)
        else:
            wall = int(14 * u)
            inner = np.array([70, 72, 75], np.float32) + self.rng.uniform(-10, 10)
            tex = inner[None, None] + (6 * _blur_noise(self.rng, (y2 - y1, x2 - x1), 2 * u))[..., None]
            img[y1:y2, x1:x2] = np.clip(tex, 0, 255)
            cv2.rectangle(img, (x1, y1), (x2, y2), (40, 60, 90), wall)          # painted steel rim
            cv2.rectangle(img, (x1 + wall, y1 + wall), (x2 - wall, y2 - wall), (25, 25, 28), max(1, int(2 * u)))
        self.container_box = [x1 - self.pad, y1 - self.pad, x2 - self.pad, y2 - self.pad]

    def new_sheet(self, offset: Optional[tuple[float, float]] = None) -> _Sheet:
        """A fresh physical sheet (unique texture) at its place on the stack."""
        if self.sheets:
            if offset is None:
                r = self.rng.uniform(0, 3)
                a = self.rng.uniform(0, 2 * math.pi)
                offset = (r * math.cos(a), r * math.sin(a))
            prev = self.sheets[-1]
            x, y = prev.x + int(round(offset[0])), prev.y + int(round(offset[1]))
            # the stack drifts but stays in the container
            x = int(np.clip(x, self.cx - self.sw / 2 - 6 * self.unit, self.cx - self.sw / 2 + 6 * self.unit))
            y = int(np.clip(y, self.cy - self.sh / 2 - 6 * self.unit, self.cy - self.sh / 2 + 6 * self.unit))
        else:
            x, y = int(self.cx - self.sw / 2), int(self.cy - self.sh / 2)
        tex = sheet_texture(self.rng, self.sw, self.sh, self.finish, self.colour, self.unit)
        return _Sheet(x, y, tex)

    def place(self, sheet: _Sheet) -> None:
        self.sheets.append(sheet)
        h, w = sheet.tex.shape[:2]
        self.canvas[sheet.y:sheet.y + h, sheet.x:sheet.x + w] = sheet.tex

    def top_box(self) -> Optional[list[int]]:
        if not self.sheets:
            return None
        b = self.sheets[-1].box
        return [b[0] - self.pad, b[1] - self.pad, b[2] - self.pad, b[3] - self.pad]


@dataclass
class _ArmPose:
    gx: float            # gripper centre, canvas px
    gy: float
    side: str
    height: float        # 1 = carrying height, 0.6 = at the stack (shadow closer)
    carry: Optional[_Sheet] = None


class ArmPainter:
    """Draws the arm (bar from the frame edge + gripper head), the carried sheet and
    their shadow onto a canvas."""

    def __init__(self, w: int, h: int, pad: int, unit: float, style: str):
        self.w, self.h, self.pad, self.unit = w, h, pad, unit
        self.style = style
        self.bar = int(34 * unit)
        self.head = (int(110 * unit), int(80 * unit))
        self.colour = (48, 46, 44) if style == "dark" else (40, 185, 230)
        self.shadow_vec = (0.035 * w, 0.05 * h)

    def polys(self, p: _ArmPose, dx: float = 0.0, dy: float = 0.0) -> list[np.ndarray]:
        big = 3 * (self.w + self.h)
        gx, gy, b = p.gx + dx, p.gy + dy, self.bar / 2
        if p.side == "left":
            bar = [(gx, gy - b), (-big, gy - b), (-big, gy + b), (gx, gy + b)]
        elif p.side == "right":
            bar = [(gx, gy - b), (big, gy - b), (big, gy + b), (gx, gy + b)]
        elif p.side == "top":
            bar = [(gx - b, gy), (gx - b, -big), (gx + b, -big), (gx + b, gy)]
        else:
            bar = [(gx - b, gy), (gx - b, big), (gx + b, big), (gx + b, gy)]
        hw, hh = self.head[0] / 2, self.head[1] / 2
        head = [(gx - hw, gy - hh), (gx + hw, gy - hh), (gx + hw, gy + hh), (gx - hw, gy + hh)]
        return [np.array(bar, np.int32), np.array(head, np.int32)]

    def sheet_rect(self, p: _ArmPose, dx: float = 0.0, dy: float = 0.0) -> Optional[list[int]]:
        if p.carry is None:
            return None
        h, w = p.carry.tex.shape[:2]
        x, y = int(round(p.gx + dx - w / 2)), int(round(p.gy + dy - h / 2))
        return [x, y, x + w, y + h]

    def extent(self, p: _ArmPose) -> list[float]:
        """Bounding box (canvas px) of everything the arm puts in view, shadow included."""
        sx, sy = self._shadow(p)
        pts = [np.concatenate(self.polys(p)), np.concatenate(self.polys(p, sx, sy))]
        for d in ((0, 0), (sx, sy)):
            r = self.sheet_rect(p, *d)
            if r:
                pts.append(np.array([[r[0], r[1]], [r[2], r[3]]]))
        a = np.concatenate(pts).astype(np.float64)
        big = 2 * (self.w + self.h)
        a = np.clip(a, -big, big)
        return [a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max()]

    def in_view(self, p: _ArmPose) -> bool:
        x1, y1, x2, y2 = self.extent(p)
        pad = self.pad
        return not (x2 < pad - 1 or y2 < pad - 1 or x1 > pad + self.w or y1 > pad + self.h)

    def _shadow(self, p: _ArmPose) -> tuple[float, float]:
        return self.shadow_vec[0] * p.height, self.shadow_vec[1] * p.height

    def draw(self, canvas: np.ndarray, p: _ArmPose, shadows: bool = True) -> float:
        """Paint the pose; returns the fraction of the view covered by the arm itself."""
        H, W = canvas.shape[:2]
        if shadows:
            sx, sy = self._shadow(p)
            mask = np.zeros((H, W), np.uint8)
            for poly in self.polys(p, sx, sy):
                cv2.fillPoly(mask, [poly], 255)
            r = self.sheet_rect(p, sx, sy)
            if r:
                cv2.rectangle(mask, (r[0], r[1]), (r[2], r[3]), 255, -1)
            ys, xs = np.nonzero(mask[:: 4, :: 4])
            if len(ys):
                y1, y2 = max(0, ys.min() * 4 - 4), min(H, ys.max() * 4 + 8)
                x1, x2 = max(0, xs.min() * 4 - 4), min(W, xs.max() * 4 + 8)
                sub = canvas[y1:y2, x1:x2]
                m = mask[y1:y2, x1:x2] > 0
                sub[m] = (sub[m] * 0.58).astype(np.uint8)
        r = self.sheet_rect(p)
        if r:
            tex = p.carry.tex  # type: ignore[union-attr]
            x1, y1, x2, y2 = max(0, r[0]), max(0, r[1]), min(W, r[2]), min(H, r[3])
            if x2 > x1 and y2 > y1:
                canvas[y1:y2, x1:x2] = tex[y1 - r[1]:y2 - r[1], x1 - r[0]:x2 - r[0]]
        bar, head = self.polys(p)
        cv2.fillPoly(canvas, [bar], self.colour)
        hi = tuple(min(255, c + 35) for c in self.colour)
        cv2.fillPoly(canvas, [head], hi)
        # suction cups on the head
        hw, hh = self.head[0] / 2, self.head[1] / 2
        for fx in (-0.6, 0.6):
            for fy in (-0.5, 0.5):
                cv2.circle(canvas, (int(p.gx + fx * hw), int(p.gy + fy * hh)), max(2, int(9 * self.unit)),
                           tuple(max(0, c - 30) for c in self.colour), -1)
        covered = np.zeros((max(1, H // 8), max(1, W // 8)), np.uint8)
        cv2.fillPoly(covered, [(bar // 8).astype(np.int32)], 1)
        cv2.fillPoly(covered, [(head // 8).astype(np.int32)], 1)
        return float(covered.mean())


def _smooth(a: float) -> float:
    a = min(1.0, max(0.0, a))
    return a * a * (3 - 2 * a)


def _off_point(side: str, cx: float, cy: float, painter: ArmPainter, sheet: Optional[_Sheet]) -> tuple[float, float]:
    """A gripper position from which nothing of the arm, sheet or shadow is in view."""
    sw, sh = (sheet.tex.shape[1], sheet.tex.shape[0]) if sheet is not None else painter.head
    sx, sy = painter.shadow_vec
    m = 10 + painter.pad
    if side == "left":
        return -(sw / 2 + abs(sx) + m), cy
    if side == "right":
        return painter.w + 2 * painter.pad + sw / 2 + abs(sx) + m, cy
    if side == "top":
        return cx, -(sh / 2 + abs(sy) + m)
    return cx, painter.h + 2 * painter.pad + sh / 2 + abs(sy) + m


# --------------------------------------------------------------------------- timeline
@dataclass
class _Keyframe:
    t: float
    gx: float
    gy: float
    height: float


def _event_keyframes(ev: Event, start: float, off: tuple[float, float], stack: tuple[float, float],
                     rng: np.random.Generator) -> tuple[list[_Keyframe], float]:
    """Arm path for one event; returns keyframes and the release/touch time."""
    sp = max(0.2, ev.speed)
    t_in = rng.uniform(0.55, 0.8) / sp
    t_hold = rng.uniform(0.25, 0.4) / sp
    t_out = rng.uniform(0.45, 0.6) / sp
    k = [_Keyframe(start, off[0], off[1], 1.0),
         _Keyframe(start + t_in, stack[0], stack[1], 1.0),
         _Keyframe(start + t_in + t_hold, stack[0], stack[1], 0.6)]
    release = start + t_in + t_hold
    t = release
    if ev.pause_s > 0:
        # stop about half-way out, still well in view
        f = rng.uniform(0.3, 0.5)
        px, py = stack[0] + f * (off[0] - stack[0]), stack[1] + f * (off[1] - stack[1])
        k.append(_Keyframe(t + 0.3 / sp, px, py, 0.9))
        k.append(_Keyframe(t + 0.3 / sp + ev.pause_s, px, py, 0.9))
        t += 0.3 / sp + ev.pause_s
        k.append(_Keyframe(t + t_out * 0.7, off[0], off[1], 1.0))
    else:
        k.append(_Keyframe(t + t_out, off[0], off[1], 1.0))
    return k, release


def _interp(keys: list[_Keyframe], t: float) -> tuple[float, float, float]:
    if t <= keys[0].t:
        return keys[0].gx, keys[0].gy, keys[0].height
    for a, b in zip(keys, keys[1:]):
        if t <= b.t:
            s = _smooth((t - a.t) / max(1e-6, b.t - a.t))
            return a.gx + s * (b.gx - a.gx), a.gy + s * (b.gy - a.gy), a.height + s * (b.height - a.height)
    k = keys[-1]
    return k.gx, k.gy, k.height


# --------------------------------------------------------------------------- writer
class VideoWriter:
    """H.264 (PyAV, yuv420p, faststart: plays in browsers), or mp4v / MJPG (OpenCV)."""

    def __init__(self, path: str | Path, width: int, height: int, fps: float, codec: str = "h264", crf: int = 23):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = codec
        if codec == "h264":
            import av
            self._c = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
            rate = Fraction(fps).limit_denominator(1001)
            self._s = self._c.add_stream("libx264", rate=rate)
            self._s.width, self._s.height = width, height
            self._s.pix_fmt = "yuv420p"
            self._s.options = {"crf": str(crf), "preset": "veryfast", "g": str(int(round(fps * 2)))}
            self._av = av
        else:
            fourcc = "MJPG" if codec == "mjpg" else "mp4v"   # MJPG: intra-only, repeats stay bit-exact
            self._w = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc),  # type: ignore[attr-defined]
                                      fps, (width, height))
            if not self._w.isOpened():
                raise RuntimeError(f"cannot write video {self.path}")

    def write(self, bgr: np.ndarray) -> None:
        if self.codec == "h264":
            f = self._av.VideoFrame.from_ndarray(bgr, format="bgr24")
            for pkt in self._s.encode(f):
                self._c.mux(pkt)
        else:
            self._w.write(bgr)

    def close(self) -> None:
        if self.codec == "h264":
            for pkt in self._s.encode():
                self._c.mux(pkt)
            self._c.close()
        else:
            self._w.release()


# --------------------------------------------------------------------------- clips
def _plan_glitches(rng: np.random.Generator, n_frames: int, protect: list[tuple[int, int]],
                   nz: Nuisances) -> tuple[set[int], set[int], set[int]]:
    """Scene frames that come out black, frozen or dropped — kept out of the windows
    around decisions, so ground-truth latency stays well defined."""
    free = np.ones(n_frames, bool)
    free[:2] = False
    for a, b in protect:
        free[max(0, a):min(n_frames, b)] = False
    black, frozen, dropped = set(), set(), set()

    def pick(k: int, run: int = 1) -> list[int]:
        out = []
        for _ in range(k * 20):
            if len(out) >= k:
                break
            i = int(rng.integers(2, max(3, n_frames - run)))
            if free[i:i + run].all():
                free[max(0, i - 1):i + run + 1] = False
                out.append(i)
        return out

    for i in pick(nz.black_frames):
        black.add(i)
    for i in pick(nz.frozen_runs, 6):
        for j in range(i, i + int(rng.integers(2, 7))):
            frozen.add(j)
    for i in pick(nz.dropped_frames, 3):
        for j in range(i, i + int(rng.integers(1, 4))):
            dropped.add(j)
    return black, frozen, dropped


def render_clip(spec: ClipSpec, path: str | Path, progress: Callable[[float], None] | None = None) -> ClipTruth:
    """Render ``spec`` into a video at ``path`` and return its ground truth.

    >>> t = render_clip(ClipSpec(320, 240, 15, events=[Event()], codec="mp4v"), "/tmp/a.mp4")  # doctest: +SKIP
    >>> t.expected_count                                                                       # doctest: +SKIP
    1
    """
    W, H, fps = int(spec.width) // 2 * 2, int(spec.height) // 2 * 2, float(spec.fps)
    rng = np.random.default_rng(spec.seed)
    nz = spec.nuisances
    pad = max(0, int(nz.shake_px))
    scene = StackScene(rng, W, H, spec.scene, pad=pad)
    for _ in range(spec.scene.initial_sheets):
        scene.place(scene.new_sheet())
    stack_c = (scene.cx, scene.cy)

    # ---- plan the timeline (scene seconds)
    plans: list[dict[str, Any]] = []
    t = spec.lead_in_s
    for ev in spec.events:
        side = ev.side or str(rng.choice(SIDES))
        style = ev.arm or str(rng.choice(["dark", "bright"]))
        painter = ArmPainter(W, H, pad, scene.unit, style)
        sheet = scene.new_sheet(ev.offset_px) if ev.kind == "sheet" else None
        if sheet is not None:  # carried so that it lands exactly at its stack place
            tgt = (sheet.x + sheet.tex.shape[1] / 2, sheet.y + sheet.tex.shape[0] / 2)
        else:
            tgt = (stack_c[0] + rng.uniform(-0.1, 0.1) * scene.sw, stack_c[1] + rng.uniform(-0.1, 0.1) * scene.sh)
        off = _off_point(side, stack_c[0], stack_c[1], painter, sheet)
        start = t + ev.gap_s if plans else t
        keys, release = _event_keyframes(ev, start, off, tgt, rng)
        # find the first scene time where everything is out of view again
        dt = 1.0 / fps
        tt = release
        while True:
            gx, gy, hgt = _interp(keys, tt)
            pose = _ArmPose(gx, gy, side, hgt, None)
            if not painter.in_view(pose) or tt > keys[-1].t + 1:
                break
            tt += dt
        plans.append(dict(ev=ev, side=side, painter=painter, sheet=sheet, keys=keys, release=release,
                          start=start, end=keys[-1].t))
        t = keys[-1].t
    n_frames = int(math.ceil((t + spec.tail_s) * fps))

    # frame-level truth (scene frame indices) from the drawn poses
    def frame_of(time_s: float) -> int:
        return int(math.ceil(time_s * fps - 1e-9))

    protect = []
    for p in plans:
        p["release_f"] = frame_of(p["release"])
        p["enter_f"] = None
        p["stable_f"] = None
    poses: list[list[tuple[dict, _ArmPose]]] = [[] for _ in range(n_frames)]
    for p in plans:
        f0, f1 = max(0, frame_of(p["start"]) - 1), min(n_frames, frame_of(p["end"]) + 2)
        last_in = None
        for f in range(f0, f1):
            gx, gy, hgt = _interp(p["keys"], f / fps)
            carry = p["sheet"] if (p["sheet"] is not None and f < p["release_f"]) else None
            pose = _ArmPose(gx, gy, p["side"], hgt, carry)
            if p["painter"].in_view(pose):
                poses[f].append((p, pose))
                if p["enter_f"] is None:
                    p["enter_f"] = f
                last_in = f
        p["stable_f"] = (last_in + 1) if last_in is not None else p["release_f"]
        # keep glitches out of [stable-2, stable+0.8 s] so latency truth is exact
        protect.append((p["stable_f"] - 2, p["stable_f"] + int(0.8 * fps) + 2))
    black, frozen, dropped = _plan_glitches(rng, n_frames, protect, nz)

    # ---- render
    writer = VideoWriter(path, W, H, fps, spec.codec, spec.crf)
    noise_bank = []
    if nz.noise_sigma > 0:
        for _ in range(6):
            n = rng.normal(0, nz.noise_sigma, (H, W, 3)).astype(np.float32)
            noise_bank.append((np.clip(n, 0, 255).astype(np.uint8), np.clip(-n, 0, 255).astype(np.uint8)))
    grad = None
    if nz.light_gradient:
        grad = np.linspace(-1, 1, W, dtype=np.float32)[None, :, None].repeat(H, 0)
    phase = rng.uniform(0, 2 * math.pi, 3)
    ae_gain, ae_target = 1.0, 1.0
    out_index = 0
    scene_to_out: dict[int, int] = {}
    last_out: Optional[np.ndarray] = None
    black_out, frozen_out = [], []
    shake = np.zeros(2, int)
    last_noise = -1
    released = set()
    try:
        for f in range(n_frames):
            t = f / fps
            # sheets land at their release frame
            for p in plans:
                if p["sheet"] is not None and id(p) not in released and f >= p["release_f"]:
                    scene.place(p["sheet"])
                    released.add(id(p))
            if f in dropped:
                continue
            scene_to_out[f] = out_index
            if f in frozen and last_out is not None:
                writer.write(last_out)
                frozen_out.append(out_index)
                out_index += 1
                continue
            if f in black:
                img = np.full((H, W, 3), int(rng.integers(0, 6)), np.uint8)
                writer.write(img)
                black_out.append(out_index)
                out_index += 1
                continue
            canvas = scene.canvas.copy() if poses[f] else scene.canvas
            cover, dark = 0.0, False
            for p, pose in poses[f]:
                c = p["painter"].draw(canvas, pose, nz.shadows)
                cover += c
                dark = dark or p["painter"].style == "dark"
            if pad:
                if rng.random() < 0.5:
                    shake = rng.integers(-pad, pad + 1, 2)
                img = canvas[pad + shake[1]: pad + shake[1] + H, pad + shake[0]: pad + shake[0] + W]
            else:
                img = canvas
            # light: drift x flicker x auto-exposure (lagging first-order response)
            g = 1.0 + nz.light_drift * math.sin(2 * math.pi * t / max(1e-3, nz.drift_period_s) + phase[0])
            if nz.flicker:
                g *= 1.0 + nz.flicker * math.sin(2 * math.pi * 2 * nz.mains_hz * t + phase[1])
            if nz.auto_exposure:
                ae_target = 1.0 + (nz.auto_exposure if dark else -0.6 * nz.auto_exposure) * min(1.0, cover / 0.06)
                ae_gain += (ae_target - ae_gain) * min(1.0, (1.0 / fps) / 0.12)
                g *= ae_gain
            if grad is not None:
                s = nz.light_gradient * math.sin(2 * math.pi * t / max(1e-3, nz.drift_period_s) + phase[2])
                img = np.clip(img.astype(np.float32) * (g * (1.0 + s * grad)), 0, 255).astype(np.uint8)
            elif abs(g - 1.0) > 1e-4:
                img = cv2.convertScaleAbs(img, alpha=g)
            elif img is scene.canvas or img.base is scene.canvas:
                img = img.copy()
            if noise_bank:
                k = int(rng.integers(len(noise_bank)))
                if k == last_noise:
                    k = (k + 1) % len(noise_bank)
                last_noise = k
                img = cv2.subtract(cv2.add(img, noise_bank[k][0]), noise_bank[k][1])
            if nz.jpeg_quality > 0:
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(nz.jpeg_quality)])
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            img = np.ascontiguousarray(img)
            writer.write(img)
            last_out = img
            out_index += 1
            if progress and f % 30 == 0:
                progress(f / n_frames)
    finally:
        writer.close()

    def out_of(scene_f: int) -> int:
        while scene_f not in scene_to_out and scene_f < n_frames:
            scene_f += 1
        return scene_to_out.get(scene_f, out_index - 1)

    events: list[EventTruth] = []
    n_sheet = 0
    for p in plans:
        is_sheet = p["sheet"] is not None
        if is_sheet:
            n_sheet += 1
            b = p["sheet"].box
            box = [b[0] - pad, b[1] - pad, b[2] - pad, b[3] - pad]
        else:
            box = None
        events.append(EventTruth(kind="sheet" if is_sheet else "hand", index=n_sheet if is_sheet else 0,
                                 enter_frame=out_of(p["enter_f"] if p["enter_f"] is not None else p["release_f"]),
                                 release_frame=out_of(p["release_f"]), stable_frame=out_of(p["stable_f"]),
                                 box=box, pause_s=p["ev"].pause_s))
    return ClipTruth(path=str(path), width=W, height=H, fps=fps, frames=out_index, expected_count=n_sheet,
                     events=events, black_frames=black_out, frozen_frames=frozen_out,
                     dropped_scene_frames=sorted(dropped), spec=json.loads(json.dumps(spec.to_dict())))


# --------------------------------------------------------------------------- stills
def render_still(rng: np.random.Generator, size: tuple[int, int] = (640, 480), *,
                 n_sheets: Optional[int] = None, finish: Optional[str] = None, floor: Optional[str] = None,
                 container: Optional[str] = None, arm: Optional[str] = None, max_angle_deg: float = 0.0,
                 max_offset_px: Optional[float] = None, sheet_frac: Optional[tuple[float, float]] = None,
                 nuisances: bool = True) -> tuple[np.ndarray, Optional[list[int]], list[list[int]], dict[str, Any]]:
    """One still frame of the scene: ``(image_bgr, top_sheet_box, all_sheet_boxes, meta)``.

    Boxes are axis-aligned xyxy px (of the rotated sheet when ``max_angle_deg`` > 0); the
    top sheet box is None when the stack is empty. See the module docstring for ``meta``.
    """
    W, H = int(size[0]), int(size[1])
    if n_sheets is None:
        n_sheets = int(rng.integers(0, 6))
    if sheet_frac is None:
        sheet_frac = (float(rng.uniform(0.3, 0.6)), float(rng.uniform(0.35, 0.65)))
    scene = StackScene(rng, W, H, SceneConfig(floor=floor, finish=finish, container=container,
                                              sheet_frac=sheet_frac), pad=0)
    unit = scene.unit
    mo = (3.0 if max_offset_px is None else float(max_offset_px))
    canvas = scene.canvas.copy()
    boxes: list[list[int]] = []
    rects: list[tuple[float, float, float, float, float]] = []
    cx, cy = scene.cx, scene.cy
    angle = 0.0
    top_mask = None
    for i in range(n_sheets):
        tex = sheet_texture(rng, scene.sw, scene.sh, scene.finish, scene.colour, unit)
        cx += rng.uniform(-mo, mo)
        cy += rng.uniform(-mo, mo)
        angle = float(rng.uniform(-max_angle_deg, max_angle_deg)) if max_angle_deg else 0.0
        sh, sw = tex.shape[:2]
        M = cv2.getRotationMatrix2D((sw / 2, sh / 2), angle, 1.0)
        M[0, 2] += cx - sw / 2
        M[1, 2] += cy - sh / 2
        warped = cv2.warpAffine(tex, M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = cv2.warpAffine(np.full((sh, sw), 255, np.uint8), M, (W, H), flags=cv2.INTER_NEAREST)
        m = mask > 0
        canvas[m] = warped[m]
        ys, xs = np.nonzero(m)
        if len(xs):
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1])
        rects.append((float(cx), float(cy), float(sw), float(sh), angle))
        top_mask = m
    arm_mode = arm or str(rng.choice(["none", "none", "partial", "carry"]))
    occluded = 0.0
    if arm_mode != "none":
        style = str(rng.choice(["dark", "bright"]))
        painter = ArmPainter(W, H, 0, unit, style)
        side = str(rng.choice(SIDES))
        carry = None
        if arm_mode == "carry":
            carry = _Sheet(0, 0, sheet_texture(rng, scene.sw, scene.sh, scene.finish, scene.colour, unit))
            f = rng.uniform(0.3, 0.9)
        else:
            f = rng.uniform(0.0, 0.45)
        off = _off_point(side, scene.cx, scene.cy, painter, carry)
        gx, gy = scene.cx + f * (off[0] - scene.cx), scene.cy + f * (off[1] - scene.cy)
        before = canvas.copy() if top_mask is not None else None
        painter.draw(canvas, _ArmPose(gx, gy, side, 0.8 if carry is not None else 0.65, carry), nuisances)
        if top_mask is not None and before is not None:
            diff = np.any(before != canvas, axis=2)
            occluded = float((diff & top_mask).sum() / max(1, top_mask.sum()))
    img = canvas
    if nuisances:
        img = cv2.convertScaleAbs(img, alpha=float(rng.uniform(0.8, 1.2)), beta=float(rng.uniform(-10, 10)))
        n = rng.normal(0, rng.uniform(0.5, 4), img.shape).astype(np.float32)
        img = np.clip(img + n, 0, 255).astype(np.uint8)
        if rng.random() < 0.5:
            _ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 95))])
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    top_rect = rects[-1] if rects else None
    corners = None
    if top_rect:
        corners = cv2.boxPoints(((top_rect[0], top_rect[1]), (top_rect[2], top_rect[3]), -top_rect[4])).tolist()
    meta = dict(finish=scene.finish, floor=scene.floor, container=scene.container, angle_deg=angle,
                top_sheet_rect=top_rect, top_sheet_corners=corners, occluded_fraction=occluded,
                arm=arm_mode, sheet_size_px=(scene.sw, scene.sh), container_box=scene.container_box)
    return img, (boxes[-1] if boxes else None), boxes, meta


# --------------------------------------------------------------------------- presets
def _ev(n: int, **kw: Any) -> list[Event]:
    return [Event(**kw) for _ in range(n)]


def presets(width: int = 320, height: int = 240, fps: float = 15.0, seed: int = 0) -> dict[str, ClipSpec]:
    """The project's own clip set: one clip per must-count / must-not-count case.

    Small by default (tests); the bench renders the same set larger.
    """
    base = dict(width=width, height=height, fps=fps)
    S = lambda name, s, **kw: ClipSpec(name=name, seed=seed * 1000 + s, **base, **kw)  # noqa: E731
    return {
        "first_sheet": S("first_sheet", 1, events=[Event("sheet")], scene=SceneConfig(initial_sheets=0)),
        "exact_on_top": S("exact_on_top", 2, scene=SceneConfig(initial_sheets=2),
                          events=[Event("sheet", offset_px=(0, 0)), Event("sheet", offset_px=(1, 0)),
                                  Event("sheet", offset_px=(3, 2))]),
        "fast_feed": S("fast_feed", 3, scene=SceneConfig(initial_sheets=1),
                       events=_ev(6, kind="sheet", gap_s=0.4, speed=1.3)),
        "hand_only": S("hand_only", 4, scene=SceneConfig(initial_sheets=1),
                       events=[Event("hand"), Event("sheet"), Event("hand", arm="dark"), Event("hand", arm="bright")]),
        "arm_pause": S("arm_pause", 5, scene=SceneConfig(initial_sheets=1),
                       events=[Event("sheet", pause_s=1.5), Event("hand", pause_s=2.0), Event("sheet", pause_s=1.0)]),
        "lighting": S("lighting", 6, scene=SceneConfig(initial_sheets=1),
                      nuisances=Nuisances(light_drift=0.15, drift_period_s=20, light_gradient=0.1, flicker=0.05,
                                          auto_exposure=0.3),
                      events=[Event("sheet", arm="dark"), Event("hand", arm="dark"), Event("sheet", arm="bright")]),
        "shake_noise": S("shake_noise", 7, scene=SceneConfig(initial_sheets=1),
                         nuisances=Nuisances(shake_px=2, noise_sigma=5, jpeg_quality=45),
                         events=[Event("sheet"), Event("hand"), Event("sheet", offset_px=(0, 0))]),
        "failing_stream": S("failing_stream", 8, scene=SceneConfig(initial_sheets=1),
                            nuisances=Nuisances(black_frames=4, frozen_runs=4, dropped_frames=4),
                            events=[Event("sheet"), Event("hand"), Event("sheet")], tail_s=3.0),
        "idle": S("idle", 9, scene=SceneConfig(initial_sheets=3), events=[Event("sheet")], lead_in_s=20.0,
                  nuisances=Nuisances(light_drift=0.2, drift_period_s=15, flicker=0.03, noise_sigma=3)),
        "painted": S("painted", 10, scene=SceneConfig(finish="painted", initial_sheets=1),
                     events=[Event("sheet", offset_px=(0, 0)), Event("hand"), Event("sheet", gap_s=0.4)]),
        "galvanized": S("galvanized", 11, scene=SceneConfig(finish="galvanized", floor="tiles", initial_sheets=1),
                        events=[Event("sheet", offset_px=(0, 0)), Event("sheet", gap_s=0.4)]),
        "mill_scale": S("mill_scale", 12, scene=SceneConfig(finish="mill_scale", floor="painted",
                                                            container="pallet"),
                        events=[Event("sheet"), Event("sheet", offset_px=(2, 2)), Event("hand")]),
    }


def demo_spec(width: int = 960, height: int = 540, fps: float = 30.0, seed: int = 7) -> ClipSpec:
    """The ~30 s bundled demo: 9 sheets, 2 hand-only touches, one arm pause, mild nuisances."""
    evs = [Event("sheet", gap_s=1.2), Event("sheet", gap_s=1.0), Event("hand", gap_s=1.0),
           Event("sheet", gap_s=0.6), Event("sheet", gap_s=0.5, pause_s=1.5), Event("sheet", gap_s=1.0),
           Event("hand", gap_s=0.8), Event("sheet", gap_s=0.6), Event("sheet", gap_s=0.5), Event("sheet", gap_s=0.8),
           Event("sheet", gap_s=1.0)]
    return ClipSpec(width=width, height=height, fps=fps, seed=seed, events=evs, name="demo", lead_in_s=1.5,
                    tail_s=2.0, scene=SceneConfig(finish="brushed", floor="concrete", container="bin"),
                    nuisances=Nuisances(light_drift=0.06, drift_period_s=25, flicker=0.02, auto_exposure=0.15,
                                        shake_px=1, noise_sigma=2.0), crf=26)


def cli_synth(argv: list[str]) -> int:
    """``python -m core synth --out DIR [--preset NAME|all|demo]``."""
    ap = argparse.ArgumentParser(prog="python -m core synth", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--preset", default="all", help="a preset name, 'all' or 'demo'")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--codec", choices=["h264", "mp4v", "mjpg"], default="h264")
    a = ap.parse_args(argv)
    if not (64 <= a.width <= 3840 and 64 <= a.height <= 2160 and 1 <= a.fps <= 120):
        print("error: size must be 64..3840 x 64..2160 and fps 1..120", file=sys.stderr)
        return 2
    out = Path(a.out)
    if a.preset == "demo":
        specs = {"demo": demo_spec()}
    else:
        allp = presets(a.width, a.height, a.fps, a.seed)
        if a.preset != "all" and a.preset not in allp:
            print(f"error: unknown preset '{a.preset}'; choose one of: all, demo, {', '.join(allp)}", file=sys.stderr)
            return 2
        specs = allp if a.preset == "all" else {a.preset: allp[a.preset]}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"error: cannot create {out}: {e.strerror}", file=sys.stderr)
        return 2
    result = []
    for name, spec in specs.items():
        spec.codec = a.codec
        truth = render_clip(spec, out / f"{name}.{'avi' if a.codec == 'mjpg' else 'mp4'}")
        truth.save(out / f"{name}.json")
        result.append({"name": name, "path": truth.path, "expected_count": truth.expected_count,
                       "frames": truth.frames, "fps": truth.fps})
        print(f"rendered {name}: {truth.frames} frames, {truth.expected_count} sheets", file=sys.stderr)
    print(json.dumps(result))
    return 0
