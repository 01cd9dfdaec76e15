"""Synthetic YOLO datasets for the ``metal_sheet`` detector.

Stills come from the counting engine's scene renderer (:func:`core.synthetic.clips.render_still`):
varied finishes (brushed, mill scale, galvanized, painted), floors, bins and pallets,
stacks of 0–6 sheets, arms that occlude the top sheet or carry one in, sheets laid at an
angle. On top of that this module varies lighting (gradients, vignetting, gamma), blur and
sensor noise. The label is the **top sheet of the stack** (one ``metal_sheet`` box), the
thing the counting verifier asks about; an empty bin has no label (a negative image).

The held-out set is rendered with ANOTHER seed and other render settings (larger frames,
a wider range of sheet sizes, harsher lighting and noise), so its mAP50 says how the
detector generalises, not how well it memorised.

Example:
    >>> from core.synthetic.sheetdata import render_dataset
    >>> root = render_dataset("/tmp/sheets", 40)             # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())               # doctest: +SKIP
    ['data.yaml', 'images', 'labels']
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

RENDER_VERSION = "r1"          # bump when the renders change, so cached datasets are rebuilt
CLASS_NAME = "metal_sheet"
TRAIN_SEED = 20261121
HELDOUT_SEED = 7_777_001


@dataclass
class RenderSettings:
    """Knobs of one dataset; the held-out set uses :data:`HELDOUT` instead of :data:`TRAIN`."""
    sizes: tuple[tuple[int, int], ...]
    sheet_frac: tuple[float, float]          # sheet size as a fraction of the frame (min, max)
    max_angle_choices: tuple[float, ...]     # degrees
    gradient: float                          # lighting gradient amplitude
    vignette: float
    gamma: tuple[float, float]
    noise: tuple[float, float]               # extra sensor noise sigma range
    blur_p: float
    max_side: int                            # images are stored at most this large (training speed)


TRAIN = RenderSettings(sizes=((640, 480), (480, 360), (640, 360), (512, 512)), sheet_frac=(0.3, 0.65),
                       max_angle_choices=(0, 0, 5, 15), gradient=0.25, vignette=0.25, gamma=(0.8, 1.25),
                       noise=(0.0, 4.0), blur_p=0.2, max_side=480)
HELDOUT = RenderSettings(sizes=((800, 600), (960, 540)), sheet_frac=(0.22, 0.72),
                         max_angle_choices=(0, 3, 10, 20), gradient=0.4, vignette=0.35, gamma=(0.7, 1.4),
                         noise=(2.0, 7.0), blur_p=0.35, max_side=480)


def _relight(img: np.ndarray, rng: np.random.Generator, rs: RenderSettings) -> np.ndarray:
    """Uneven lighting (a directional gradient + vignette), gamma, blur and noise."""
    h, w = img.shape[:2]
    f = img.astype(np.float32) / 255.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    g = ((xx / w - 0.5) * np.cos(a) + (yy / h - 0.5) * np.sin(a)) * 2 * rng.uniform(0, rs.gradient)
    r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) * 2
    vig = 1.0 - rng.uniform(0, rs.vignette) * r2
    f = f * (1.0 + g)[..., None] * vig[..., None]
    f = np.clip(f, 0, 1) ** rng.uniform(*rs.gamma)
    out = (f * 255).astype(np.float32)
    if rng.random() < rs.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.6, 1.6))
    out += rng.normal(0, rng.uniform(*rs.noise), out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_sample(rng: np.random.Generator, rs: RenderSettings = TRAIN) -> tuple[np.ndarray, list[list[float]], dict[str, Any]]:
    """One image and its YOLO labels ``[[cls, cx, cy, w, h], …]`` (normalised)."""
    from core.synthetic.clips import render_still
    size = rs.sizes[int(rng.integers(len(rs.sizes)))]
    lo, hi = rs.sheet_frac
    frac = (float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi)))
    n = int(rng.choice([0, 1, 1, 2, 3, 4, 6]))
    arm = str(rng.choice(["none", "none", "partial", "partial", "carry"]))
    img, top, _boxes, meta = render_still(rng, size, n_sheets=n, arm=arm,
                                          max_angle_deg=float(rng.choice(rs.max_angle_choices)),
                                          max_offset_px=float(rng.uniform(0, 6)), sheet_frac=frac)
    img = _relight(img, rng, rs)
    h, w = img.shape[:2]
    s = min(1.0, rs.max_side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
    labels: list[list[float]] = []
    if top is not None:
        x1, y1, x2, y2 = (max(0, top[0]), max(0, top[1]), min(w, top[2]), min(h, top[3]))
        if x2 - x1 > 4 and y2 - y1 > 4:
            labels.append([0, (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h])
    return img, labels, meta


def render_dataset(root: str | Path, n: int, heldout: bool = False, seed: Optional[int] = None,
                   val_fraction: float = 0.15, progress: Any = None) -> Path:
    """Render ``n`` images as a YOLO dataset under ``root`` (``images/{train,val}``,
    ``labels/{train,val}``, ``data.yaml``). A held-out set puts every image in ``val``
    (``train`` points at the same folder so the yaml stays valid for ``yolo val``)."""
    root = Path(root)
    rs = HELDOUT if heldout else TRAIN
    rng = np.random.default_rng(seed if seed is not None else (HELDOUT_SEED if heldout else TRAIN_SEED))
    n_val = n if heldout else max(1, int(round(n * val_fraction)))
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    stats: dict[str, Any] = {"images": n, "labelled": 0, "finishes": {}, "arms": {}}
    for i in range(n):
        split = "val" if i >= n - n_val else "train"
        img, labels, meta = render_sample(rng, rs)
        stem = f"{'heldout' if heldout else 'sheet'}_{i:05d}"
        cv2.imwrite(str(root / "images" / split / f"{stem}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        (root / "labels" / split / f"{stem}.txt").write_text(
            "".join(f"{int(c)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}\n" for c, x, y, bw, bh in labels))
        stats["labelled"] += bool(labels)
        stats["finishes"][meta["finish"]] = stats["finishes"].get(meta["finish"], 0) + 1
        stats["arms"][meta["arm"]] = stats["arms"].get(meta["arm"], 0) + 1
        if progress:
            progress((i + 1) / n)
    train_dir = "images/val" if heldout else "images/train"
    (root / "data.yaml").write_text(
        f"# rendered by core.synthetic.sheetdata {RENDER_VERSION} ({'held-out' if heldout else 'training'} settings)\n"
        f"path: {root.resolve()}\ntrain: {train_dir}\nval: images/val\nnames:\n  0: {CLASS_NAME}\n")
    (root / "stats.json").write_text(json.dumps(stats, indent=2))
    return root


def main(argv: list[str] | None = None) -> int:
    """``python -m core.synthetic.sheetdata OUT N [--heldout]`` — render a dataset (prints its stats)."""
    ap = argparse.ArgumentParser(prog="python -m core.synthetic.sheetdata", description="render a metal_sheet YOLO dataset")
    ap.add_argument("out")
    ap.add_argument("n", type=int)
    ap.add_argument("--heldout", action="store_true")
    ap.add_argument("--seed", type=int)
    a = ap.parse_args(argv)
    if a.n < 1:
        print("error: n must be ≥ 1", file=sys.stderr)
        return 2
    root = render_dataset(a.out, a.n, heldout=a.heldout, seed=a.seed)
    print((root / "stats.json").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
