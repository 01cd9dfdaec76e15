"""``python -m core bench measure``: measurement accuracy on rendered sheets (known size, pose, stack height)."""
from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from core.bench.record import add_record_arg, record
from core.platform.errors import CliParser
from core.qa.measure import MeasureError, log, measure_sheet


def run_benchmark(n: int = 40, seed: int = 0, width: int = 1280, height: int = 960,
                  stack: bool = False) -> dict[str, Any]:
    """Measure ``n`` rendered sheets; absolute % errors of length and width, with and
    without parallax compensation.

    ``stack``: every render has 1–3 sheets beneath the top one sticking out by up to 20 px,
    nearly as bright as it (0.88–0.97 of the top's brightness) — the case where the top
    sheet must be told from the stack's union. The tuning seeds were 3–7; report others.
    """
    from core.synthetic.stills import random_scene, render
    rng = np.random.default_rng(seed)
    errs: dict[str, list[float]] = {"comp_l": [], "comp_w": [], "raw_l": [], "raw_w": []}
    failed, fallback, times = 0, 0, []
    for i in range(n):
        scene, cam, style, s = random_scene(rng, width=width, height=height, max_offset_px=20.0 if stack else 10.0)
        if stack:
            if not scene.beneath_offsets_px:
                scene.beneath_offsets_px = [(float(rng.uniform(-20, 20)), float(rng.uniform(-20, 20)))]
                scene.beneath_angles_deg = [scene.angle_deg]
            style.beneath = float(rng.uniform(0.88, 0.97))
        r = render(scene, cam, style, seed=s)
        t0 = time.perf_counter()
        try:
            m = measure_sheet(r.image, r.truth.mm_per_px_floor, cam.height_mm, r.truth.stack_height_mm)
        except MeasureError:
            failed += 1
            continue
        times.append(time.perf_counter() - t0)
        fallback += m.method != "subpixel"
        L, W = r.truth.length_mm, r.truth.width_mm
        raw_l, raw_w = m.length_px * r.truth.mm_per_px_floor, m.width_px * r.truth.mm_per_px_floor
        errs["comp_l"].append(abs(m.length_mm - L) / L * 100)
        errs["comp_w"].append(abs(m.width_mm - W) / W * 100)
        errs["raw_l"].append(abs(raw_l - L) / L * 100)
        errs["raw_w"].append(abs(raw_w - W) / W * 100)
        log.debug("%d: L %.1f/%.1f W %.1f/%.1f h %.0f", i, m.length_mm, L, m.width_mm, W, scene.stack_height_mm)

    def stat(k: str) -> dict[str, float]:
        v = np.array(errs[k]) if errs[k] else np.array([np.nan])
        return {"mean_pct": round(float(v.mean()), 3), "max_pct": round(float(v.max()), 3)}

    comp = {"length": stat("comp_l"), "width": stat("comp_w")}
    return {"images": n, "image_size": [width, height], "failed": failed, "contour_fallback": fallback,
            "with_parallax_compensation": comp,
            "without_parallax_compensation": {"length": stat("raw_l"), "width": stat("raw_w")},
            "ms_per_image": round(float(np.mean(times)) * 1000, 1) if times else None,
            "target": {"mean_pct": 0.5, "max_pct": 1.5},
            "target_met": bool(failed == 0 and all(comp[k]["mean_pct"] <= 0.5 and comp[k]["max_pct"] <= 1.5
                                                   for k in comp))}


def bench_measure(argv: list[str]) -> int:
    """``python -m core bench measure [--n 40] [--seed 0] [--size 1280x960]``: prints JSON figures."""
    p = CliParser(prog="python -m core bench measure", description="Measurement accuracy on rendered sheets.")
    p.add_argument("--n", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default="1280x960", help="image WIDTHxHEIGHT")
    p.add_argument("--stack", action="store_true",
                   help="sheets beneath the top one stick out (up to 20 px, 0.88–0.97 of its brightness)")
    add_record_arg(p)
    try:
        a = p.parse_args(argv)
        w, h = (int(x) for x in a.size.lower().split("x"))
        if a.n < 1 or w < 160 or h < 120:
            raise ValueError
    except SystemExit as e:
        return int(e.code or 0)
    except ValueError:
        print("error: --n must be ≥ 1 and --size like 1280x960 (at least 160x120)", file=sys.stderr)
        return 2
    res = run_benchmark(a.n, a.seed, w, h, stack=a.stack)
    print(json.dumps(res, indent=2))
    if a.record:
        c, r = res["with_parallax_compensation"], res["without_parallax_compensation"]
        what = ("stacks whose lower sheets stick out by up to 20 px at 0.88–0.97 of the top's brightness"
                if a.stack else "sheets")
        record("measure-stack" if a.stack else "measure", argv, command="measure",
               data=f"{a.n} rendered {what}, {w}×{h} (core.synthetic.stills, seed {a.seed})", figures=res,
               summary=f"parallax-compensated mean abs. error {c['length']['mean_pct']} % length / {c['width']['mean_pct']} % "
               f"width, max {c['length']['max_pct']} / {c['width']['max_pct']} %; uncompensated mean "
               f"{r['length']['mean_pct']} / {r['width']['mean_pct']} %; {res['failed']} failed")
    return 0
