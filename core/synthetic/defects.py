"""TODO docstring."""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from core.qa.segment import DEFECT_KINDS


# ----------------------------------------------------------------------------------------
# Synthetic defects on sheet textures (benchmarks and tests)
# ----------------------------------------------------------------------------------------
def sheet_texture(h: int, w: int, rng: np.random.Generator, base: Optional[float] = None) -> np.ndarray:
    """A brushed-steel-like BGR texture: horizontal streaks, a lighting gradient, noise."""
    base = float(rng.uniform(110, 170)) if base is None else base
    streaks = rng.normal(0, 6, (h, 1)).astype(np.float32)
    streaks = cv2.GaussianBlur(np.repeat(streaks, 8, 1), (0, 0), 1.5)[:, :1]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    grad = rng.uniform(-20, 20) * xx / w + rng.uniform(-15, 15) * yy / h
    fine = cv2.GaussianBlur(rng.normal(0, 5, (h, w)).astype(np.float32), (0, 0), 0.8)
    g = base + streaks + grad + fine + rng.normal(0, 2.5, (h, w)).astype(np.float32)
    return cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def render_synthetic_defect(img: np.ndarray, kind: str, rng: np.random.Generator,
                            scale: float = 1.0, contrast_scale: float = 1.0) -> tuple[np.ndarray, list[float]]:
    """Draw one defect of ``kind`` (scratch | patch | inclusion | pit) into ``img`` in place.

    Returns ``(gt_mask, box)``: the boolean ground-truth mask and a detector-like box around it
    (the tight box padded by a few pixels, as a locator's box would be).
    """
    if kind not in DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {kind!r} (use {', '.join(DEFECT_KINDS)})")
    h, w = img.shape[:2]
    m = np.zeros((h, w), np.uint8)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    s = scale * min(h, w)
    if kind == "scratch":
        L = rng.uniform(0.25, 0.5) * s
        a = rng.uniform(0, np.pi)
        p1 = (int(cx - L / 2 * np.cos(a)), int(cy - L / 2 * np.sin(a)))
        p2 = (int(cx + L / 2 * np.cos(a)), int(cy + L / 2 * np.sin(a)))
        cv2.line(m, p1, p2, 1, int(rng.integers(3, 7)), cv2.LINE_8)
        contrast = rng.choice([-1, 1]) * rng.uniform(35, 60)
    elif kind == "patch":
        pts = []
        r0 = rng.uniform(0.08, 0.18) * s
        for t in np.linspace(0, 2 * np.pi, 14, endpoint=False):
            r = r0 * rng.uniform(0.6, 1.3)
            pts.append((int(cx + r * np.cos(t)), int(cy + r * np.sin(t))))
        cv2.fillPoly(m, [np.array(pts, np.int32)], 1)
        contrast = -rng.uniform(30, 55)
    elif kind == "inclusion":
        ax = (int(rng.uniform(0.03, 0.07) * s) + 2, int(rng.uniform(0.008, 0.02) * s) + 2)
        cv2.ellipse(m, (int(cx), int(cy)), ax, float(rng.uniform(-20, 20)), 0, 360, 1, -1)
        contrast = -rng.uniform(40, 70)
    else:  # pit: a small cluster of round pits
        for _ in range(int(rng.integers(2, 5))):
            r = int(rng.uniform(0.008, 0.02) * s) + 2
            cv2.circle(m, (int(cx + rng.normal(0, 0.03 * s)), int(cy + rng.normal(0, 0.03 * s))), r, 1, -1)
        contrast = -rng.uniform(45, 75)
    contrast *= contrast_scale
    mask = m.astype(bool)
    # soft edge (real defects are not pixel-sharp); GT is the hard shape
    soft = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 0.8)
    tex = rng.normal(0, 4, (h, w)).astype(np.float32) * soft
    out = img.astype(np.float32) + (contrast * soft + tex)[:, :, None]
    img[:] = np.clip(out, 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    pad = max(3.0, 0.08 * max(np.ptp(xs) + 1, np.ptp(ys) + 1))
    box = [max(0.0, xs.min() - pad), max(0.0, ys.min() - pad), min(float(w), xs.max() + 1 + pad),
           min(float(h), ys.max() + 1 + pad)]
    return mask, box
