"""Dimension measurement of the top sheet, in mm, with parallax compensation.

Stages (each one a function you can call on its own):

1. **correct** — lens undistortion and plane rectification from the active calibration
   (:class:`core.qa.calibration.Corrector`), when there is one;
2. **find** — the stack's silhouette (Otsu on a blurred grey image, largest contour) and
   its minimum-area rectangle: a first guess that still includes the sheets beneath
   sticking out and the stack's visible side;
3. **refine** — along each side, grey-level profiles walk outward from inside the top
   sheet; the first clear drop is the top sheet's own edge (everything beyond it is
   lower: sheets beneath, the stack's side, the floor). The edge is placed at the
   derivative's sub-pixel peak, a line is fitted robustly through each side's edge
   points, and the four lines intersect into the top sheet's outline;
4. **scale** — pixels × K (mm per px at the calibration plane) × (C − h) / C, where C is
   the camera height above that plane and h the stack top's height above it.

Example:
    >>> import numpy as np
    >>> from core.synthetic.stills import Camera, SheetScene, render
    >>> r = render(SheetScene(length_mm=1200, width_mm=600, angle_deg=10), Camera(640, 480, 300, 2000))
    >>> m = measure_sheet(r.image, mm_per_px=r.truth.mm_per_px_floor)
    >>> abs(m.length_mm - 1200) < 6, abs(m.width_mm - 600) < 6
    (True, True)
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from core.platform.errors import CliParser, UserError
from core.platform.log import get

log = get("measure")


class MeasureError(UserError):
    """Bad input or nothing to measure; ``str(e)`` is the one line for the user.

    ``msgid``/``args`` let a page translate it: ``_(e.msgid).format(**e.args_)``.
    """


@dataclass
class Measurement:
    """One measured sheet. Pixel figures are in the (corrected) measuring image;
    ``corners_src_px`` are the outline's corners in the original image, for drawing."""
    length_px: float
    width_px: float
    angle_deg: float                       # long axis vs image x, counter-clockwise on screen, (−90, 90]
    center_px: tuple[float, float]
    corners_px: list[list[float]]          # 4 × [x, y], the top sheet's outline
    corners_src_px: list[list[float]] = field(default_factory=list)
    method: str = "subpixel"               # how the outline was found
    mm_per_px: float = 0.0                 # K at the calibration plane; 0 = not calibrated
    camera_height_mm: Optional[float] = None
    stack_height_mm: Optional[float] = None   # stack top above the calibration plane
    parallax_compensated: bool = False
    corrected: list[str] = field(default_factory=list)   # "lens", "plane" when applied
    length_mm: Optional[float] = None
    width_mm: Optional[float] = None

    @property
    def label(self) -> str:
        """ "L × W mm" (or px when not calibrated)."""
        if self.length_mm is None or self.width_mm is None:
            return f"{self.length_px:.0f} × {self.width_px:.0f} px"
        return f"{self.length_mm:.0f} × {self.width_mm:.0f} mm"

    def to_cli(self) -> dict[str, Any]:
        """The CLI's JSON contract."""
        return {"length_mm": _r(self.length_mm), "width_mm": _r(self.width_mm),
                "angle_deg": round(self.angle_deg, 2), "length_px": round(self.length_px, 2),
                "width_px": round(self.width_px, 2), "parallax_compensated": self.parallax_compensated}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _r(x: Optional[float]) -> Optional[float]:
    return None if x is None else round(float(x), 2)


# --- scale -----------------------------------------------------------------------------
def parallax_factor(camera_height_mm: float, stack_height_mm: float) -> float:
    """(C − h) / C: how much smaller the real sheet is than its pixels × K suggest.

    >>> parallax_factor(2000, 200)
    0.9
    """
    c, h = float(camera_height_mm), float(stack_height_mm)
    if not math.isfinite(c) or c <= 0:
        raise MeasureError("The camera height must be a positive number of mm (got {c}).", c=camera_height_mm)
    if not math.isfinite(h):
        raise MeasureError("The stack height must be a number of mm.")
    if h >= c:
        raise MeasureError("The stack height ({h} mm) must be below the camera height ({c} mm).",
                           h=stack_height_mm, c=camera_height_mm)
    return (c - h) / c


def stack_height_from_count(count: int, sheet_thickness_mm: float, plane_height_mm: float = 0.0) -> float:
    """Height of the stack top above the calibration plane from the sheet count.

    ``plane_height_mm`` is the height of the plane K was calibrated at, above the
    stack's base (0 when calibrated on the floor/pallet the first sheet lies on).

    >>> stack_height_from_count(100, 1.5)
    150.0
    """
    return max(int(count), 0) * float(sheet_thickness_mm) - float(plane_height_mm)


def to_mm(m: Measurement, mm_per_px: float, camera_height_mm: Optional[float] = None,
          stack_height_mm: Optional[float] = None) -> Measurement:
    """Fill ``length_mm``/``width_mm``: px × K, × (C − h)/C when C and h are known."""
    k = float(mm_per_px)
    if not math.isfinite(k) or k <= 0:
        raise MeasureError("K (mm per pixel) must be a positive number (got {k}).", k=mm_per_px)
    f = 1.0
    m.parallax_compensated = False
    if stack_height_mm is not None:
        if camera_height_mm is None:
            raise MeasureError("A stack height needs the camera height too.")
        f = parallax_factor(camera_height_mm, stack_height_mm)
        m.parallax_compensated = True
    m.mm_per_px, m.camera_height_mm, m.stack_height_mm = k, camera_height_mm, stack_height_mm
    m.length_mm, m.width_mm = m.length_px * k * f, m.width_px * k * f
    return m


# --- find --------------------------------------------------------------------------------
def _gray(image: np.ndarray) -> np.ndarray:
    if image is None or not hasattr(image, "ndim") or image.size == 0:
        raise MeasureError("The image is empty or unreadable.")
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
    return image.astype(np.float32)


# Edges are found at two strengths. STRICT: a step of 6 % of the brightness — the stack's outer
# outline (the union of the top sheet and any sheet beneath that sticks out). WEAK: 3 % — the top
# sheet's own edge over a sheet beneath it, often only a thin shadow darker (same steel). A weak
# line is taken only where it lies a little inside the strict one AND the band between them
# differs from the top sheet all the way out (a sheet beneath); a brushed streak is a band
# that ends, and is refused. Chosen on tuning seeds 3–7 of `bench measure --stack`.
STRICT_STEP = 0.06
REL_STEP = 0.03


def find_silhouette(gray: np.ndarray) -> tuple[np.ndarray, tuple]:
    """The stack's outline and its minimum-area rectangle: the largest bright, roughly
    rectangular region that stands clear of the frame's edge (a bright floor around a
    dark bin touches the edge; the sheet inside it does not).

    Raises :class:`MeasureError` when no sheet stands out from the background.
    """
    h, w = gray.shape
    small = cv2.GaussianBlur(gray, (0, 0), 2.0)
    u8 = np.clip(small, 0, 255).astype(np.uint8)
    noise = float(np.median(np.abs(gray - small))) * 1.4826 + 1.0
    k = max(3, (min(h, w) // 200) | 1)
    ring_k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 9, 2 * k + 9))
    cut_off = False
    # bright sheets on a darker floor/bin first, then dark sheets on a lighter one
    for polarity in (cv2.THRESH_BINARY, cv2.THRESH_BINARY_INV):
        _thr, mask = cv2.threshold(u8, 0, 255, polarity + cv2.THRESH_OTSU)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        # outer boundaries at every level: a sheet inside a dark bin on a bright floor is
        # an island in the floor region's hole, which RETR_EXTERNAL would never list
        contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
        contours = [cn for cn, hi in zip(contours, hier[0] if hier is not None else []) if hi[3] < 0]
        sign = 1.0 if polarity == cv2.THRESH_BINARY else -1.0
        for cnt in sorted(contours, key=cv2.contourArea, reverse=True):
            area = cv2.contourArea(cnt)
            if area < 0.002 * h * w:
                break
            x, y, bw, bh = cv2.boundingRect(cnt)
            if x <= 1 or y <= 1 or x + bw >= w - 1 or y + bh >= h - 1:
                cut_off = cut_off or area < 0.6 * h * w   # a big region at the edge is the floor
                continue
            rect = cv2.minAreaRect(cnt)
            if area < 0.75 * rect[1][0] * rect[1][1]:       # not a sheet's shape
                continue
            if max(rect[1]) > 8 * max(min(rect[1]), 1e-6):   # a pallet plank or a rail, not a sheet
                continue
            inside = np.zeros((h, w), np.uint8)
            cv2.drawContours(inside, [cnt], -1, 255, -1)
            ring = cv2.dilate(inside, ring_k) & ~inside
            contrast = sign * float(small[inside > 0].mean() - small[ring > 0].mean())
            if contrast < max(12.0, 4 * noise):
                continue
            return cnt, rect
    if cut_off:
        raise MeasureError("No whole sheet found: the sheet seems cut off by the edge of the image.")
    raise MeasureError("No sheet found in the image.")


# --- refine ------------------------------------------------------------------------------
def _fit_line(pts: np.ndarray, tol: float = 1.0) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """A line through the majority of ``pts`` (point, unit direction): RANSAC on point
    pairs, then total least squares on the inliers. Profiles that stopped early on a
    streak or a scratch are outliers and do not pull the edge inward."""
    if len(pts) < 6:
        return None
    rng = np.random.default_rng(0)            # deterministic: the same image, the same answer
    best = None
    n = len(pts)
    pairs = rng.integers(0, n, (min(200, n * (n - 1) // 2), 2))
    for i, j in pairs:
        if i == j:
            continue
        d = pts[j] - pts[i]
        norm = np.hypot(*d)
        if norm < 1e-6:
            continue
        nrm = np.array([-d[1], d[0]]) / norm
        inl = np.abs((pts - pts[i]) @ nrm) <= tol
        if best is None or inl.sum() > best.sum():
            best = inl
    if best is None or best.sum() < max(6, 0.3 * n):
        return None
    keep = best
    for _ in range(3):
        p = pts[keep]
        c = p.mean(0)
        _, _, vt = np.linalg.svd(p - c, full_matrices=False)
        d = vt[0]
        nrm = np.array([-d[1], d[0]])
        res = np.abs((pts - c) @ nrm)
        mad = float(np.median(res[keep])) * 1.4826
        new = res <= max(3 * mad, 0.35)
        if new.sum() < 6 or (new == keep).all():
            break
        keep = new
    return c, d


def _intersect(l1: tuple[np.ndarray, np.ndarray], l2: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    (p, d), (q, e) = l1, l2
    a = np.array([d, -e]).T
    t = np.linalg.solve(a, q - p)
    return p + t[0] * d


def _side_edges(sm: np.ndarray, center: np.ndarray, n: np.ndarray, e: np.ndarray, a: float, b: float,
                step: float = 0.5, rel: float = STRICT_STEP) -> tuple[np.ndarray, int]:
    """Edge candidates of one side: profiles along the outward normal ``n`` at positions
    along the tangent ``e``; returns (N×3 [profile, s, d] with d sub-pixel, usable profiles)."""
    h, w = sm.shape
    n_pos = int(np.clip(b / 3, 12, 80))
    s = np.linspace(-0.8 * b, 0.8 * b, n_pos)
    margin = 0.1 * a + 20
    d = np.arange(0.0, a + margin, step)
    strip = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    # sample grid: positions × strip × distance
    base = center[None, None, None, :] + (s[:, None, None, None] + strip[None, :, None, None]) * e \
        + d[None, None, :, None] * n
    mx = base[..., 0].astype(np.float32).reshape(n_pos * len(strip), len(d))
    my = base[..., 1].astype(np.float32).reshape(n_pos * len(strip), len(d))
    prof = cv2.remap(sm, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    prof = prof.reshape(n_pos, len(strip), len(d))
    valid = (prof >= 0).all(1)
    prof = prof.mean(1)
    win = int(6 / step)                    # reference level: the last 6 px…
    gap = int(2 / step)                    # …ending 2 px before the point tested
    persist = int(3 / step)
    out: list[tuple[int, float, float]] = []
    n_ok = 0
    for j in range(n_pos):
        p = prof[j]
        ok = valid[j]
        if not ok[: win + gap + 1].all():
            continue
        # running mean of the window [k-gap-win, k-gap)
        cs = np.concatenate([[0.0], np.cumsum(p)])
        k = np.arange(win + gap, len(d))
        ref = (cs[k - gap] - cs[k - gap - win]) / win
        # how much the sheet's own texture varies (streaks, blotches): high-pass of the
        # inner 40 % of the profile, so a slow lighting gradient does not count
        n_in = max(int(0.4 * a / step), win + gap)
        inner = p[:n_in]
        if len(inner) > 30:
            hp = inner - np.convolve(inner, np.ones(21) / 21, mode="same")
            texture = float(np.std(hp[10:-10]))
        else:
            texture = float(np.std(np.diff(inner)))
        thr = np.maximum(rel * ref, 4 * texture + 2.0)
        # the change must persist for 3 px: what lies beyond the top sheet's edge (sheets
        # beneath, the stack's side, the floor) differs from it for good, while a streak or
        # a scratch on the sheet itself is only a line. Either sign: dark sheets exist too.
        ahead = (cs[np.minimum(k + persist, len(d))] - cs[k]) / np.maximum(np.minimum(k + persist, len(d)) - k, 1)
        down = (ref - p[k] > thr) & (ref - ahead > thr)
        up = (p[k] - ref > thr) & (ahead - ref > thr)
        hitmask = (down | up) & ok[k]
        # every edge along the profile (the start of each run of changed samples), not just
        # the first: texture may fire before the top sheet's edge in some profiles
        starts = np.nonzero(hitmask & ~np.concatenate([[False], hitmask[:-1]]))[0]
        g0 = np.gradient(p)
        for h0 in starts[:8]:
            k0 = int(k[h0])
            lo, hi = max(k0 - int(4 / step), 1), min(k0 + int(1.5 / step), len(d) - 2)
            g = g0 * (1.0 if down[h0] else -1.0)        # make the edge a minimum
            i = lo + int(np.argmin(g[lo:hi + 1]))
            y0, y1, y2 = g[i - 1], g[i], g[i + 1]
            den = y0 - 2 * y1 + y2
            off = 0.5 * (y0 - y2) / den if abs(den) > 1e-9 else 0.0
            out.append((j, s[j], d[i] + float(np.clip(off, -1, 1)) * step))
        n_ok += 1
    return np.array(out, dtype=np.float64).reshape(-1, 3), n_ok


def _innermost_line(cands: np.ndarray, n_ok: int, center: np.ndarray, n: np.ndarray, e: np.ndarray,
                    min_support: float = 0.5, tol: float = 1.0) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The innermost line that at least ``min_support`` of the profiles agree on.

    Every profile crosses the top sheet's edge; sheets beneath that stick out add a second,
    outer line; texture adds scattered points no line gathers. Lines are searched within
    ±3° of the silhouette's side (the top sheet may sit a little rotated on the stack).
    """
    if n_ok < 6 or len(cands) < 6:
        return None
    s_arr, d_arr = cands[:, 1], cands[:, 2]
    need = max(6, int(np.ceil(min_support * n_ok)))
    best: Optional[tuple[float, float]] = None        # (offset, tilt)
    for tilt in np.tan(np.radians(np.arange(-3.0, 3.01, 0.1))):
        dd = d_arr - s_arr * tilt
        order = np.sort(dd)
        cnt = np.searchsorted(order, order + tol, "right") - np.searchsorted(order, order - tol, "left")
        ok = np.nonzero(cnt >= need)[0]
        if len(ok) and (best is None or order[ok[0]] < best[0] - 0.5 or
                        (abs(order[ok[0]] - best[0]) <= 0.5 and cnt[ok[0]] > best[2])):
            best = (float(order[ok[0]]), float(tilt), int(cnt[ok[0]]))
    if best is None:
        return None
    x0, tilt, _ = best
    # the densest spot near the first supported offset (the run may start at its edge)
    dd = d_arr - s_arr * tilt
    near = dd[np.abs(dd - (x0 + tol)) <= tol]
    mid = float(np.median(near)) if len(near) else x0
    sel = np.abs(dd - mid) <= tol
    pts = center + s_arr[sel, None] * e + d_arr[sel, None] * n
    return _fit_line(pts, tol=0.6)


def _band_differs(sm: np.ndarray, inner: tuple[np.ndarray, np.ndarray], outer: tuple[np.ndarray, np.ndarray],
                  n: np.ndarray, e: np.ndarray, center: np.ndarray, b: float) -> bool:
    """True when the band between ``inner`` and ``outer`` differs from the sheet inside
    ``inner`` (same sign, ≥ REL_STEP) at most positions along the side, all the way out."""
    (pi, di), (po, _do) = inner, outer
    ni = np.array([-di[1], di[0]]) * (1.0 if np.dot([-di[1], di[0]], n) > 0 else -1.0)
    votes, signs = 0, []
    usable = 0
    for s in np.linspace(-0.7 * b, 0.7 * b, 24):
        q = center + s * e
        a_in = pi + np.dot(q - pi, di) * di                   # the inner line's point near q
        gap = float(np.dot(po - a_in, ni))                    # outer line's distance outward
        if gap < 3.0:
            continue
        usable += 1
        band_t = np.arange(1.5, gap - 1.0, 0.5)
        in_t = np.arange(2.0, 8.0, 0.5)
        pts = np.concatenate([a_in + band_t[:, None] * ni, a_in - in_t[:, None] * ni]).astype(np.float32)
        vals = cv2.remap(sm, pts[:, 0].reshape(1, -1), pts[:, 1].reshape(1, -1), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0).ravel()
        band, inside = vals[: len(band_t)], vals[len(band_t):]
        if (vals < 0).any() or len(band) == 0:
            continue
        ref = float(np.median(inside))
        dev = (band - ref) / max(ref, 1.0)
        # the whole band (not just its start) must stay changed: a sheet beneath, not a streak
        if np.mean(np.abs(dev) >= 0.4 * REL_STEP) >= 0.7:
            votes += 1
            signs.append(np.sign(np.median(dev)))
    return usable >= 6 and votes >= 0.7 * usable and abs(float(np.mean(signs))) > 0.8


def _top_edge_over_beneath(sm: np.ndarray, center: np.ndarray, n: np.ndarray, e: np.ndarray, half: float,
                           along: float, outer: tuple[np.ndarray, np.ndarray]) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The top sheet's own edge a little inside the stack's outline on this side, when a sheet
    beneath sticks out there; None when the outline is the top sheet's edge."""
    cands, n_ok = _side_edges(sm, center, n, e, half, along, rel=REL_STEP)
    if len(cands) < 6:
        return None
    po, do = outer
    no = np.array([-do[1], do[0]]) * (1.0 if np.dot([-do[1], do[0]], n) > 0 else -1.0)
    pts = center + cands[:, 1, None] * e + cands[:, 2, None] * n
    dist = (pts - po) @ no                                  # negative: inside the outline
    max_out = 0.3 * half + 15.0                             # how far a sheet beneath may stick out
    sel = (dist <= -1.5) & (dist >= -max_out)
    if sel.sum() < 6:
        return None
    inner = _innermost_line(cands[sel], n_ok, center, n, e)
    if inner is None or not _band_differs(sm, inner, outer, n, e, center, along):
        return None
    return inner

RIM_PX = 4.5          # a cut edge may show as a thin dark/bright line up to this wide (px)


def _past_rim(sm: np.ndarray, line: tuple[np.ndarray, np.ndarray], center: np.ndarray, n: np.ndarray,
              along: float, step: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Move a side's line from the inner to the outer edge of the sheet's cut-edge rim.

    A cut edge often shows as a thin line darker (or brighter) than the sheet: walking
    outward, the first clear change is the rim's inner edge, which puts the outline a
    rim's width inside the sheet (−2…−4 px per side on a 640×480 capture: the 1.6 % width
    error). The side's profile is averaged along the whole line (noise-free), and the line
    moves out to the rim's outer edge when the next edge within ``RIM_PX`` goes the other
    way (a valley or a ridge). A sheet beneath that sticks out is a second step the same
    way (darker still, or the floor) and stays outside.
    """
    p0, d = line
    nn = np.array([-d[1], d[0]])
    if float(nn @ n) < 0:
        nn = -nn                                        # the side's outward normal
    # the line's point nearest the box centre, and positions along the middle 80 %
    base = p0 + ((center - p0) @ d) * d
    ts = np.linspace(-0.8 * along, 0.8 * along, max(16, int(along)))
    ds = np.arange(-4.0, RIM_PX + 3.0, step)
    pts = base[None, None, :] + ts[:, None, None] * d + ds[None, :, None] * nn
    prof = cv2.remap(sm, pts[..., 0].astype(np.float32), pts[..., 1].astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    ok = (prof >= 0).all(1)
    if ok.sum() < 8:
        return line
    g = np.gradient(prof[ok].mean(0))
    i0 = int(np.argmin(np.abs(ds)))
    lo, hi = max(1, i0 - int(1.0 / step)), min(len(g) - 2, i0 + int(1.0 / step))
    i1 = lo + int(np.argmax(np.abs(g[lo:hi + 1])))          # the edge the line sits on
    if abs(g[i1]) < 1e-6:
        return line
    gs = g * (-1.0 if g[i1] < 0 else 1.0) * -1.0           # first edge as a minimum
    thr = 0.3 * abs(float(g[i1]))
    best = None
    for k in range(i1 + 2, len(g) - 1):
        dist = ds[k] - ds[i1]
        if dist > RIM_PX:
            break
        if gs[k] > thr and gs[k] > gs[k - 1] and gs[k] >= gs[k + 1]:
            best = k                                       # out of a rim line (valley or ridge)
    if best is None:
        return line
    y0, y1, y2 = np.abs(g[best - 1]), np.abs(g[best]), np.abs(g[best + 1])
    den = y0 - 2 * y1 + y2
    off = 0.5 * (y0 - y2) / den if abs(den) > 1e-9 else 0.0
    shift = ds[best] + float(np.clip(off, -1, 1)) * step
    return p0 + shift * nn, d


def refine_outline(gray: np.ndarray, rect: tuple) -> Optional[np.ndarray]:
    """The top sheet's four corners (4×2, sub-pixel), or None when its edges are unclear."""
    (cx, cy), (rw, rh), ang = rect
    a = math.radians(ang)
    u = np.array([math.cos(a), math.sin(a)])
    v = np.array([-math.sin(a), math.cos(a)])
    c = np.array([cx, cy])
    sm = cv2.GaussianBlur(gray, (0, 0), 1.0)
    lines = []
    for n, half, e, along in ((u, rw / 2, v, rh / 2), (v, rh / 2, u, rw / 2),
                              (-u, rw / 2, v, rh / 2), (-v, rh / 2, u, rw / 2)):
        cands, n_ok = _side_edges(sm, c, n, e, half, along)
        line = _innermost_line(cands, n_ok, c, n, e)
        if line is None:
            return None
        # the top sheet's own edge when a sheet beneath sticks out, then out past a cut-edge rim line
        inner = _top_edge_over_beneath(sm, c, n, e, half, along, line)
        # a sheet beneath sticks out: its band lies outside the top sheet's edge, and the dark
        # line there is the top sheet's side wall, not a rim of its top face to step over
        lines.append(inner if inner is not None else _past_rim(sm, line, c, n, along))
    try:
        corners = np.array([_intersect(lines[i], lines[(i + 1) % 4]) for i in range(4)])
    except np.linalg.LinAlgError:
        return None
    # sanity: the refined outline must lie within (a little beyond) the silhouette's rectangle
    box = cv2.boxPoints(rect)
    if cv2.contourArea(corners.astype(np.float32)) < 0.3 * rw * rh or \
            min(cv2.pointPolygonTest(box.reshape(-1, 1, 2), (float(x), float(y)), True) for x, y in corners) < -5 - RIM_PX:
        return None
    return corners


def _dims(corners: np.ndarray) -> tuple[float, float, float]:
    """Length, width (px) and the long axis's angle from a quadrilateral's corners."""
    sides = [corners[(i + 1) % 4] - corners[i] for i in range(4)]
    s02 = (np.hypot(*sides[0]) + np.hypot(*sides[2])) / 2
    s13 = (np.hypot(*sides[1]) + np.hypot(*sides[3])) / 2
    if s02 >= s13:
        length, width, vec = s02, s13, sides[0] - sides[2]
    else:
        length, width, vec = s13, s02, sides[1] - sides[3]
    ang = math.degrees(math.atan2(-vec[1], vec[0]))        # image y is down → CCW on screen
    while ang <= -90:
        ang += 180
    while ang > 90:
        ang -= 180
    return float(length), float(width), float(ang)


def measure_pixels(image: np.ndarray) -> Measurement:
    """Find and outline the top sheet; sizes in pixels only (no K yet)."""
    gray = _gray(image)
    cnt, rect = find_silhouette(gray)
    corners = refine_outline(gray, rect)
    method = "subpixel"
    if corners is None:
        # no clear edge on every side: the silhouette may be a bin or the stack's union,
        # so a number from it could be badly wrong — say so instead of guessing
        raise MeasureError("The top sheet's edges are not clear enough to measure it "
                           "(check the lighting and that the whole sheet is in view).")
    length, width, ang = _dims(corners)
    center = corners.mean(0)
    return Measurement(length_px=length, width_px=width, angle_deg=ang,
                       center_px=(float(center[0]), float(center[1])),
                       corners_px=corners.round(3).tolist(), corners_src_px=corners.round(3).tolist(),
                       method=method)


def measure_sheet(image: np.ndarray, mm_per_px: Optional[float] = None, camera_height_mm: Optional[float] = None,
                  stack_height_mm: Optional[float] = None, corrector: Any = None) -> Measurement:
    """Measure the top sheet of ``image`` (BGR or grey).

    Args:
        mm_per_px: K at the calibration plane; None/0 leaves the mm fields empty.
        camera_height_mm, stack_height_mm: C and h above the calibration plane; with
            both, sizes are parallax-compensated.
        corrector: a :class:`core.qa.calibration.Corrector` (lens / plane), applied first.
    """
    corrected: list[str] = []
    if corrector is not None:
        image, k_plane = corrector.apply(image)
        corrected = corrector.applied
        if k_plane:
            mm_per_px = k_plane
    m = measure_pixels(image)
    m.corrected = corrected
    if corrector is not None:
        m.corners_src_px = corrector.to_source(np.array(m.corners_px)).round(3).tolist()
    if mm_per_px:
        to_mm(m, mm_per_px, camera_height_mm, stack_height_mm)
    elif stack_height_mm is not None:
        parallax_factor(camera_height_mm or 0.0, stack_height_mm)   # validate even when uncalibrated
    return m


# --- drawing and storage -------------------------------------------------------------------
def draw_measurement(image: np.ndarray, m: Measurement, text: Optional[str] = None) -> np.ndarray:
    """A copy of ``image`` with the outline and "L × W mm" drawn on it."""
    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    pts = np.array(m.corners_src_px or m.corners_px, dtype=np.float64)
    th = max(2, out.shape[1] // 400)
    cv2.polylines(out, [np.round(pts * 16).astype(np.int32).reshape(-1, 1, 2)], True, (0, 200, 255), th,
                  cv2.LINE_AA, shift=4)
    label = (text or m.label).replace("×", "x")      # Hershey fonts have no "×"
    scale = max(0.6, out.shape[1] / 1200)
    (tw, tht), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, th)
    cx, cy = pts.mean(0)
    x, y = int(cx - tw / 2), int(cy + tht / 2)
    cv2.rectangle(out, (x - 6, y - tht - 6), (x + tw + 6, y + 8), (0, 0, 0), -1)
    cv2.putText(out, label, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 200, 255), th, cv2.LINE_AA)
    return out


def store_measurement(db: Any, capture_id: int, m: Measurement) -> int:
    """Write a ``MeasurementRow`` and a line in the session log; returns the row id."""
    from sqlalchemy import select

    from core.platform.storage import CaptureRow, MeasurementRow
    with db.session() as s:
        cap = s.get(CaptureRow, capture_id)
        if cap is None:
            raise MeasureError("Capture {id} does not exist.", id=capture_id)
        box = json.dumps(m.corners_src_px or m.corners_px)
        last = s.scalars(select(MeasurementRow).where(MeasurementRow.capture_id == capture_id)
                         .order_by(MeasurementRow.id.desc()).limit(1)).first()
        if last is not None and (last.length_px, last.width_px, last.angle_deg, last.mm_per_px or 0.0,
                                 last.stack_height_mm, last.box_json) == (
                m.length_px, m.width_px, m.angle_deg, m.mm_per_px or 0.0, m.stack_height_mm, box):
            return last.id          # the same measurement again (another click): nothing new to store
        row = MeasurementRow(capture_id=capture_id, length_mm=m.length_mm, width_mm=m.width_mm,
                             length_px=m.length_px, width_px=m.width_px, angle_deg=m.angle_deg,
                             mm_per_px=m.mm_per_px or 0.0, stack_height_mm=m.stack_height_mm,
                             parallax_compensated=m.parallax_compensated,
                             box_json=box)
        s.add(row)
        s.flush()
        rid, session_id, index = row.id, cap.session_id, cap.index
    db.log(f"Sheet #{index} measured: {m.label}" + (" (parallax compensated)" if m.parallax_compensated else ""),
           session_id=session_id)
    return rid


def measure_with_settings(image: np.ndarray, settings: Any, db: Any = None, sheet_count: Optional[int] = None,
                          stack_height_mm: Optional[float] = None) -> Measurement:
    """Measure with what the product knows: the active calibration (lens/plane) from
    ``db``, K and C from ``settings.calibration``, h entered or from the sheet count.

    ``stack_height_mm`` is the stack top above the stack's base; the calibration plane's
    height (``plane_height_mm``) is subtracted.
    """
    cal = settings.calibration
    corrector = None
    if db is not None:
        from core.qa.calibration import Corrector, active_calibration
        row = active_calibration(db)
        if row is not None:
            corrector = Corrector.from_details(row.details or {})
            if not corrector.applied_possible:
                corrector = None
    h = None
    if stack_height_mm is not None:
        h = float(stack_height_mm) - cal.plane_height_mm
    elif sheet_count is not None and cal.sheet_thickness_mm > 0:
        h = stack_height_from_count(sheet_count, cal.sheet_thickness_mm, cal.plane_height_mm)
    k = cal.mm_per_px if cal.mm_per_px > 0 else None
    return measure_sheet(image, k, cal.camera_height_mm if h is not None else None, h if k else None,
                         corrector=corrector)


# --- CLI -----------------------------------------------------------------------------------

def cli_measure(argv: list[str]) -> int:
    """``python -m core measure IMAGE --mm-per-px K [--camera-height-mm C --stack-height-mm H]``."""
    p = CliParser(prog="python -m core measure", description="Measure the top sheet of an image in mm (JSON).")
    p.add_argument("image")
    p.add_argument("--mm-per-px", type=float, required=True, help="K at the calibration plane")
    p.add_argument("--camera-height-mm", type=float, default=None, help="C, camera above the calibration plane")
    p.add_argument("--stack-height-mm", type=float, default=None, help="h, stack top above the calibration plane")
    try:
        a = p.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        if not math.isfinite(a.mm_per_px) or a.mm_per_px <= 0:
            raise MeasureError("--mm-per-px must be > 0 (got {k}).", k=a.mm_per_px)
        if a.stack_height_mm is not None and a.camera_height_mm is None:
            raise MeasureError("--stack-height-mm needs --camera-height-mm.")
        if a.camera_height_mm is not None:
            parallax_factor(a.camera_height_mm, a.stack_height_mm if a.stack_height_mm is not None else 0.0)
        path = Path(a.image)
        img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if img is None:
            raise MeasureError("Cannot read the image {p}.", p=a.image)
        m = measure_sheet(img, a.mm_per_px, a.camera_height_mm, a.stack_height_mm)
    except MeasureError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:   # never a traceback on the CLI
        log.exception("measure failed")
        print(f"error: measurement failed: {e}", file=sys.stderr)
        return 1
    print(json.dumps(m.to_cli()))
    return 0
