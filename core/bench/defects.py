"""TODO docstring."""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any
import numpy as np
from core.platform.paths import Paths
import gc
from core.qa.segment import DEFECT_KINDS
from core.qa.defects import Locator, _guard, active_model_path
from core.qa.segment import ModelFreeSegmenter, mask_iou
from core.synthetic.defects import render_synthetic_defect, sheet_texture


def _rss_mb() -> float:
    import psutil
    return round(psutil.Process().memory_info().rss / 2**20, 1)


def synthetic_capture(h: int, w: int, seed: int = 0, n_defects: int = 6) -> tuple[np.ndarray, list[list[float]]]:
    """A sheet-texture capture with ``n_defects`` rendered defects; returns (image, boxes)."""
    from core.qa.segment import DEFECT_KINDS
    from core.synthetic.defects import render_synthetic_defect, sheet_texture
    rng = np.random.default_rng(seed)
    img = sheet_texture(h, w, rng)
    boxes = []
    for i in range(n_defects):
        # render each defect in its own cell so they do not overlap
        cw, ch = w // 3, h // 2
        cx, cy = (i % 3) * cw, (i // 3 % 2) * ch
        cell = img[cy:cy + ch, cx:cx + cw].copy()
        _, b = render_synthetic_defect(cell, DEFECT_KINDS[i % len(DEFECT_KINDS)], rng, scale=0.6)
        img[cy:cy + ch, cx:cx + cw] = cell
        boxes.append([b[0] + cx, b[1] + cy, b[2] + cx, b[3] + cy])
    return img, boxes


def bench_defects(argv: list[str]) -> int:
    return _guard(_bench_defects, argv)


def _bench_defects(argv: list[str]) -> int:
    """``python -m core bench defects``: time per capture (locate / segment) at 1280×720 and
    1920×1080, memory in each mode, and the model-free segmenter's IoU on synthetic defects."""
    from core.platform import log as _log
    from core.qa.segment import ModelFreeSegmenter, Sam2Segmenter
    from core.bench.defects import segmenter_iou_benchmark
    ap = argparse.ArgumentParser(prog="python -m core bench defects")
    ap.add_argument("--model", help="defect model (default: the active one)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-sam2", action="store_true", help="skip the (random-init) SAM 2 timing")
    ap.add_argument("--iou-n", type=int, default=25, help="synthetic defects per kind for the IoU figure")
    a = ap.parse_args(argv)
    _log.setup()
    paths = Paths.from_env()
    out: dict[str, Any] = {"cpu_threads": os.cpu_count(), "memory_mb": {"start": _rss_mb()}}
    model = Path(a.model) if a.model else active_model_path(paths)
    loc = None
    if model is not None and model.exists():
        loc = Locator.from_path(model)
        out["locator"] = {"model": str(model), "backend": getattr(loc.detector, "backend", "?"),
                          "imgsz": getattr(loc.detector, "imgsz", None), "tile": loc.tile}
        out["memory_mb"]["locator_loaded"] = _rss_mb()
    else:
        out["locator"] = None
    mf = ModelFreeSegmenter()
    sam = None
    if not a.no_sam2:
        sam = Sam2Segmenter(None, random_init=True)
        out["memory_mb"]["locator_and_sam2_loaded"] = _rss_mb()
    for (w, h) in ((1280, 720), (1920, 1080)):
        img, boxes = synthetic_capture(h, w, seed=w)
        r: dict[str, Any] = {}
        if loc is not None:
            loc.locate(img)  # warm-up
            ts = []
            for _ in range(a.reps):
                t = time.perf_counter()
                found = loc.locate(img)
                ts.append((time.perf_counter() - t) * 1000)
            r["locate_ms"] = round(float(np.median(ts)), 1)
            r["tiles"] = loc.last_stats["tiles"]
            r["boxes_found"] = len(found)
        ts = []
        for _ in range(a.reps):
            t = time.perf_counter()
            mf.segment(img, boxes)
            ts.append((time.perf_counter() - t) * 1000)
        r["segment_model_free_ms"] = round(float(np.median(ts)), 1)
        r["segment_boxes"] = len(boxes)
        if sam is not None:
            sam.segment(img, boxes[:1])  # warm-up
            t = time.perf_counter()
            sam.segment(img, boxes)
            r["segment_sam2_tiny_ms"] = round((time.perf_counter() - t) * 1000, 1)
        out[f"{w}x{h}"] = r
    out["memory_mb"]["after_runs"] = _rss_mb()
    if sam is not None:
        sam.unload()
        del sam
    if loc is not None:
        loc.unload()
        del loc
    import ctypes
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    out["memory_mb"]["after_eviction"] = _rss_mb()
    out["model_free_iou"] = segmenter_iou_benchmark(a.iou_n)
    # fainter defects (40 % of the nominal contrast): closer to the noise floor, harder
    out["model_free_iou_faint"] = segmenter_iou_benchmark(a.iou_n, seed=1, contrast_scale=0.4)
    print(json.dumps(out, indent=1))
    return 0


def segmenter_iou_benchmark(n_per_kind: int = 20, size: tuple[int, int] = (360, 480), seed: int = 0,
                            segmenter: Any = None, contrast_scale: float = 1.0) -> dict[str, Any]:
    """Mean IoU of ``segmenter`` (model-free by default) per synthetic defect kind;
    ``contrast_scale`` < 1 renders fainter defects (harder)."""
    seg = segmenter or ModelFreeSegmenter()
    rng = np.random.default_rng(seed)
    res: dict[str, Any] = {}
    allv: list[float] = []
    for kind in DEFECT_KINDS:
        ious = []
        for _ in range(n_per_kind):
            img = sheet_texture(size[0], size[1], rng)
            gt, box = render_synthetic_defect(img, kind, rng, contrast_scale=contrast_scale)
            r = seg.segment(img, [box])[0]
            ious.append(mask_iou(r.full_mask(img.shape[:2]), gt))
        res[kind] = {"mean_iou": round(float(np.mean(ious)), 3), "min_iou": round(float(np.min(ious)), 3),
                     "n": n_per_kind}
        allv += ious
    res["all"] = {"mean_iou": round(float(np.mean(allv)), 3), "n": len(allv)}
    res["segmenter"] = seg.name
    res["contrast_scale"] = contrast_scale
    return res
