"""Defect analysis: locate surface defects on a captured sheet, segment them, store the results.

Stages (each its own function, like Frigate's pipeline):

1. **Load** — :func:`load_image` reads a capture safely: a missing, corrupt or truncated
   file, an over-large image (e.g. 12000×12000) or an odd format (grayscale, RGBA,
   16-bit) gives one clear :class:`BadImage` message instead of a crash.
2. **Locate — only the sheet** — :func:`find_sheet` outlines the top sheet (sheet-shaped
   candidates from edges and colour, refined to sub-pixel by :mod:`core.qa.measure`'s
   outline code); :func:`rectify_sheet` warps it to a top view at a physical scale
   (:class:`SheetScale`: one NEU-DET tile = ``tile_mm`` of sheet, K from the calibration
   or an assumed sheet width); :class:`Locator` runs the NEU-DET YOLO locator over
   overlapping 200-px tiles *inside* a margin from the sheet's edges (no whole-frame
   pass), merges boxes across tile seams, keeps each class at its own confidence (chosen
   for a stated precision, shipped in ``weights/manifest.json``), drops boxes that do not
   stand out from the sheet's own texture (:func:`texture_gate`) and maps them back to
   capture pixels. No sheet → nothing analysed, and the result says so (``NO_SHEET_MSG``).
   A close-up of the surface (a NEU tile) is analysed whole with ``whole_image=True``.
3. **Segment** — each box is a prompt for the segmenter (:mod:`core.qa.segment`: SAM 2 or
   the model-free one); every defect records which segmenter made its mask.
4. **Write** — :func:`write_outputs` stores an overlay image, one crop PNG per defect
   (tight box, mask as alpha) and one mask PNG, atomically, next to the capture
   (``<session>/defects/<capture>/``). :func:`analyse_capture` adds the ``DefectRow``
   rows, ``defects/defects.json`` and refreshes the session's ``session_log.json``.

Batch: :func:`submit_session_analysis` runs a whole session as a background job
(:class:`core.platform.jobs.JobRunner`): progress in the database (survives a page reload), one bad
capture is reported and the rest go on.

Example:
    >>> loc = Locator.from_path("weights/defect_yolo11n.pt")          # doctest: +SKIP
    >>> seg = load_segmenter(None)                                    # model-free
    >>> res = analyse_image(cv2.imread("sheet_0001.jpg"), loc, seg)   # doctest: +SKIP
    >>> [(d.type, d.bbox) for d in res.defects]                       # doctest: +SKIP
    [('scratches', [812.0, 400.5, 835.2, 590.0])]

CLI: ``python -m core defects IMAGE`` · ``python -m core eval defects`` ·
``python -m core bench defects``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import cv2
import numpy as np

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, safe_join
from core.qa.segment import MaskResult, as_bgr, load_segmenter

log = get("defects")

NEU_TILE = 200                   # NEU-DET image side: the scale the locator was trained at
MAX_PIXELS = 50_000_000          # refuse larger captures (a 12000×12000 image is 144 MP)
DEFAULT_MODEL = "defect_yolo11n.pt"
COLORS = [(60, 60, 230), (40, 180, 250), (230, 120, 40), (200, 60, 200), (60, 200, 60), (230, 200, 40)]


class BadImage(ValueError):
    """A capture that cannot be analysed, with one user-facing reason."""


# ----------------------------------------------------------------------------------------
# 1. Load
# ----------------------------------------------------------------------------------------
def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return int(im.width), int(im.height)
    except Image.DecompressionBombError:
        raise BadImage(f"{path.name}: image is far too large to analyse") from None
    except Exception as e:
        raise BadImage(f"{path.name}: not a readable image ({type(e).__name__})") from None


def _truncated(path: Path, data: bytes) -> bool:
    """JPEG without its end marker, or PNG without IEND: the file was cut short."""
    if data[:3] == b"\xff\xd8\xff":
        return b"\xff\xd9" not in data[-1024:]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return b"IEND" not in data[-64:]
    return False


def load_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a capture as 8-bit BGR. Raises :class:`BadImage` with a clear reason.

    >>> load_image("/nonexistent.jpg")
    Traceback (most recent call last):
    ...
    core.qa.defects.BadImage: nonexistent.jpg: the file is missing (deleted from disk?)
    """
    p = Path(path)
    if not p.is_file():
        raise BadImage(f"{p.name}: the file is missing (deleted from disk?)")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise BadImage(f"{p.name}: cannot be read ({e.strerror or e})") from None
    if len(data) == 0:
        raise BadImage(f"{p.name}: the file is empty")
    w, h = image_size(p)
    if w * h > max_pixels:
        raise BadImage(f"{p.name}: image is {w}×{h} ({w * h / 1e6:.0f} MP), over the {max_pixels / 1e6:.0f} MP "
                       f"limit for defect analysis — not analysed")
    if _truncated(p, data):
        raise BadImage(f"{p.name}: the image file is truncated (cut short while writing?)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise BadImage(f"{p.name}: corrupt image data (cannot be decoded)")
    try:
        return as_bgr(img)
    except ValueError as e:
        raise BadImage(f"{p.name}: {e}") from None


# ----------------------------------------------------------------------------------------
# 2. Locate
# ----------------------------------------------------------------------------------------
def _box(x1: float, y1: float, x2: float, y2: float, conf: float, cls: int, name: str) -> Any:
    from core.models.manager import Box
    return Box(float(x1), float(y1), float(x2), float(y2), float(conf), int(cls), str(name))


def tile_grid(x1: int, y1: int, x2: int, y2: int, tile: int, overlap: float) -> list[tuple[int, int, int, int]]:
    """Overlapping tiles covering ``[x1, x2) × [y1, y2)``; the last row/column is aligned
    to the far edge so no tile sticks out.

    >>> len(tile_grid(0, 0, 1920, 1080, 200, 0.2))
    84
    """
    def starts(a: int, b: int) -> list[int]:
        if b - a <= tile:
            return [a]
        stride = max(1, int(tile * (1 - overlap)))
        s = list(range(a, b - tile, stride))
        s.append(b - tile)
        return s
    return [(x, y, min(x + tile, x2), min(y + tile, y2)) for y in starts(y1, y2) for x in starts(x1, x2)]


def merge_boxes(boxes: list[Any], cut: list[bool], iou: float = 0.5, contain: float = 0.7,
                gap: float = 2.0) -> list[Any]:
    """Merge detections from overlapping tiles.

    1. class-wise NMS (``iou``) drops duplicates seen by two tiles;
    2. same-class boxes fuse into their union when one lies mostly inside the other
       (intersection / smaller area ≥ ``contain``), or when one was cut by a tile edge
       (``cut``) and they touch within ``gap`` px — a long scratch seen in pieces becomes
       one box. Score = the best piece's.
    """
    if not boxes:
        return []
    xywh = [[b.x1, b.y1, b.w, b.h] for b in boxes]
    keep = cv2.dnn.NMSBoxesBatched(xywh, [b.conf for b in boxes], [b.cls for b in boxes], 0.0, iou)
    keep = sorted(np.array(keep).reshape(-1).tolist(), key=lambda i: -boxes[i].conf)
    items = [[boxes[i].x1, boxes[i].y1, boxes[i].x2, boxes[i].y2, boxes[i].conf, boxes[i].cls, boxes[i].name,
              cut[i]] for i in keep]
    changed = True
    while changed:
        changed = False
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                a, b = items[i], items[j]
                if a[5] != b[5]:
                    continue
                ix = min(a[2], b[2]) - max(a[0], b[0])
                iy = min(a[3], b[3]) - max(a[1], b[1])
                inter = max(0.0, ix) * max(0.0, iy)
                small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
                touching = ix >= -gap and iy >= -gap
                if (small > 0 and inter / small >= contain) or ((a[7] or b[7]) and touching):
                    items[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]),
                                max(a[4], b[4]), a[5], a[6], a[7] and b[7]]
                    del items[j]
                    changed = True
                    break
            if changed:
                break
    return [_box(*it[:7]) for it in sorted(items, key=lambda t: -t[4])]


def sheet_region(image: np.ndarray, pad: int = 16) -> tuple[int, int, int, int]:
    """The bright sheet's bounding rectangle (largest Otsu blob), padded; the whole image
    when no clear sheet stands out (a close-up of metal, a NEU tile)."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    g = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    _, th = cv2.threshold(g, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    cnts, _ = cv2.findContours(th, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not cnts:
        return 0, 0, w, h
    big = max(cnts, key=cv2.contourArea)
    x, y, bw, bh = cv2.boundingRect(big)
    area = bw * bh * 16
    if area < 0.2 * w * h or area > 0.97 * w * h:
        return 0, 0, w, h
    inside = np.zeros(g.shape, np.uint8)
    cv2.drawContours(inside, [big], -1, 1, -1)
    # a real sheet stands clearly apart from the bin around it; texture streaks do not
    if abs(float(g[inside == 1].mean()) - float(g[inside == 0].mean())) < 25:
        return 0, 0, w, h
    return (max(0, 4 * x - pad), max(0, 4 * y - pad), min(w, 4 * (x + bw) + pad), min(h, 4 * (y + bh) + pad))


# ----------------------------------------------------------------------------------------
# 2a. Only the sheet: outline → top view → tiles at a physical scale
# ----------------------------------------------------------------------------------------
NO_SHEET_MSG = "No sheet found in this capture (or its edges are not clear): nothing was analysed."


@dataclass
class SheetScale:
    """How a sheet is tiled (see ``weights/README.md``, "physical scale").

    One locator tile (``tile_px`` rectified px, NEU-DET's 200) shows ``tile_mm`` of sheet.
    K (``mm_per_px``, capture px at the sheet) comes from the calibration when known; else
    the top sheet's short side is taken as ``assumed_width_mm``. The locator runs
    ``margin_mm`` inside the outline; ``max_tiles`` bounds the time per capture (the scale
    is coarsened, and says so, for a sheet that would need more).

    >>> s = SheetScale()
    >>> s.tile_mm, s.px_per_mm
    (250.0, 0.8)
    """
    tile_mm: float = 250.0
    tile_px: int = NEU_TILE
    assumed_width_mm: float = 1000.0
    margin_mm: float = 20.0
    mm_per_px: float = 0.0
    overlap: float = 0.2
    max_tiles: int = 48

    @property
    def px_per_mm(self) -> float:
        return self.tile_px / self.tile_mm


@dataclass
class SheetOutline:
    """The top sheet's outline in capture px: ``corners`` 4×2, clockwise on screen, the
    first side (corner 0 → 1) along the sheet's length."""
    corners: np.ndarray
    method: str                       # "subpixel": measure's refined outline
    length_px: float
    width_px: float

    def to_json(self) -> list[list[float]]:
        return [[round(float(x), 1), round(float(y), 1)] for x, y in self.corners]


def _order_corners(c: np.ndarray) -> np.ndarray:
    """Clockwise on screen (image y down), long side first."""
    c = np.asarray(c, np.float64).reshape(4, 2)
    m = c.mean(0)
    c = c[np.argsort(np.arctan2(c[:, 1] - m[1], c[:, 0] - m[0]))]
    if np.hypot(*(c[1] - c[0])) + np.hypot(*(c[3] - c[2])) < np.hypot(*(c[2] - c[1])) + np.hypot(*(c[0] - c[3])):
        c = np.roll(c, -1, axis=0)
    return c


def sheet_candidates(image: np.ndarray, min_area: float = 0.04, max_area: float = 0.9,
                     min_fill: float = 0.85, max_aspect: float = 5.0,
                     edge_passes: tuple[tuple[float, int, int], ...] = ((1.2, 20, 50), (1.2, 40, 100), (1.2, 60, 150),
                                                             (2.5, 12, 30), (2.5, 25, 60))) -> list[tuple[float, tuple, float]]:
    """Sheet-shaped regions: ``(area, min-area rect, contrast)`` of every contour of an Otsu
    split, in grey and in colour (Lab a/b, HSV saturation) and both polarities, that is a
    filled rectangle (≥ ``min_fill`` of its rectangle), clear of the frame's edge, between
    ``min_area`` and ``max_area`` of the frame, and stands out from the ring around it.
    A painted sheet on a grey floor only stands out in colour; a dark mill-scale sheet on a
    lighter pallet only in the dark polarity."""
    img = as_bgr(image)
    h, w = img.shape[:2]
    lab = cv2.cvtColor(img, cv2.COLOR_BGR2Lab)
    sat = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[..., 1]
    sigma = max(1.5, min(h, w) / 160)
    k = max(3, (min(h, w) // 120) | 1)
    ring_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 9, 2 * k + 9))
    out: list[tuple[float, tuple, float]] = []
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    # regions enclosed by strong edges: the top sheet is the one whole rectangle of a stack
    # (its cut edge is seen all round; the sheets beneath are partly covered by it)
    for blur, lo, hi in edge_passes:     # weak and strong edges, fine and coarse (textured finishes)
        edges = cv2.Canny(cv2.GaussianBlur(gray, (0, 0), blur), lo, hi, L2gradient=True)
        free = (cv2.dilate(edges, np.ones((3, 3), np.uint8)) == 0).astype(np.uint8)
        n, labels, st, _c = cv2.connectedComponentsWithStats(free, connectivity=4)
        for i in range(1, n):
            x, y, bw, bh, area = (int(v) for v in st[i])
            if not min_area * h * w <= area <= max_area * h * w or x <= 1 or y <= 1 or \
                    x + bw >= w - 1 or y + bh >= h - 1:
                continue
            comp = (labels[y:y + bh, x:x + bw] == i).astype(np.uint8)
            cnts, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            c = max(cnts, key=cv2.contourArea) + np.array([x, y])
            rect = cv2.minAreaRect(c)
            (rw, rh) = rect[1]
            if area < min_fill * rw * rh or max(rw, rh) > max_aspect * max(min(rw, rh), 1e-6):
                continue
            out.append((float(area), rect, float(hi)))
    for ch in (gray, lab[..., 1], lab[..., 2], sat):
        u8 = cv2.GaussianBlur(ch, (0, 0), sigma)
        if float(u8.std()) < 3:
            continue                                   # nothing in this channel (grey scene, a or b)
        noise = float(np.median(np.abs(ch.astype(np.float32) - u8))) * 1.4826 + 1.0
        for pol in (cv2.THRESH_BINARY, cv2.THRESH_BINARY_INV):
            _t, m = cv2.threshold(u8, 0, 255, pol + cv2.THRESH_OTSU)
            m = cv2.morphologyEx(m, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
            cnts, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
            for c in cnts:
                area = cv2.contourArea(c)
                if not min_area * h * w <= area <= max_area * h * w:
                    continue
                x, y, bw, bh = cv2.boundingRect(c)
                if x <= 1 or y <= 1 or x + bw >= w - 1 or y + bh >= h - 1:
                    continue
                rect = cv2.minAreaRect(c)
                (rw, rh) = rect[1]
                if area < min_fill * rw * rh or max(rw, rh) > max_aspect * max(min(rw, rh), 1e-6):
                    continue
                inside = np.zeros((h, w), np.uint8)
                cv2.drawContours(inside, [c], -1, 255, -1)
                ring = cv2.dilate(inside, ring_k) & ~inside
                contrast = abs(float(u8[inside > 0].mean()) - float(u8[ring > 0].mean()))
                if contrast < max(10.0, 4 * noise):
                    continue
                out.append((float(area), rect, contrast))
    return out


def find_sheet(image: np.ndarray, max_side: int = 1280) -> Optional[SheetOutline]:
    """The top sheet's outline (measure's sub-pixel outline code, on a copy at most
    ``max_side`` px wide: plenty for placing tiles), or None when no sheet stands out.

    >>> img = np.full((480, 640, 3), 40, np.uint8); img[100:380, 120:520] = 180
    >>> o = find_sheet(img)
    >>> o.method, round(o.length_px), round(o.width_px)
    ('subpixel', 400, 280)
    >>> find_sheet(np.full((480, 640, 3), 90, np.uint8)) is None
    True
    """
    from core.qa.measure import MeasureError, _gray, find_silhouette, refine_outline
    img = as_bgr(image)
    h, w = img.shape[:2]
    f = min(1.0, max_side / max(h, w))
    small = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else img
    gray = _gray(small)
    # candidates on a ≤ 640-px copy; the top sheet is the smallest sheet-shaped region
    # (a bin's floor, a pallet and the stack's union all hold it)
    g = min(1.0, 640 / max(small.shape[:2]))
    tiny = cv2.resize(small, (round(small.shape[1] * g), round(small.shape[0] * g)),
                      interpolation=cv2.INTER_AREA) if g < 1 else small
    cands = sheet_candidates(tiny)
    if cands:
        (cx, cy), (rw, rh), ang = min(cands, key=lambda t: t[0])[1]
        rect = (((cx + 0.5) / g - 0.5, (cy + 0.5) / g - 0.5), (rw / g, rh / g), ang)
    else:
        try:
            _cnt, rect = find_silhouette(gray)
        except MeasureError:
            return None
    corners = refine_outline(gray, rect)
    method = "subpixel"
    if corners is None:
        # no clear edge all round: a pallet, a bin or the stack's union, not one sheet — analysing
        # it would report the floor (measure refuses these too)
        return None
    # pixel centres scale about −0.5: (x + 0.5) / f − 0.5
    c = _order_corners((corners + 0.5) / f - 0.5)
    length = (np.hypot(*(c[1] - c[0])) + np.hypot(*(c[2] - c[3]))) / 2
    width = (np.hypot(*(c[2] - c[1])) + np.hypot(*(c[3] - c[0]))) / 2
    return SheetOutline(c, method, float(length), float(width))


@dataclass
class RectifiedSheet:
    """The top sheet seen from straight above at the tiling scale."""
    image: np.ndarray
    to_rect: np.ndarray               # 3×3 homography, capture px → rectified px
    to_capture: np.ndarray            # its inverse
    inner: tuple[int, int, int, int]  # the analysed rectangle (inside the margin), rectified px
    px_per_mm: float                  # rectified px per mm of sheet
    mm_per_px: float                  # K used (capture px at the sheet)
    k_source: str                     # "calibration" or "assumed sheet width"
    scale_capped: bool = False        # coarsened to stay within max_tiles

    def analysed_polygon(self) -> np.ndarray:
        """The analysed rectangle's corners in capture px (4×2)."""
        x1, y1, x2, y2 = self.inner
        return map_points(self.to_capture, np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float64))


def map_points(hm: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a homography to N×2 points.

    >>> map_points(np.diag([2.0, 3.0, 1.0]), np.array([[1.0, 1.0]])).tolist()
    [[2.0, 3.0]]
    """
    p = np.asarray(pts, np.float64).reshape(-1, 1, 2)
    return cv2.perspectiveTransform(p, np.asarray(hm, np.float64)).reshape(-1, 2)


def rectify_sheet(image: np.ndarray, outline: SheetOutline, scale: SheetScale) -> RectifiedSheet:
    """Warp the top sheet to a top view at ``scale.px_per_mm`` (perspective removed, the
    sheet's long side horizontal).

    >>> img = np.full((480, 640, 3), 40, np.uint8); img[100:380, 120:520] = 180
    >>> r = rectify_sheet(img, find_sheet(img), SheetScale(mm_per_px=2.5))
    >>> r.image.shape[:2], r.inner, r.k_source
    ((560, 800), (16, 16, 784, 544), 'calibration')
    """
    if scale.mm_per_px > 0:
        k, src = float(scale.mm_per_px), "calibration"
    else:
        k, src = scale.assumed_width_mm / max(outline.width_px, 1.0), "assumed sheet width"
    length_mm, width_mm = outline.length_px * k, outline.width_px * k
    ppm, capped = scale.px_per_mm, False

    def geometry(ppm: float) -> tuple[int, int, int]:
        wr, hr = max(2, round(length_mm * ppm)), max(2, round(width_mm * ppm))
        m = int(round(max(scale.margin_mm * ppm, 3.0 * k * ppm)))   # ≥ 3 capture px: the outline's error
        return wr, hr, m

    wr, hr, m = geometry(ppm)
    while len(tile_grid(m, m, max(m + 1, wr - m), max(m + 1, hr - m), scale.tile_px, scale.overlap)) > scale.max_tiles:
        ppm *= 0.9
        capped = True
        wr, hr, m = geometry(ppm)
    dst = np.array([[0, 0], [wr, 0], [wr, hr], [0, hr]], np.float64) - 0.5
    hm = cv2.getPerspectiveTransform(outline.corners.astype(np.float32), dst.astype(np.float32))
    rect = cv2.warpPerspective(as_bgr(image), hm, (wr, hr), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inner = (m, m, max(m + 1, wr - m), max(m + 1, hr - m))
    return RectifiedSheet(rect, hm, np.linalg.inv(hm), inner, ppm, k, src, capped)


def _inside(poly: np.ndarray, x: float, y: float) -> bool:
    return cv2.pointPolygonTest(np.asarray(poly, np.float32).reshape(-1, 1, 2), (float(x), float(y)), False) >= 0


def texture_gate(image: np.ndarray, region: Sequence[int], boxes: list[Any], n: int = 120, q: float = 99.0,
                 max_area: float = 0.25, seed: int = 0) -> tuple[list[Any], int]:
    """Keep only boxes whose content stands out from the sheet's own texture.

    A finish (mill-scale blotches, galvanized spangles, brushing) looks like NEU-DET
    defects at some scale; a real defect is rare on the sheet. For each box, ``n`` boxes of
    the same size at random places of ``region`` give the sheet's own spread of two
    statistics — |mean inside − mean of the ring around| and the spread inside — and the
    box is kept when either exceeds that spread's ``q``-th percentile. Boxes covering over
    ``max_area`` of the region are the finish itself. Returns ``(kept, dropped)``.

    >>> rng = np.random.default_rng(0)
    >>> img = np.clip(rng.normal(120, 6, (400, 400)), 0, 255).astype(np.uint8)
    >>> img[200:210, 100:300] = 40                                  # a clear scratch
    >>> kept, dropped = texture_gate(img, (0, 0, 400, 400), [_box(90, 195, 310, 215, .5, 0, "s"),
    ...                                                    _box(20, 20, 60, 60, .5, 0, "s")])
    >>> [b.x1 for b in kept], dropped
    ([90.0], 1)
    """
    if not boxes:
        return [], 0
    g = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    g = g.astype(np.float64)
    s1 = cv2.integral(g)
    s2 = cv2.integral(g * g)
    rx1, ry1, rx2, ry2 = (int(v) for v in region)
    area_r = max(1, (rx2 - rx1) * (ry2 - ry1))

    def stats(x1: int, y1: int, x2: int, y2: int) -> tuple[float, float]:
        a = max(1, (x2 - x1) * (y2 - y1))
        sm = s1[y2, x2] - s1[y1, x2] - s1[y2, x1] + s1[y1, x1]
        sq = s2[y2, x2] - s2[y1, x2] - s2[y2, x1] + s2[y1, x1]
        mean = sm / a
        std = float(np.sqrt(max(0.0, sq / a - mean * mean)))
        pw, ph = max(2, (x2 - x1) // 4), max(2, (y2 - y1) // 4)
        ox1, oy1 = max(rx1, x1 - pw), max(ry1, y1 - ph)
        ox2, oy2 = min(rx2, x2 + pw), min(ry2, y2 + ph)
        ao = max(1, (ox2 - ox1) * (oy2 - oy1))
        so = s1[oy2, ox2] - s1[oy1, ox2] - s1[oy2, ox1] + s1[oy1, ox1]
        ring = (so - sm) / max(1, ao - a)
        return abs(mean - ring), std

    kept, dropped = [], 0
    for b in boxes:
        x1, y1 = max(rx1, int(b.x1)), max(ry1, int(b.y1))
        x2, y2 = min(rx2, int(np.ceil(b.x2))), min(ry2, int(np.ceil(b.y2)))
        bw, bh = x2 - x1, y2 - y1
        if bw < 1 or bh < 1 or bw * bh > max_area * area_r or bw >= rx2 - rx1 or bh >= ry2 - ry1:
            dropped += 1
            continue
        rng = np.random.default_rng([seed, bw, bh])    # per box: a decision never depends on the others
        xs = rng.integers(rx1, rx2 - bw + 1, n)
        ys = rng.integers(ry1, ry2 - bh + 1, n)
        null = np.array([stats(int(x), int(y), int(x) + bw, int(y) + bh) for x, y in zip(xs, ys)])
        d, sd = stats(x1, y1, x2, y2)
        if d > np.percentile(null[:, 0], q) or sd > np.percentile(null[:, 1], q):
            kept.append(b)
        else:
            dropped += 1
    return kept, dropped


class Locator:
    """The defect locator: a YOLO detector run tiled over the sheet region.

    ``detector`` is anything with ``predict(image_bgr, conf=..., imgsz=...) -> list[Box]``
    and ``names`` (normally :class:`core.models.manager.YoloRunner`).

    Example:
        >>> loc = Locator.from_path("weights/defect_yolo11n.pt", tile=200)   # doctest: +SKIP
        >>> boxes = loc.locate(capture_bgr)                                   # doctest: +SKIP
        >>> loc.last_stats["tiles"]                                           # doctest: +SKIP
        84
    """

    def __init__(self, detector: Any, tile: int = NEU_TILE, overlap: float = 0.2, conf: float = 0.25,
                 iou: float = 0.5, global_pass: bool = False, use_sheet_region: bool = True,
                 class_conf: Optional[dict[str, float]] = None, scale: Optional["SheetScale"] = None,
                 gate: bool = True):
        self.detector = detector
        self.tile = int(tile)
        self.overlap = float(overlap)
        self.conf = float(conf)
        self.iou = float(iou)
        # a whole-region pass lets one box cover the frame; off unless asked for (close-ups)
        self.global_pass = global_pass
        self.use_sheet_region = use_sheet_region
        # per-class thresholds (chosen for a stated precision); others use ``conf``
        self.class_conf = {str(k): float(v) for k, v in (class_conf or {}).items()}
        self.scale = scale or SheetScale(tile_px=self.tile)
        self.gate = gate          # on a sheet: drop boxes that do not stand out from its own texture
        self.last_stats: dict[str, Any] = {}

    def threshold(self, name: str) -> float:
        """The confidence a box of class ``name`` needs to be reported."""
        return self.class_conf.get(name, self.conf)

    @classmethod
    def from_path(cls, path: str | Path, prefer_onnx: bool = True, **kw: Any) -> "Locator":
        from core.models.manager import YoloRunner
        return cls(YoloRunner.load(path, prefer_onnx=prefer_onnx), **kw)

    @property
    def name(self) -> str:
        p = getattr(self.detector, "path", None)
        return Path(p).name if p else type(self.detector).__name__

    @property
    def version(self) -> str:
        return str(getattr(self.detector, "version", "") or self.name)

    def _predict(self, img: np.ndarray) -> list[Any]:
        imgsz = getattr(self.detector, "imgsz", None)
        conf = min([self.conf, *self.class_conf.values()])
        return self.detector.predict(img, conf=conf, imgsz=imgsz) if imgsz else \
            self.detector.predict(img, conf=conf)

    def locate(self, image: np.ndarray, region: Optional[Sequence[int]] = None, tiled: bool = True) -> list[Any]:
        """Defect boxes in ``image`` pixels, best first."""
        img = as_bgr(image)
        h, w = img.shape[:2]
        t0 = time.perf_counter()
        if region is None:
            region = sheet_region(img) if self.use_sheet_region else (0, 0, w, h)
        rx1, ry1, rx2, ry2 = (int(v) for v in region)
        rx1, ry1, rx2, ry2 = max(0, rx1), max(0, ry1), min(w, rx2), min(h, ry2)
        boxes: list[Any] = []
        cut: list[bool] = []
        tiles = tile_grid(rx1, ry1, rx2, ry2, self.tile, self.overlap) if tiled else []
        single = len(tiles) <= 1
        for (tx1, ty1, tx2, ty2) in tiles:
            for b in self._predict(img[ty1:ty2, tx1:tx2]):
                bx1, by1, bx2, by2 = b.x1 + tx1, b.y1 + ty1, b.x2 + tx1, b.y2 + ty1
                boxes.append(_box(bx1, by1, bx2, by2, b.conf, b.cls, b.name))
                # cut = touches an edge of the tile that is not the region's edge
                e = 2.0
                cut.append((bx1 <= tx1 + e and tx1 > rx1) or (by1 <= ty1 + e and ty1 > ry1) or
                           (bx2 >= tx2 - e and tx2 < rx2) or (by2 >= ty2 - e and ty2 < ry2))
        if (self.global_pass and not single) or not tiles:
            for b in self._predict(img[ry1:ry2, rx1:rx2]):   # whole region: defects bigger than a tile
                boxes.append(_box(b.x1 + rx1, b.y1 + ry1, b.x2 + rx1, b.y2 + ry1, b.conf, b.cls, b.name))
                cut.append(False)
        merged = [b for b in merge_boxes(boxes, cut, iou=self.iou) if b.conf >= self.threshold(b.name)]
        self.last_stats = {"tiles": len(tiles), "raw_boxes": len(boxes), "boxes": len(merged),
                           "region": [rx1, ry1, rx2, ry2], "ms": round((time.perf_counter() - t0) * 1000, 1)}
        return merged

    def locate_sheet(self, image: np.ndarray, scale: Optional[SheetScale] = None,
                     outline: Optional[SheetOutline] = None) -> tuple[list[Any], Optional[SheetOutline],
                                                                     Optional[RectifiedSheet]]:
        """Defects on the top sheet only: find its outline, rectify it at the physical
        scale, tile inside the margin, map the boxes back to capture px.

        Returns ``(boxes, outline, rectified)``; ``outline`` is None when no sheet was found
        (then nothing is analysed). Every box's centre lies inside the analysed polygon.
        """
        img = as_bgr(image)
        t0 = time.perf_counter()
        outline = outline or find_sheet(img)
        if outline is None:
            self.last_stats = {"tiles": 0, "raw_boxes": 0, "boxes": 0, "sheet": None,
                               "ms": round((time.perf_counter() - t0) * 1000, 1)}
            return [], None, None
        t1 = time.perf_counter()
        sc = scale or self.scale
        rect = rectify_sheet(img, outline, SheetScale(**{**sc.__dict__, "tile_px": self.tile, "overlap": self.overlap}))
        found = self.locate(rect.image, region=rect.inner)
        stats = dict(self.last_stats)
        gated = 0
        if self.gate:
            found, gated = texture_gate(rect.image, rect.inner, found)
        stats["texture_gated"] = gated
        poly = rect.analysed_polygon()
        h, w = img.shape[:2]
        boxes = []
        for b in found:
            q = map_points(rect.to_capture, np.array([[b.x1, b.y1], [b.x2, b.y1], [b.x2, b.y2], [b.x1, b.y2]]))
            x1, y1 = max(0.0, float(q[:, 0].min())), max(0.0, float(q[:, 1].min()))
            x2, y2 = min(float(w), float(q[:, 0].max())), min(float(h), float(q[:, 1].max()))
            if x2 - x1 < 1 or y2 - y1 < 1 or not _inside(poly, (x1 + x2) / 2, (y1 + y2) / 2):
                continue
            boxes.append(_box(x1, y1, x2, y2, b.conf, b.cls, b.name))
        stats.update({"sheet": outline.to_json(), "sheet_method": outline.method, "analysed": poly.round(1).tolist(),
                      "rectified": [int(rect.image.shape[1]), int(rect.image.shape[0])],
                      "px_per_mm": round(rect.px_per_mm, 4), "tile_mm": round(self.tile / rect.px_per_mm, 1),
                      "mm_per_px": round(rect.mm_per_px, 4), "k_source": rect.k_source,
                      "scale_capped": rect.scale_capped, "boxes": len(boxes),
                      "find_ms": round((t1 - t0) * 1000, 1), "ms": round((time.perf_counter() - t0) * 1000, 1)})
        self.last_stats = stats
        return boxes, outline, rect

    def unload(self) -> None:
        fn = getattr(self.detector, "unload", None)
        if callable(fn):
            fn()


# ----------------------------------------------------------------------------------------
# 3. Segment → results
# ----------------------------------------------------------------------------------------
@dataclass
class Defect:
    """One found defect (paths relative to ``data/media/sessions`` once written)."""
    type: str
    score: float
    bbox: list[float]                      # [x1, y1, x2, y2] in capture pixels
    area_px: int
    segmenter: str
    area_mm2: Optional[float] = None
    mask_path: str = ""
    crop_path: str = ""
    mask_fallback: bool = False            # True when the mask is the box's ellipse (nothing stood out)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["score"] = round(self.score, 4)
        d["bbox"] = [round(v, 1) for v in self.bbox]
        if self.area_mm2 is not None:
            d["area_mm2"] = round(self.area_mm2, 2)
        return d


@dataclass
class Analysis:
    """What :func:`analyse_image` found in one image."""
    defects: list[Defect]
    masks: list[MaskResult]
    segmenter: str
    locator: str
    width: int
    height: int
    locate_ms: float = 0.0
    segment_ms: float = 0.0
    tiles: int = 0
    sheet_found: bool = True               # False: no sheet in the capture, nothing analysed
    message: str = ""                      # msgid (English) for the user when not analysed
    sheet: Optional[dict[str, Any]] = None   # outline, analysed polygon, scale (None: whole image)

    def to_json(self) -> dict[str, Any]:
        return {"defects": [d.to_json() for d in self.defects], "segmenter": self.segmenter,
                "locator": self.locator, "image": {"width": self.width, "height": self.height},
                "timing_ms": {"locate": round(self.locate_ms, 1), "segment": round(self.segment_ms, 1)},
                "tiles": self.tiles, "sheet_found": self.sheet_found, "message": self.message,
                "sheet": self.sheet}


def _clip_to_polygon(m: MaskResult, poly: np.ndarray) -> MaskResult:
    """The mask without the pixels outside the analysed polygon (nothing off the sheet)."""
    if not m.mask.size:
        return m
    keep = np.zeros(m.mask.shape, np.uint8)
    pts = np.round((np.asarray(poly, np.float64) - [m.x1, m.y1]) * 16).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(keep, [pts], 1, cv2.LINE_8, shift=4)
    return MaskResult(m.mask & keep.astype(bool), m.x1, m.y1, m.x2, m.y2, m.segmenter, m.score, m.fallback)


def analyse_image(image: np.ndarray, locator: Locator, segmenter: Any, mm_per_px: float = 0.0,
                  region: Optional[Sequence[int]] = None, max_defects: int = 100, whole_image: bool = False,
                  scale: Optional[SheetScale] = None) -> Analysis:
    """Locate and segment defects on the top sheet of one BGR capture (no files written).

    Only the sheet is analysed (:meth:`Locator.locate_sheet`); when none is found the
    result says so (``sheet_found`` False, ``message``) and holds no defect. ``whole_image``
    (or an explicit ``region``) analyses a close-up of the surface instead (e.g. a NEU-DET
    tile), tiled at the locator's pixel size. ``mm_per_px`` is K when calibrated.
    """
    img = as_bgr(image)
    h, w = img.shape[:2]
    t0 = time.perf_counter()
    sheet_info: Optional[dict[str, Any]] = None
    poly = None
    if whole_image or region is not None or not locator.use_sheet_region:
        # a close-up of the surface (a locator built with use_sheet_region=False is told so too)
        boxes = locator.locate(img, region=region or (0, 0, w, h))[:max_defects]
    else:
        sc = scale or locator.scale
        if mm_per_px and mm_per_px > 0:
            sc = SheetScale(**{**sc.__dict__, "mm_per_px": float(mm_per_px)})
        boxes, outline, rect = locator.locate_sheet(img, sc)
        boxes = boxes[:max_defects]
        if outline is None:
            return Analysis([], [], getattr(segmenter, "name", "?"), locator.name, w, h,
                            (time.perf_counter() - t0) * 1000, 0.0, 0, sheet_found=False, message=NO_SHEET_MSG)
        st = locator.last_stats
        poly = rect.analysed_polygon() if rect is not None else None
        sheet_info = {k: st.get(k) for k in ("sheet", "sheet_method", "analysed", "mm_per_px", "k_source",
                                             "tile_mm", "px_per_mm", "rectified", "scale_capped")}
    t1 = time.perf_counter()
    masks = segmenter.segment(img, boxes) if boxes else []
    if poly is not None:
        masks = [_clip_to_polygon(m, poly) for m in masks]
    t2 = time.perf_counter()
    defects = []
    for b, m in zip(boxes, masks):
        area = m.area_px
        defects.append(Defect(type=b.name, score=float(b.conf), bbox=[float(b.x1), float(b.y1), float(b.x2),
                              float(b.y2)], area_px=area, segmenter=m.segmenter,
                              area_mm2=area * mm_per_px ** 2 if mm_per_px > 0 else None,
                              mask_fallback=bool(m.fallback)))
    return Analysis(defects, list(masks), getattr(segmenter, "name", "?"), locator.name, w, h,
                    (t1 - t0) * 1000, (t2 - t1) * 1000, int(locator.last_stats.get("tiles", 0)),
                    sheet=sheet_info)


# ----------------------------------------------------------------------------------------
# 4. Write
# ----------------------------------------------------------------------------------------
def _encode(ext: str, img: np.ndarray, params: Sequence[int] = ()) -> bytes:
    ok, buf = cv2.imencode(ext, img, list(params))
    if not ok:
        raise OSError(f"could not encode {ext}")
    return buf.tobytes()


def draw_overlay(image: np.ndarray, analysis: Analysis, show_masks: bool = True) -> np.ndarray:
    """The capture with masks tinted, boxes and ``type score`` labels drawn."""
    out = as_bgr(image).copy()
    names = sorted({d.type for d in analysis.defects})
    thick = max(1, int(round(max(out.shape[:2]) / 640)))
    sheet = analysis.sheet or {}
    for key, col in (("sheet", (0, 200, 255)), ("analysed", (255, 200, 0))):   # outline amber, analysed cyan
        if sheet.get(key):
            pts = np.round(np.asarray(sheet[key], np.float64) * 16).astype(np.int32).reshape(-1, 1, 2)
            cv2.polylines(out, [pts], True, col, thick, cv2.LINE_AA, shift=4)
    for d, m in zip(analysis.defects, analysis.masks):
        col = COLORS[names.index(d.type) % len(COLORS)] if d.type in names else COLORS[0]
        if show_masks and m.mask.size:
            roi = out[m.y1:m.y2, m.x1:m.x2]
            tint = np.array(col, np.float32)
            roi[m.mask] = (0.45 * roi[m.mask].astype(np.float32) + 0.55 * tint).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(v)) for v in d.bbox)
        cv2.rectangle(out, (x1, y1), (x2, y2), col, thick)
        label = f"{d.type} {d.score:.2f}"
        fs = 0.4 * thick
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        ty = y1 - 3 if y1 - th - 4 > 0 else y2 + th + 3
        cv2.rectangle(out, (x1, ty - th - 2), (x1 + tw + 2, ty + 2), col, -1)
        cv2.putText(out, label, (x1 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def crop_with_alpha(image: np.ndarray, d: Defect, m: MaskResult) -> np.ndarray:
    """BGRA crop of the defect's tight box; alpha = the mask (255 inside, 0 outside)."""
    img = as_bgr(image)
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (int(np.floor(d.bbox[0])), int(np.floor(d.bbox[1])), int(np.ceil(d.bbox[2])),
                      int(np.ceil(d.bbox[3])))
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, max(x1 + 1, x2)), min(h, max(y1 + 1, y2))
    crop = cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2BGRA)
    alpha = np.zeros(crop.shape[:2], np.uint8)
    if m.mask.size:  # place the box-local mask in this crop's frame
        ox1, oy1 = max(m.x1, x1), max(m.y1, y1)
        ox2, oy2 = min(m.x2, x2), min(m.y2, y2)
        if ox2 > ox1 and oy2 > oy1:
            alpha[oy1 - y1:oy2 - y1, ox1 - x1:ox2 - x1] = m.mask[oy1 - m.y1:oy2 - m.y1, ox1 - m.x1:ox2 - m.x1] * 255
    crop[:, :, 3] = alpha
    return crop


def write_outputs(image: np.ndarray, analysis: Analysis, out_dir: Path, rel_root: Optional[Path] = None) -> Path:
    """Write ``overlay.jpg``, ``crop_NN.png`` (mask as alpha) and ``mask_NN.png`` into
    ``out_dir`` atomically; set each defect's ``crop_path``/``mask_path`` (relative to
    ``rel_root`` when given). Old files of an earlier run are removed. Returns the overlay path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = set()
    rel = (lambda p: str(p.relative_to(rel_root))) if rel_root else (lambda p: str(p))
    for i, (d, m) in enumerate(zip(analysis.defects, analysis.masks), 1):
        crop_p, mask_p = out_dir / f"crop_{i:02d}.png", out_dir / f"mask_{i:02d}.png"
        atomic_write_bytes(crop_p, _encode(".png", crop_with_alpha(image, d, m)))
        atomic_write_bytes(mask_p, _encode(".png", m.mask.astype(np.uint8) * 255 if m.mask.size
                                           else np.zeros((1, 1), np.uint8)))
        d.crop_path, d.mask_path = rel(crop_p), rel(mask_p)
        keep |= {crop_p.name, mask_p.name}
    overlay = out_dir / "overlay.jpg"
    atomic_write_bytes(overlay, _encode(".jpg", draw_overlay(image, analysis), [cv2.IMWRITE_JPEG_QUALITY, 90]))
    keep.add(overlay.name)
    for f in out_dir.glob("*_[0-9][0-9].png"):
        if f.name not in keep:
            f.unlink(missing_ok=True)
    return overlay


# ----------------------------------------------------------------------------------------
# Captures in the database
# ----------------------------------------------------------------------------------------
@dataclass
class CaptureAnalysis:
    """The result of analysing one stored capture."""
    capture_id: int
    ok: bool
    message: str = ""
    defects: list[Defect] = field(default_factory=list)
    overlay_path: str = ""
    segmenter: str = ""
    locate_ms: float = 0.0
    segment_ms: float = 0.0
    sheet_found: bool = True        # False: no sheet in the capture (``message`` says so), nothing analysed

    def to_json(self) -> dict[str, Any]:
        return {"capture_id": self.capture_id, "ok": self.ok, "message": self.message,
                "defects": [d.to_json() for d in self.defects], "overlay": self.overlay_path,
                "segmenter": self.segmenter, "sheet_found": self.sheet_found}


def capture_outputs_dir(paths: Paths, capture_path: str) -> Path:
    """``<session folder>/defects/<capture stem>/`` for a capture stored at ``capture_path``."""
    cap = safe_join(paths.sessions, capture_path)
    return cap.parent / "defects" / cap.stem


def analyse_capture(db: Any, paths: Paths, capture_id: int, locator: Locator, segmenter: Any,
                    mm_per_px: float = 0.0, write_log: bool = True) -> CaptureAnalysis:
    """Analyse one stored capture and persist everything. Never raises for a bad image:
    the returned :class:`CaptureAnalysis` says what went wrong (``ok=False``)."""
    from core.platform.storage import CaptureRow, DefectRow, utcnow
    with db.session() as s:
        row = s.get(CaptureRow, capture_id)
        if row is None:
            return CaptureAnalysis(capture_id, False, f"capture {capture_id} does not exist")
        cap_path, session_id, index = row.path, row.session_id, row.index
    try:
        img_path = safe_join(paths.sessions, cap_path)
        image = load_image(img_path)
    except (BadImage, ValueError) as e:
        return CaptureAnalysis(capture_id, False, f"sheet #{index}: {e}")
    res = analyse_image(image, locator, segmenter, mm_per_px)
    out_dir = capture_outputs_dir(paths, cap_path)
    overlay = write_outputs(image, res, out_dir, rel_root=paths.sessions)
    version = getattr(locator, "version", locator.name)
    with db.session() as s:
        row = s.get(CaptureRow, capture_id)
        if row is None:  # deleted while we worked
            return CaptureAnalysis(capture_id, False, f"sheet #{index}: the capture was deleted meanwhile")
        for old in list(row.defects):
            s.delete(old)
        for d in res.defects:
            s.add(DefectRow(capture_id=capture_id, type=d.type, score=d.score, x1=d.bbox[0], y1=d.bbox[1],
                            x2=d.bbox[2], y2=d.bbox[3], mask_path=d.mask_path, crop_path=d.crop_path,
                            area_px=float(d.area_px), area_mm2=d.area_mm2, segmenter=d.segmenter,
                            model_version=str(version)[:100]))
        row.analysed_at = utcnow()
    out = CaptureAnalysis(capture_id, True, res.message, res.defects, str(overlay.relative_to(paths.sessions)),
                          res.segmenter, res.locate_ms, res.segment_ms, sheet_found=res.sheet_found)
    _update_defects_json(paths, cap_path, index, out)
    if write_log:
        refresh_session_log(db, paths, session_id)
    return out


def _update_defects_json(paths: Paths, cap_path: str, index: int, out: CaptureAnalysis) -> None:
    """``<session>/defects/defects.json``: per capture, the full defect records."""
    f = capture_outputs_dir(paths, cap_path).parent / "defects.json"
    try:
        doc = json.loads(f.read_text()) if f.exists() else {}
    except (ValueError, OSError):
        doc = {}
    caps = doc.setdefault("captures", {})
    caps[str(index)] = {"capture": Path(cap_path).name, **out.to_json()}
    doc["updated_at"] = _now_iso()
    atomic_write_bytes(f, json.dumps(doc, indent=1, ensure_ascii=False).encode())


def capture_status(paths: Paths, cap_path: str, index: int) -> dict[str, Any]:
    """What the last analysis of a capture said (``sheet_found``, ``message``), from
    ``defects/defects.json``; {} when it was never analysed or the file is unreadable."""
    try:
        f = capture_outputs_dir(paths, cap_path).parent / "defects.json"
        doc = json.loads(f.read_text())
    except (OSError, ValueError):
        return {}
    return (doc.get("captures") or {}).get(str(index)) or {}


def _now_iso() -> str:
    from core.platform.storage import utcnow
    return utcnow().isoformat(timespec="seconds")


def refresh_session_log(db: Any, paths: Paths, session_id: str) -> None:
    """Rewrite the session's ``session_log.json`` (core.reports) so it lists the defects."""
    try:
        from core.reports.sessionlog import write_session_log
    except ImportError:
        return
    try:
        write_session_log(db, paths, session_id)
    except Exception as e:  # the log is a by-product; analysis results are already stored
        log.warning("session log of %s not refreshed: %s", session_id, e)


# ----------------------------------------------------------------------------------------
# Batch: a whole session as a background job
# ----------------------------------------------------------------------------------------
def analyse_session(job: Any, db: Any, paths: Paths, session_id: str, get_locator: Callable[[], Any],
                    get_segmenter: Callable[[], Any], mm_per_px: float = 0.0,
                    capture_ids: Optional[list[int]] = None) -> dict[str, Any]:
    """Analyse every capture of a session; ``job`` is a :class:`core.platform.jobs.JobContext`
    (or None). A bad capture is listed under ``failed`` and the batch goes on."""
    from sqlalchemy import select

    from core.platform.storage import CaptureRow
    with db.session() as s:
        q = select(CaptureRow.id).where(CaptureRow.session_id == session_id).order_by(CaptureRow.index)
        ids = list(s.scalars(q))
    if capture_ids is not None:
        ids = [i for i in ids if i in set(capture_ids)]
    locator, segmenter = get_locator(), get_segmenter()
    if locator is None:
        raise RuntimeError("no defect locator is available: register or train one (Models page)")
    done, failed, n_def, no_sheet = 0, [], 0, []
    for k, cid in enumerate(ids):
        if job is not None:
            job.progress(k / max(1, len(ids)), f"{k}/{len(ids)}")
        try:
            r = analyse_capture(db, paths, cid, locator, segmenter, mm_per_px, write_log=False)
        except Exception as e:  # one capture's unexpected failure must not stop the batch
            log.exception("capture %s failed", cid)
            r = CaptureAnalysis(cid, False, f"capture {cid}: {type(e).__name__}: {e}")
        if r.ok:
            done += 1
            n_def += len(r.defects)
            if not r.sheet_found:
                no_sheet.append(cid)
        else:
            failed.append({"capture_id": cid, "message": r.message})
            try:
                db.log(r.message, "warning", session_id)
            except Exception:
                pass
    refresh_session_log(db, paths, session_id)
    result = {"session_id": session_id, "captures": len(ids), "analysed": done, "failed": failed,
              "defects": n_def, "segmenter": getattr(segmenter, "name", ""), "no_sheet": no_sheet}
    if job is not None:
        job.progress(1.0, f"{len(ids)}/{len(ids)}", extra=result)
    return result


def submit_session_analysis(runner: Any, db: Any, paths: Paths, session_id: str, get_locator: Callable[[], Any],
                            get_segmenter: Callable[[], Any], mm_per_px: float = 0.0,
                            before: Optional[Callable[[], Any]] = None,
                            after: Optional[Callable[[], Any]] = None,
                            capture_ids: Optional[list[int]] = None) -> str:
    """Start :func:`analyse_session` as a ``defects`` job; returns the job id. ``before``
    / ``after`` run inside the job (pause counting, swap models; ``after`` always runs)."""
    cur = latest_job(runner, session_id)
    if cur is not None and cur.status == "running":  # two clicks / two tabs: one job per session
        raise ValueError("this session is already being analysed; wait for that job to finish")

    def work(ctx: Any, session_id: str, capture_ids: Optional[list[int]] = None) -> dict[str, Any]:
        try:
            if before:
                before()
            return analyse_session(ctx, db, paths, session_id, get_locator, get_segmenter, mm_per_px,
                                   capture_ids=capture_ids)
        finally:
            if after:
                try:
                    after()
                except Exception as e:
                    log.warning("after-analysis hook failed: %s", e)
    return runner.submit("defects", work, session_id=session_id, capture_ids=capture_ids)


# ----------------------------------------------------------------------------------------
# Gallery helpers (the Defect Analysis page reads through these; no Streamlit here)
# ----------------------------------------------------------------------------------------
@dataclass
class CaptureItem:
    """One capture as the gallery shows it."""
    id: int
    index: int
    path: str                  # relative to data/media/sessions
    created_at: Any
    review: str
    reviewed_by: str
    reviewed_at: Any
    analysed_at: Any
    n_defects: int


def gallery_sessions(db: Any, text: str = "", limit: int = 300) -> list[Any]:
    """Sessions for the gallery sidebar, newest first; ``text`` filters by name or id."""
    from sqlalchemy import or_, select

    from core.platform.storage import SessionRow
    with db.session() as s:
        q = select(SessionRow).order_by(SessionRow.started_at.desc()).limit(limit)
        t = (text or "").strip()
        if t:
            like = f"%{t}%"
            q = q.where(or_(SessionRow.name.ilike(like), SessionRow.id.ilike(like)))
        return list(s.scalars(q))


def count_captures(db: Any, session_id: str) -> int:
    from sqlalchemy import func, select

    from core.platform.storage import CaptureRow
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(CaptureRow)
                            .where(CaptureRow.session_id == session_id)) or 0)


def list_captures(db: Any, session_id: str, offset: int = 0, limit: int = 24) -> list[CaptureItem]:
    """One page of a session's captures in sheet order, with their defect counts."""
    from sqlalchemy import func, select

    from core.platform.storage import CaptureRow, DefectRow
    with db.session() as s:
        nd = (select(DefectRow.capture_id, func.count().label("n")).group_by(DefectRow.capture_id).subquery())
        q = (select(CaptureRow, func.coalesce(nd.c.n, 0)).outerjoin(nd, nd.c.capture_id == CaptureRow.id)
             .where(CaptureRow.session_id == session_id).order_by(CaptureRow.index).offset(offset).limit(limit))
        return [CaptureItem(r.id, r.index, r.path, r.created_at, r.review, r.reviewed_by, r.reviewed_at,
                            r.analysed_at, int(n)) for r, n in s.execute(q)]


def capture_defects(db: Any, capture_id: int) -> list[Any]:
    """The stored ``DefectRow`` rows of a capture (detached, safe to read after the session)."""
    from sqlalchemy import select

    from core.platform.storage import DefectRow
    with db.session() as s:
        return list(s.scalars(select(DefectRow).where(DefectRow.capture_id == capture_id)
                              .order_by(DefectRow.score.desc())))


def set_review(db: Any, capture_id: int, decision: str, who: str) -> Any:
    """Approve / reject a capture (or reset to ``pending``), recording who and when."""
    from core.platform.storage import CaptureRow, utcnow
    if decision not in ("approved", "rejected", "pending"):
        raise ValueError(f"review must be approved, rejected or pending, not {decision!r}")
    with db.session() as s:
        row = s.get(CaptureRow, capture_id)
        if row is None:
            raise ValueError(f"capture {capture_id} does not exist")
        row.review = decision
        row.reviewed_by = (who or "")[:100] if decision != "pending" else ""
        row.reviewed_at = utcnow() if decision != "pending" else None
        return row


def thumbnail(paths: Paths, capture_path: str, max_side: int = 256) -> Optional[Path]:
    """A small JPEG of a capture, cached on disk under ``data/cache/thumbs`` (keyed by the
    capture's path, size and mtime, so a replaced capture gets a fresh thumbnail).
    None when the capture is missing or unreadable."""
    import hashlib
    try:
        src = safe_join(paths.sessions, capture_path)
        st_ = src.stat()
    except (OSError, ValueError):
        return None
    key = hashlib.sha1(f"{capture_path}|{st_.st_size}|{st_.st_mtime_ns}|{max_side}".encode()).hexdigest()[:16]
    out = paths.cache / "thumbs" / f"{key}.jpg"
    if out.exists():
        return out
    try:
        img = load_image(src)
    except BadImage:
        return None
    h, w = img.shape[:2]
    r = max_side / max(h, w)
    if r < 1:
        img = cv2.resize(img, (max(1, int(w * r)), max(1, int(h * r))), interpolation=cv2.INTER_AREA)
    atomic_write_bytes(out, _encode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80]))
    return out


def latest_job(runner: Any, session_id: str) -> Any:
    """The newest ``defects`` job of a session (running or finished), read from the database,
    so a reloaded page finds its progress again."""
    if runner is None:
        return None
    for j in runner.latest("defects", 50):
        if (j.params or {}).get("session_id") == session_id:
            return j
    return None


def shipped_threshold_table(model_path: Optional[str | Path], paths: Optional[Paths] = None) -> dict[str, Any]:
    """The whole ``class_thresholds`` record of a model in ``weights/manifest.json``
    (confidences, target precision, where chosen, precision/recall per split); {} when none."""
    if not model_path:
        return {}
    paths = paths or Paths.from_env()
    try:
        from core.models.manager import MANIFEST
        doc = json.loads((paths.weights / MANIFEST).read_text())
    except (OSError, ValueError, ImportError):
        return {}
    name = Path(model_path).with_suffix(".pt").name
    return ((doc.get("files", {}).get(name) or {}).get("metrics") or {}).get("class_thresholds") or {}


def shipped_thresholds(model_path: Optional[str | Path], paths: Optional[Paths] = None) -> dict[str, float]:
    """Per-class confidences shipped with a model (``class_thresholds`` in
    ``weights/manifest.json``, chosen for a stated precision); {} when none."""
    th = shipped_threshold_table(model_path, paths)
    return {str(k): float(v) for k, v in (th.get("conf") or {}).items()}


def scale_from_settings(settings: Any) -> SheetScale:
    """The tiling scale the settings ask for (K from the calibration when known)."""
    m = settings.models
    return SheetScale(tile_mm=float(m.defect_tile_mm), tile_px=int(m.tile_size or NEU_TILE),
                      assumed_width_mm=float(m.assumed_sheet_width_mm), margin_mm=float(m.sheet_margin_mm),
                      mm_per_px=float(settings.calibration.mm_per_px or 0.0), overlap=float(m.tile_overlap))


def class_thresholds(settings: Any, model_path: Optional[str | Path] = None,
                     paths: Optional[Paths] = None) -> dict[str, float]:
    """Effective per-class confidences: the model's shipped table, overridden per class by
    ``settings.models.defect_class_confidence`` (Settings page, engineer PIN)."""
    return {**shipped_thresholds(model_path, paths),
            **{str(k): float(v) for k, v in (settings.models.defect_class_confidence or {}).items()}}


def make_locator(detector: Any, settings: Any) -> Optional[Locator]:
    """A :class:`Locator` around a loaded detector with the settings' tile, overlap,
    physical scale and (per-class) confidences (None when there is no detector)."""
    if detector is None:
        return None
    m = settings.models
    return Locator(detector, tile=int(m.tile_size or NEU_TILE), overlap=float(m.tile_overlap),
                   conf=float(m.defect_confidence),
                   class_conf=class_thresholds(settings, getattr(detector, "path", None)),
                   scale=scale_from_settings(settings))


# ----------------------------------------------------------------------------------------
# Model lookup, evaluation
# ----------------------------------------------------------------------------------------
def active_model_path(paths: Optional[Paths] = None, db: Any = None) -> Optional[Path]:
    """The active ``defect`` model from the registry; else ``weights/defect_yolo11n.pt``."""
    paths = paths or Paths.from_env()
    try:
        from core.models.manager import Registry
        from core.platform.storage import Database
        reg = Registry(db or Database(), paths)
        try:
            reg.sync_bundled()
        except Exception:
            pass
        mv = reg.active("defect")
        if mv is not None:
            return mv.path
    except Exception as e:
        log.warning("registry unavailable (%s); looking in weights/", e)
    p = paths.weights / DEFAULT_MODEL
    return p if p.exists() else None


def _pt_for(path: Path) -> Path:
    """Evaluation runs through Ultralytics; prefer the ``.pt`` twin of an ``.onnx``."""
    if path.suffix == ".onnx" and path.with_suffix(".pt").exists():
        return path.with_suffix(".pt")
    return path


def evaluate(model_path: str | Path, neu_dir: str | Path, work_dir: Path, imgsz: Optional[int] = None,
             batch: int = 16) -> dict[str, Any]:
    """mAP of a NEU-DET locator on the 361 validation images (``splits/val.txt``)."""
    from core.models.neu import NEU_CLASSES, convert
    from core.platform import offline
    offline.prepare()
    yolo_dir = work_dir / "neu-yolo"
    if not (yolo_dir / "data.yaml").exists() or len(list((yolo_dir / "images" / "val").glob("*.jpg"))) != 361:
        convert(neu_dir, yolo_dir)
    from ultralytics import YOLO
    mp = _pt_for(Path(model_path))
    model = YOLO(str(mp), task="detect")
    if imgsz is None:
        imgsz = int((getattr(model, "overrides", {}) or {}).get("imgsz") or 224)
    m = model.val(data=str(yolo_dir / "data.yaml"), split="val", imgsz=imgsz, batch=batch, device="cpu",
                  workers=0, plots=False, verbose=False, project=str(work_dir / "val"), name="defects",
                  exist_ok=True)
    per = {}
    names = {int(k): v for k, v in (model.names or {}).items()} or dict(enumerate(NEU_CLASSES))
    for i, c in enumerate(m.box.ap_class_index):
        per[names.get(int(c), str(c))] = {"map50": round(float(m.box.ap50[i]), 4),
                                           "map50_95": round(float(m.box.ap[i]), 4)}
    n_img = len(list((yolo_dir / "images" / "val").glob("*.jpg")))
    return {"map50": round(float(m.box.map50), 4), "map50_95": round(float(m.box.map), 4), "per_class": per,
            "images": n_img}


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------
def _fail(msg: str, code: int = 2) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _guard(fn: Callable[[list[str]], int], argv: list[str]) -> int:
    """No traceback reaches a CLI user: one line on stderr (the trace goes to the log)."""
    try:
        return fn(argv)
    except (BadImage, FileNotFoundError) as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as e:
        log.debug("command failed", exc_info=True)
        return _fail(f"{type(e).__name__}: {e}", 1)


def _neu_dir() -> Path:
    from core.models.neu import default_neu_dir
    return default_neu_dir()


def cli_eval(argv: list[str]) -> int:
    return _guard(_cli_eval, argv)


def _cli_eval(argv: list[str]) -> int:
    """``python -m core eval defects`` → ``{"map50", "map50_95", "per_class", "images"}``."""
    from core.platform import log as _log
    ap = argparse.ArgumentParser(prog="python -m core eval defects",
                                 description="mAP of the active defect locator on the 361 NEU-DET val images")
    ap.add_argument("--model", help="model file (default: the active `defect` model)")
    ap.add_argument("--neu", default=str(_neu_dir()), help="NEU-DET folder (images/, annotations/, splits/)")
    ap.add_argument("--imgsz", type=int, default=None)
    a = ap.parse_args(argv)
    _log.setup()
    paths = Paths.from_env()
    model = Path(a.model) if a.model else active_model_path(paths)
    if model is None or not model.exists():
        return _fail("no defect model: pass --model or put defect_yolo11n.pt in weights/")
    if model.suffix.lower() not in (".pt", ".onnx"):
        return _fail(f"not a model file (.pt or .onnx): {model}")
    neu = Path(a.neu)
    if not (neu / "splits" / "val.txt").exists():
        return _fail(f"NEU-DET not found at {neu} (expected splits/val.txt)")
    try:
        res = evaluate(model, neu, paths.cache, imgsz=a.imgsz)
    except Exception as e:
        return _fail(f"evaluation failed: {' '.join(str(e).split())[:300]}", 1)
    res["model"] = str(model)
    print(json.dumps(res))
    return 0


def cli_defects(argv: list[str]) -> int:
    return _guard(_cli_defects, argv)


def _cli_defects(argv: list[str]) -> int:
    """``python -m core defects IMAGE`` → ``{"defects": [...], "segmenter": "..."}``."""
    from core.platform import log as _log
    ap = argparse.ArgumentParser(prog="python -m core defects",
                                 description="locate and segment defects in one image (JSON on stdout)")
    ap.add_argument("image")
    ap.add_argument("--model", help="defect model (default: the active `defect` model)")
    ap.add_argument("--out", help="folder for overlay/crops/masks (default: data/cache/defects/<image stem>)")
    ap.add_argument("--conf", type=float, default=None)
    ap.add_argument("--tile", type=int, default=None)
    ap.add_argument("--sam2", help="SAM 2 checkpoint (default: weights/sam2.1_hiera_tiny.pt when present)")
    ap.add_argument("--sam2-random-init", action="store_true", help="random SAM 2 (plumbing check only)")
    ap.add_argument("--mm-per-px", type=float, default=None)
    ap.add_argument("--whole-image", action="store_true",
                    help="the image is a close-up of the surface (e.g. a NEU-DET tile): no sheet outline, "
                         "tiled at --tile px")
    a = ap.parse_args(argv)
    _log.setup()
    paths = Paths.from_env()
    try:
        image = load_image(a.image)
    except BadImage as e:
        return _fail(str(e))
    model = Path(a.model) if a.model else active_model_path(paths)
    if model is None or not model.exists():
        return _fail("no defect model: pass --model or put defect_yolo11n.pt in weights/")
    settings = _settings()
    from core.qa.segment import find_sam2_checkpoint
    ckpt = a.sam2 or find_sam2_checkpoint(paths.weights)
    try:
        # --conf: one threshold for every class (the per-class table otherwise)
        loc = Locator.from_path(model, prefer_onnx=settings.models.prefer_onnx,
                                tile=a.tile or settings.models.tile_size, overlap=settings.models.tile_overlap,
                                conf=a.conf if a.conf is not None else settings.models.defect_confidence,
                                class_conf=None if a.conf is not None else class_thresholds(settings, model, paths),
                                scale=scale_from_settings(settings))
    except Exception as e:
        return _fail(f"cannot load the defect model: {e}")
    seg = load_segmenter(ckpt, random_init=a.sam2_random_init)
    mm = a.mm_per_px if a.mm_per_px is not None else settings.calibration.mm_per_px
    res = analyse_image(image, loc, seg, mm_per_px=mm, whole_image=a.whole_image)
    out = Path(a.out) if a.out else paths.cache / "defects" / Path(a.image).stem
    overlay = write_outputs(image, res, out)
    doc = res.to_json()
    doc["overlay"] = str(overlay)
    print(json.dumps(doc))
    return 0


def _settings() -> Any:
    try:
        from core.platform.storage import Database
        return Database().load_settings()
    except Exception:
        from core.platform.settings import Settings
        return Settings()
