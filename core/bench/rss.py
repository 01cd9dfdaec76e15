"""``python -m core bench rss``: process memory while the counting worker loops a clip for N minutes."""
from __future__ import annotations

import time

from core.bench.record import add_record_arg, record
from core.live.worker import CountingWorker, UploadError, _print_json
from core.platform.paths import Paths
from core.platform.storage import Database


def bench_rss(argv: list[str]) -> int:
    """``python -m core bench rss [--minutes 10]``: the process RSS while the worker counts a
    looping clip in a session (every frame through engine, capture and DB); prints the
    curve's start, end and growth. Growth < 50 MB is the bar."""
    import argparse
    import gc
    import sys
    import tempfile

    import psutil
    ap = argparse.ArgumentParser(prog="python -m core bench rss", description=bench_rss.__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    add_record_arg(ap)
    ap.add_argument("--source", default="demo", help="clip to loop (default: the demo clip)")
    ap.add_argument("--fast", action="store_true", help="do not pace in real time (more frames per minute)")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--frame-every", type=float, default=0.5,
                    help="also fetch the live JPEG this often, as a watching browser would (0 = never)")
    a = ap.parse_args(argv)
    if not (0 < a.minutes <= 24 * 60) or a.sample_s <= 0 or a.frame_every <= 0:
        ap.error("--minutes must be within 0..1440 and --sample-s, --frame-every > 0")
    proc = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="msm-rss-") as tmp:
        import os
        os.environ["MSM_DATA_DIR"] = tmp
        os.environ.pop("DATABASE_URL", None)
        paths = Paths.from_env().ensure()
        db = Database()
        w = CountingWorker(db, paths, realtime=not a.fast, loop=True)
        try:
            w.set_source(a.source)
        except UploadError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        w.start()
        w.start_session("rss-bench", 100_000)
        t0 = time.monotonic()
        curve: list[tuple[float, float, int, int]] = []
        next_sample = t0
        next_frame = t0
        while time.monotonic() - t0 < a.minutes * 60:
            now = time.monotonic()
            if a.frame_every and now >= next_frame:
                w.latest_jpeg()
                next_frame = now + a.frame_every
            if now >= next_sample:
                gc.collect()
                st = w.status()
                curve.append((round(now - t0, 1), proc.memory_info().rss / 2**20, st.frames, st.count))
                print(f"t={curve[-1][0]:7.1f}s rss={curve[-1][1]:7.1f} MB frames={st.frames} count={st.count}",
                      file=sys.stderr, flush=True)
                next_sample = now + a.sample_s
            time.sleep(0.05)
        gc.collect()
        st = w.status()
        curve.append((round(time.monotonic() - t0, 1), proc.memory_info().rss / 2**20, st.frames, st.count))
        w.stop()
        db.dispose()
    # the first samples include model/codec warm-up; growth is measured from the first
    # sample after one minute (or the first one on short runs)
    base = next((c for c in curve if c[0] >= 60), curve[0]) if a.minutes > 2 else curve[0]
    result = {"minutes": a.minutes, "frames": curve[-1][2], "count": curve[-1][3],
              "rss_start_mb": round(curve[0][1], 1), "rss_base_mb": round(base[1], 1),
              "rss_end_mb": round(curve[-1][1], 1), "rss_max_mb": round(max(c[1] for c in curve), 1),
              "growth_mb": round(curve[-1][1] - base[1], 1),
              "curve": [{"t": c[0], "rss_mb": round(c[1], 1), "frames": c[2]} for c in curve]}
    result["flat"] = result["growth_mb"] < 50
    _print_json(result)
    if a.record:
        record("rss", argv, f"the counting worker looping {a.source} for {a.minutes:g} min "
               f"({'unpaced' if a.fast else 'real time'}), every frame through engine, capture and DB", result,
               f"RSS {result['rss_start_mb']} MB cold, {result['rss_base_mb']} MB after warm-up, "
               f"{result['rss_end_mb']} MB at the end ({result['growth_mb']:+} MB); {result['frames']} frames, "
               f"{result['count']} sheets")
    return 0
