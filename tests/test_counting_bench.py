"""``python -m core bench count`` machinery: clip cache, scoring, summary (one tiny clip)."""
from __future__ import annotations

import json
from pathlib import Path

from core.bench.count import ClipResult, bench_count, score, summary
from core.synthetic.clips import ClipTruth, EventTruth


def test_bench_quick_one_clip(data_dir, capsys):
    rc = bench_count(["--quick", "--only", "first_sheet_240p", "--repeat", "1", "--min-cpu", "0", "--no-peer", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)
    assert s["clips"] == 1 and s["exact_clips"] == 1 and s["false_counts"] == 0 and s["missed"] == 0
    assert 0 < s["latency_ms"]["max"] <= 500
    assert s["throughput_ratio"]["min"] > 0
    assert s["throughput_ratio"]["720p_planes_min"] is None     # no 720p clip in this run
    assert (data_dir / "cache" / "bench" / "first_sheet_240p.mp4").exists()      # cached for the next run
    assert bench_count(["--quick", "--only", "nope"]) == 2


def test_score_false_and_missed():
    ev = lambda k, e, r, s: EventTruth(kind=k, index=0, enter_frame=e, release_frame=r, stable_frame=s)  # noqa: E731
    truth = ClipTruth(path="x", width=1, height=1, fps=10.0, frames=100, expected_count=2,
                      events=[ev("sheet", 5, 10, 15), ev("hand", 30, 35, 40), ev("sheet", 50, 55, 60)])

    class C:
        def __init__(self, frame):
            self.frame = frame

    fp, missed, lat = score(truth, [C(17), C(42)])          # one right, one on the hand cycle
    assert (fp, missed) == (1, 1) and lat == [200.0]
    r = ClipResult("a", "1x1", 10, 100, 2, 2, fp, missed, lat, 100.0, 90.0, None, 100.0, 85.0)
    s = summary([r])
    assert s["exact_clips"] == 0 and s["accuracy"] == 0.0 and abs(r.ratio - 0.85) < 1e-9
    # the stricter baseline: decoding that converts nothing (PyAV), same run
    hd = ClipResult("b", "1280x720", 10, 100, 0, 0, 0, 0, [], 100.0, 90.0, None, 100.0, 85.0, None, 170.0)
    t = summary([hd])["throughput_ratio"]
    assert abs(hd.planes_ratio - 0.5) < 1e-9 and t["720p_planes_min"] == hd.planes_ratio and t["720p_min"] == 0.85


def test_peer_summary_compares_accuracy_and_speed():
    from core.bench.count import ClipResult, _peer_summary
    mk = lambda name, exp, got, peer, cnt_fps, peer_fps: ClipResult(  # noqa: E731
        name, "640x480", 30.0, 300, exp, got, 0, 0, [200.0], 900.0, cnt_fps, peer, 0.0, 0.0, peer_fps)
    s = _peer_summary([mk("a", 3, 3, 1, 800.0, 40.0), mk("b", 2, 2, 2, 600.0, 30.0)])
    assert s["exact_clips"] == 1 and s["abs_error"] == 2 and s["engine_exact_clips"] == 2
    assert s["speed_ratio_engine_over_peer"] == 20.0
    assert _peer_summary([mk("c", 1, 1, None, 800.0, None)]) is None


def test_cuefit_labels_the_first_decision_of_each_sheet_window():
    """The refit tool's labels follow ``bench count``'s scorer: the first decision at or after
    a sheet's stable frame (before the next arm enters) is the sheet; a touch's decision and
    a second decision in the same window are not."""
    from types import SimpleNamespace as N

    from core.bench.cuefit import label
    ev = [N(kind="sheet", enter_frame=0, stable_frame=10), N(kind="hand", enter_frame=20, stable_frame=30),
          N(kind="sheet", enter_frame=40, stable_frame=50)]
    truth = N(events=ev, sheet_events=[ev[0], ev[2]])
    decs = [N(frame=f) for f in (5, 12, 15, 33, 52)]
    assert label(truth, decs) == [0, 1, 0, 0, 1]


def test_short_clips_get_more_alternating_runs(data_dir, monkeypatch):
    """``--min-cpu``: decoding and counting alternate until counting ran that much CPU (at most
    MAX_REPEAT runs), so one lucky or unlucky ~0.25 s run no longer fixes a clip's ratio."""
    from core.bench import count as B
    calls = {"decode": 0, "count": 0}
    dec, cnt = B._decode_fps, B._count

    def counted(name, fn):
        def f(*a):
            calls[name] += 1
            return fn(*a)
        return f
    monkeypatch.setattr(B, "_decode_fps", counted("decode", dec))
    monkeypatch.setattr(B, "_count", counted("count", cnt))
    specs = {k: v for k, v in B.quick_specs().items() if k == "first_sheet_240p"}
    folder = data_dir / "cache" / "bench"
    B.run(specs, folder, repeat=1, with_peer=False, min_cpu_s=0.0)
    assert calls == {"decode": 1, "count": 1}
    B.run(specs, folder, repeat=1, with_peer=False, min_cpu_s=1e6)
    assert calls == {"decode": 1 + B.MAX_REPEAT, "count": 1 + B.MAX_REPEAT}


def test_passes_time_every_clip_again_after_the_whole_list_and_keep_the_best(data_dir, monkeypatch):
    """``--passes 2``: every clip is timed once more after the whole list was, and each keeps
    the best figures of all its runs; the count itself comes from the first run. The timing
    functions are replaced by scripted ones here (a machine's speed cannot be set in a test)."""
    from types import SimpleNamespace as N

    from core.bench import count as B
    specs = {k: v for k, v in B.quick_specs().items() if k in ("first_sheet_240p", "hand_only_240p")}
    order, speeds = [], iter([100.0, 300.0, 200.0, 150.0])     # CPU frames/s of counting, run by run
    runs = iter(range(100))

    def decode(path):
        order.append(("decode", Path(path).stem))
        return 1000.0, 400.0

    def count(path):
        order.append(("count", Path(path).stem))
        i = next(runs)
        return N(frames=10, count=i, events=[]), 500.0, next(speeds)
    monkeypatch.setattr(B, "_decode_fps", decode)
    monkeypatch.setattr(B, "_decode_planes_fps", lambda path: 800.0)
    monkeypatch.setattr(B, "_count", count)
    res = B.run(specs, data_dir / "cache" / "bench", repeat=1, with_peer=False, passes=2)
    names = list(specs)
    assert [n for kind, n in order if kind == "count"] == names + names      # the whole list, then again
    got = {r.name: r for r in res}
    assert got[names[0]].count_cpu_fps == 200.0 and got[names[1]].count_cpu_fps == 300.0   # best of both passes
    assert got[names[0]].counted == 0 and got[names[1]].counted == 1       # the first run's count
    assert got[names[0]].ratio == 200.0 / 400.0


def test_min_cpu_720p_gives_the_720p_clips_more_runs_and_the_others_none(data_dir, monkeypatch):
    """``--min-cpu-720p``: the 1280x720 clips (they carry the throughput bar) are timed until
    counting ran that much CPU; the other clips keep ``--min-cpu``. Scripted timings (a
    machine's speed cannot be set in a test); one quick clip's truth stands in for a 720p one."""
    from types import SimpleNamespace as N

    from core.bench import count as B
    specs = {k: v for k, v in B.quick_specs().items() if k in ("first_sheet_240p", "hand_only_240p")}
    runs: dict[str, int] = {}
    monkeypatch.setattr(B, "_decode_fps", lambda path: (1000.0, 400.0))
    monkeypatch.setattr(B, "_decode_planes_fps", lambda path: 800.0)

    def count(path):
        runs[Path(path).stem] = runs.get(Path(path).stem, 0) + 1
        return N(frames=10, count=0, events=[]), 500.0, 100.0       # 0.1 s of CPU a run
    monkeypatch.setattr(B, "_count", count)
    t = B._Timing(specs, data_dir / "cache" / "bench")
    big, small = list(specs)
    t.truths[big].width, t.truths[big].height = 1280, 720
    t.time_pass(1, 0.0, 0, min_cpu_720p_s=0.35)
    assert runs == {big: 4, small: 1}
    runs.clear()
    t.time_pass(1, 0.0, 1)                      # not given: every clip as --min-cpu says
    assert runs == {big: 1, small: 1}


def test_decisions_are_recorded_and_two_recordings_compared(data_dir, capsys):
    """``bench decisions``: every decision of the chosen clips recorded (verdict, p, box, cues) with
    the default configuration, and two recordings compared decision by decision: the same code
    gives the same decisions; a changed verdict is reported and the command exits 1. The fresh
    held-out set is never recorded."""
    import pytest

    from core.bench.count import SETS
    from core.bench.decisions import bench_decisions, compare, record
    a = data_dir / "a.jsonl"
    n = record(a, ("clips",), ("tune",), quick=True, only={"fast_feed_240p", "hand_only_240p"})
    rows = [json.loads(x) for x in a.read_text().splitlines()]
    assert n == 2 and {r["clip"] for r in rows} == {"clips/tune/fast_feed_240p", "clips/tune/hand_only_240p"}
    feed = next(r for r in rows if r["clip"].endswith("fast_feed_240p"))
    assert len(feed["events"]) >= 3 and sum(d[0] for d in feed["decisions"]) == len(feed["events"])
    assert {"tex_area", "outline", "same_surface"} <= set(feed["decisions"][0][3])
    b = data_dir / "b.jsonl"
    record(b, ("clips",), ("tune",), quick=True, only={"fast_feed_240p", "hand_only_240p"})
    same = compare(a, b)
    assert same.same_decisions and same.clips == 2 and same.boxes_differ == 0
    assert all(d == 0 for d, _c in same.max_cue_diff.values())
    feed["decisions"][0][0] = not feed["decisions"][0][0]
    b.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    capsys.readouterr()
    assert bench_decisions(["compare", str(a), str(b)]) == 1
    assert "verdict differs: clips/tune/fast_feed_240p #1" in capsys.readouterr().out
    with pytest.raises(ValueError):
        record(data_dir / "c.jsonl", ("clips",), (SETS[-1],), quick=True)
    with pytest.raises(SystemExit):
        bench_decisions(["compare", str(a), str(data_dir / "missing.jsonl")])
