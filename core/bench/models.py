"""``python -m core bench models``: process memory in each model mode (counting, analysis with SAM 2) and after swaps."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from core.bench.record import add_record_arg, record
from core.models.manager import Box, ModelError, ModelManager, Registry, YoloRunner, _ctx, _fail, log


def bench_memory(argv: list[str]) -> int:
    """``python -m core bench models`` — process RSS (and CUDA memory) in each mode and
    after each swap: counting → analysis → counting … Uses a random-init SAM 2 hiera-tiny
    when no checkpoint is registered (same size as the real one)."""
    ap = argparse.ArgumentParser(prog="python -m core bench models", description=bench_memory.__doc__)
    ap.add_argument("--cycles", type=int, default=2)
    ap.add_argument("--size", type=int, default=640, help="test image size")
    ap.add_argument("--no-speed", dest="speed", action="store_false", help="skip the ONNX vs PyTorch timing")
    add_record_arg(ap)
    a = ap.parse_args(argv)
    if a.cycles < 1:
        return _fail("--cycles must be ≥ 1")
    from core.platform.log import setup
    setup("WARNING")
    db, paths = _ctx()
    mm = ModelManager(db, paths, sam2_random_init=True)
    img = np.full((a.size, a.size, 3), 90, np.uint8)
    rows: list[dict[str, Any]] = []

    def snap(step: str, t0: float) -> None:
        m = mm.memory()
        m.update(step=step, seconds=round(time.perf_counter() - t0, 2))
        rows.append(m)
        print(f"{step:<34} rss {m['rss_mb']:8.1f} MB  resident={','.join(m['resident']) or '-':<24}"
              + (f" cuda {m['cuda_allocated_mb']} MB" if "cuda_allocated_mb" in m else "")
              + f"  ({m['seconds']} s)", file=sys.stderr)

    snap("start", time.perf_counter())
    for c in range(1, a.cycles + 1):
        t0 = time.perf_counter()
        det = mm.sheet_detector()
        if det is not None:
            det.predict(img)
        del det
        snap(f"cycle {c}: counting (sheet loaded)", t0)
        t0 = time.perf_counter()
        mm.enter_analysis()
        snap(f"cycle {c}: swap → analysis", t0)
        t0 = time.perf_counter()
        loc = mm.defect_locator()
        if loc is not None:
            loc.predict(img)
        seg = mm.segmenter()
        if seg is not None and hasattr(seg, "segment"):
            try:
                seg.segment(img, [Box(100, 100, 300, 300, 1.0, 0, "x")])
            except Exception as e:  # the memory figure matters here, not the mask
                log.warning("segment failed: %s", e)
        del loc, seg
        snap(f"cycle {c}: analysis (locator+SAM2)", t0)
        t0 = time.perf_counter()
        mm.leave_analysis()
        snap(f"cycle {c}: swap → counting", t0)
    mm.close()
    speed = inference_speed(mm.registry, img) if a.speed else {}
    doc = {"steps": rows, "inference_ms": speed, "problems": mm.problems}
    print(json.dumps(doc, indent=2))
    if a.record:
        def rss(prefix: str) -> str:
            return " → ".join(f"{r['rss_mb']:.0f}" for r in rows if r["step"].startswith(prefix) or r["step"] == prefix)
        seg = "SAM 2 hiera-tiny, random weights (no checkpoint here)" if mm.sam2_random_init else "segmenter"
        record("models", argv, f"shipped weights; {seg}; {a.size}×{a.size} test image", doc,
               f"RSS MB start {rows[0]['rss_mb']:.0f}; per cycle (counting, swap, analysis, back): "
               + "; ".join(rss(f"cycle {c}:") for c in range(1, a.cycles + 1))
               + (f"; sheet detector ONNX {speed.get('onnx')} ms vs PyTorch {speed.get('torch')} ms" if speed else ""))
    return 0


def inference_speed(reg: Registry, img: np.ndarray, n: int = 20) -> dict[str, Any]:
    """Median ms per ``predict`` of the active sheet model on ONNX Runtime and on PyTorch —
    the measurement behind ``prefer_onnx``."""
    try:
        mv = reg.active("sheet")
    except ModelError:
        return {}
    if mv is None:
        return {}
    out: dict[str, Any] = {"model": mv.path.name}
    for backend, prefer in (("onnx", True), ("torch", False)):
        try:
            r = YoloRunner.load(mv.path, prefer_onnx=prefer, device="cpu")
        except ModelError:
            continue
        if r.backend != backend:
            continue
        r.predict(img)
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            r.predict(img)
            ts.append((time.perf_counter() - t0) * 1000)
        out[backend] = round(float(np.median(ts)), 1)
        out["imgsz"] = r.imgsz
        r.unload()
    print(f"sheet detector {out.get('model')}: onnx {out.get('onnx')} ms, torch {out.get('torch')} ms "
          f"per {img.shape[1]}x{img.shape[0]} frame at imgsz {out.get('imgsz')}", file=sys.stderr)
    return out
