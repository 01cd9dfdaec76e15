"""The independent stacking renderer (core/synthetic/stacking.py): its ground truth agrees with
its frames, it is deterministic, its tuning and held-out sets share no seed or setting, every
resolution/frame rate of the sets writes a readable video, and ``bench count`` scores it."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from core.synthetic import stacking as st
from core.synthetic.stacking import Camera, Cycle, StackSpec, Stage, render_clip, render_frames

CLEAN = Camera(noise=0.0)          # no noise or lighting changes: frames compare exactly


def _spec(cycles, stage=None, camera=CLEAN, **kw) -> StackSpec:
    base = dict(width=320, height=240, fps=10, seed=5, lead_s=0.5, tail_s=0.8)
    base.update(kw)
    return StackSpec(cycles=cycles, stage=stage or Stage(initial=1), camera=camera, **base)


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.absdiff(a, b).max(axis=2)


def _poly_mask(shape, box_or_corners, erode: int = 0) -> np.ndarray:
    m = np.zeros(shape[:2], np.uint8)
    x0, y0, x1, y1 = box_or_corners
    cv2.rectangle(m, (x0, y0), (x1, y1), 255, -1)
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return m > 0


@pytest.mark.parametrize("finish,identical,carrier", [("painted", True, "gripper"), ("galvanised", False, "hands"),
                                                      ("brushed", True, "hands"), ("matte", True, "gripper")])
def test_truth_agrees_with_frames(finish, identical, carrier):
    """Before enter and from the stable frame on, the scene is still; in between the arm (or its
    shadow) is in view on every frame; each placement changes the top-sheet region — also for an
    identical sheet landing 2 px off (only its outline changes) — and a touch changes nothing."""
    cycles = [Cycle("sheet", carrier=carrier, offset_px=(2.0, 0.0), angle_deg=0.0), Cycle("touch", gap_s=0.5),
              Cycle("sheet", carrier=carrier, gap_s=0.5, linger_s=0.6), Cycle("hover", gap_s=0.4, pause_s=0.5)]
    frames, truth = render_frames(_spec(cycles, Stage(finish=finish, identical=identical, initial=1)))
    assert truth.frames == len(frames) and truth.expected_count == 2
    assert [e.kind for e in truth.events] == ["sheet", "hand", "sheet", "hand"]
    prev_stable = 0
    for e in truth.events:
        assert prev_stable <= e.enter_frame < e.release_frame < e.stable_frame <= truth.frames - 1
        before, after = frames[e.enter_frame - 1], frames[e.stable_frame]
        # still before the arm enters and from the stable frame until the next one enters
        for f in range(prev_stable, e.enter_frame):
            assert _diff(frames[f], before).max() == 0, (e, f)
        # the arm or its shadow is in view on every frame of the cycle
        for f in range(e.enter_frame, e.stable_frame):
            assert _diff(frames[f], after).max() > 2 or _diff(frames[f], before).max() > 2, (e, f)
        # ... and the frame before the stable one still shows some of it
        assert _diff(frames[e.stable_frame - 1], after).max() > 1
        d = _diff(before, after)
        if e.kind == "sheet":
            region = _poly_mask(d.shape, e.box)
            changed = (d > 12) & region
            assert changed.sum() > 40, (finish, e, int(changed.sum()))     # at least an outline's worth
            if identical and finish in st.SMOOTH_FINISHES and e.index > 1:
                # the hard case: the same smooth sheet 2 px off — only its outline changes
                inner = _poly_mask(d.shape, e.box, erode=8)
                assert d[inner].mean() < 2.0 and (changed & ~inner).sum() > 0.9 * changed.sum()
        else:
            assert d.max() <= 1, (e, int(d.max()))     # touch / hover: nothing on the stack changed
        prev_stable = e.stable_frame


def test_nudge_moves_the_top_sheet_but_adds_none():
    """A nudge slides the top sheet a few px: its outline changes, its smooth interior does not
    (a painted sheet), and the truth says "hand"."""
    cycles = [Cycle("nudge")]
    frames, truth = render_frames(_spec(cycles, Stage(finish="painted", initial=2, sheet_fill=0.7)))
    (e,) = truth.events
    assert e.kind == "hand" and truth.expected_count == 0
    d = _diff(frames[e.enter_frame - 1], frames[e.stable_frame])
    assert (d > 12).sum() > 20                                   # the outline moved
    spec = truth.spec
    assert spec["cycles"][0]["kind"] == "nudge"
    # interior of the sheet: unchanged apart from its faint paint grain (no new sheet texture)
    H, W = d.shape
    inner = np.zeros_like(d, bool)
    inner[H // 2 - H // 8:H // 2 + H // 8, W // 2 - W // 8:W // 2 + W // 8] = True
    assert d[inner].mean() < 2.0


def test_arm_visible_during_cycle_and_leaves_view():
    """The arm is really drawn: during the cycle many pixels differ from the still scene, the
    sheet-carrying frames show the sheet off its final place, and after stable nothing remains."""
    frames, truth = render_frames(_spec([Cycle("sheet", carrier="gripper", side="left", colour=(0, 0, 255))]))
    (e,) = truth.events
    mid = frames[(e.enter_frame + e.release_frame) // 2]
    red = (mid[..., 2] > 120) & (mid[..., 1] < 80) & (mid[..., 0] < 80)
    assert red.sum() > 100                                       # the red arm is in view
    assert not ((frames[e.stable_frame][..., 2] > 120) & (frames[e.stable_frame][..., 1] < 80)
                & (frames[e.stable_frame][..., 0] < 80)).any()


def test_fast_feeding_and_lingering():
    cycles = [Cycle("sheet", gap_s=0.1, speed=1.8, carrier="gripper") for _ in range(4)]
    cycles[1].linger_s = 1.0
    frames, truth = render_frames(_spec(cycles, fps=15))
    ev = truth.events
    idle = [(b.enter_frame - a.stable_frame) / truth.fps for a, b in zip(ev, ev[1:])]
    assert max(idle) < 1.0, idle                                  # < 1 s between one sheet and the next arm
    # the lingering arm keeps the scene unstable for its linger time after release
    assert (ev[1].stable_frame - ev[1].release_frame) / truth.fps >= 1.0
    assert truth.expected_count == 4


def test_deterministic():
    spec = _spec([Cycle("sheet"), Cycle("nudge")], camera=Camera(noise=3, flicker=0.05, shake_px=1, exposure_jumps=1))
    a, ta = render_frames(spec)
    b, tb = render_frames(spec)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert ta.events == tb.events
    spec.seed += 1
    c, _ = render_frames(spec)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


@pytest.mark.parametrize("a,b", [(a, b) for i, b in enumerate(st.SET_NAMES) for a in st.SET_NAMES[:i]])
def test_sets_are_disjoint_and_cover_the_cases(a, b):
    for quick in (False, True):
        tune, held = st.set_specs(a, quick), st.set_specs(b, quick)
        assert not set(tune) & set(held)
        assert not {s.seed for s in tune.values()} & {s.seed for s in held.values()}
        size = lambda s: (s.width, s.height, s.fps)  # noqa: E731
        assert not {size(s) for s in tune.values()} & {size(s) for s in held.values()}
        for key in ("floor", "bin"):
            assert not {getattr(s.stage, key) for s in tune.values()} & {getattr(s.stage, key) for s in held.values()}
        assert not {tuple(c) for s in tune.values() for c in s.stage.palette} \
            & {tuple(c) for s in held.values() for c in s.stage.palette}
        paints = lambda ss: {s.stage.paint for s in ss.values() if s.stage.finish == "painted"}  # noqa: E731
        assert not paints(tune) & paints(held)
    full = st.set_specs(b)
    kinds = {c.kind for s in full.values() for c in s.cycles}
    assert kinds == {"sheet", "touch", "nudge", "hover", "empty"}
    finishes = {s.stage.finish for s in full.values()}
    assert finishes & set(st.SMOOTH_FINISHES) and finishes & set(st.TEXTURED_FINISHES)
    assert {s.width for s in full.values()} >= {"heldout": {640, 960, 1280, 1920}, "heldout2": {720, 1280, 1600},
                                                "heldout3": {720, 768, 1280, 1920}, "heldout4": {704, 896, 1280, 1920},
                                                "heldout5": {672, 768, 1280, 1920},
                                                "heldout6": {720, 800, 1280, 1920},
                                                "heldout7": {640, 864, 1280, 1920},
                                                "heldout8": {704, 800, 1280, 1920},
                                                "heldout9": {736, 832, 1280, 1920},
                                                "heldout10": {752, 848, 1280, 1920},
                                                "heldout11": {688, 912, 1280, 1920},
                                                "heldout12": {656, 976, 1280, 1920},
                                                "heldout13": {624, 944, 1280, 1920},
                                                "heldout14": {592, 880, 1280, 1920},
                                                "heldout15": {576, 912, 1280, 1920},
                                                "heldout16": {608, 960, 1280, 1920},
                                                "heldout17": {560, 1024, 1280, 1920},
                                                "heldout18": {544, 1072, 1280, 1920},
                                                "heldout19": {528, 1104, 1280, 1920},
                                                "heldout20": {512, 1136, 1280, 1920},
                                                "heldout21": {496, 1216, 1280, 1920},
                                                "heldout22": {480, 1248, 1280, 1920},
                                                "heldout23": {464, 1312, 1280, 1920},
                                                "heldout24": {448, 1376, 1280, 1920},
                                                "heldout25": {432, 1440, 1280, 1920},
                                                "heldout26": {416, 1472, 1280, 1920},
                                                "heldout27": {400, 1504, 1280, 1920},
                                                "heldout28": {384, 1696, 1280, 1920}}[b]
    assert min(s.fps for s in full.values()) >= 10 and max(s.fps for s in full.values()) <= 30
    sheets = sum(sum(c.kind == "sheet" for c in s.cycles) for s in full.values())
    assert 60 <= sheets <= 140 and 10 <= len(full) <= (15 if b in ("heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16", "heldout17", "heldout18", "heldout19", "heldout20", "heldout21", "heldout22", "heldout23", "heldout24", "heldout25", "heldout26", "heldout27", "heldout28") else 12)
    assert any(c.linger_s > 0 for s in full.values() for c in s.cycles)
    assert any(s.stage.identical for s in full.values()) and any(s.stage.sheet_fill > 0.9 for s in full.values())
    assert any(s.camera.codec == "h264" for s in full.values()) and any(s.camera.shake_px for s in full.values())
    with pytest.raises(ValueError):
        st.set_specs("test")


def _sizes():
    out = set()
    for which in st.SET_NAMES:
        for s in st.set_specs(which).values():
            out.add((s.width, s.height, s.fps, s.camera.codec))
    return sorted(out)


@pytest.mark.parametrize("w,h,fps,codec", _sizes())
def test_every_size_and_rate_writes_a_readable_video(tmp_path, w, h, fps, codec):
    spec = StackSpec(width=w, height=h, fps=fps, seed=1, cycles=[], lead_s=0.25, tail_s=0.25,
                     camera=Camera(noise=2, codec=codec))
    truth = render_clip(spec, tmp_path / "c.mp4")
    cap = cv2.VideoCapture(str(tmp_path / "c.mp4"))
    n = 0
    while True:
        ok, fr = cap.read()
        if not ok:
            break
        assert fr.shape == (h, w, 3)
        n += 1
    got_fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert n == truth.frames == math.ceil(0.5 * fps - 1e-9)
    assert abs(got_fps - fps) < 0.01


def test_truth_is_the_benchmark_format_and_scores(tmp_path):
    """The truth JSON loads as the project's ClipTruth and ``bench count``'s scorer accepts it:
    a count at every stable frame of a sheet event is exact; one during a touch is false."""
    from core.bench.count import score
    from core.synthetic.clips import ClipTruth
    spec = _spec([Cycle("sheet"), Cycle("touch", gap_s=0.4), Cycle("sheet", gap_s=0.4)])
    truth = render_clip(spec, tmp_path / "a.mp4")
    truth.save(tmp_path / "a.json")
    ct = ClipTruth.load(tmp_path / "a.json")
    assert ct.expected_count == 2 and [e.kind for e in ct.events] == ["sheet", "hand", "sheet"]
    assert set(json.loads((tmp_path / "a.json").read_text())) == set(ClipTruth.__dataclass_fields__)

    class C:
        def __init__(self, frame):
            self.frame = frame

    good = [C(e.stable_frame + 2) for e in ct.sheet_events]
    assert score(ct, good)[:2] == (0, 0)
    bad = good[:1] + [C(ct.events[1].stable_frame + 1)]
    fp, missed, _ = score(ct, bad)
    assert (fp, missed) == (1, 1)


def test_cli_synth_and_bench_sets(tmp_path, data_dir, capsys):
    """``synth --renderer stacking`` writes a set with truth; ``bench count --renderer stacking
    --set both`` prints the two sets separately (a single tiny clip each via --only)."""
    from core.__main__ import main
    assert main(["synth", "--renderer", "stacking", "--set", "heldout", "--quick", "--only", "h_matte_fast",
                 "--out", str(tmp_path / "o")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["name"] == "h_matte_fast" and out[0]["expected_count"] == 4
    assert (tmp_path / "o" / "h_matte_fast.json").exists()
    assert main(["synth", "--renderer", "nope", "--out", str(tmp_path)]) == 2
    capsys.readouterr()
    rc = main(["bench", "count", "--quick", "--renderer", "stacking", "--set", "both", "--repeat", "1", "--min-cpu", "0", "--no-peer",
               "--only", "t_matte_fast,h_matte_fast", "--json"])
    assert rc == 0
    s = json.loads(capsys.readouterr().out)["sets"]
    assert set(s) == {"stacking/tune", "stacking/heldout"}
    for v in s.values():
        assert v["clips"] == 1 and v["sheets_expected"] == 4 and "p95" in v["latency_ms"]
        assert v["throughput_ratio"]["min"] > 0
    rc = main(["bench", "count", "--quick", "--renderer", "stacking", "--set", "heldout", "--repeat", "1", "--min-cpu", "0",
               "--no-peer", "--only", "h_matte_fast"])
    text = capsys.readouterr().out
    assert rc == 0 and "HELD-OUT" in text and "stacking/heldout" in text and "p50/p95/max" in text
    rc = main(["bench", "count", "--quick", "--renderer", "stacking", "--set", "heldout2", "--repeat", "1", "--min-cpu", "0",
               "--no-peer", "--only", "h2_matte_fast", "--json"])
    s = json.loads(capsys.readouterr().out)["sets"]
    assert rc == 0 and set(s) == {"stacking/heldout2"} and s["stacking/heldout2"]["sheets_expected"] == 4


def test_clips_renderer_heldout_set_differs_from_its_tuning_set():
    """``bench count --renderer clips --set heldout``: the project renderer's held-out clips use
    other seeds and other size/frame-rate combinations than the set the engine was tuned on."""
    from core.bench.count import set_specs
    for quick in (False, True):
        tune, held = set_specs("clips", "tune", quick), set_specs("clips", "heldout", quick)
        assert held and not set(tune) & set(held)
        assert not {s.seed for s in tune.values()} & {s.seed for s in held.values()}
        assert not {(s.width, s.height, s.fps) for s in tune.values()} & {(s.width, s.height, s.fps)
                                                                          for s in held.values()}
    assert set(set_specs("stacking", "heldout")) == set(st.set_specs("heldout"))


def test_second_heldout_set_is_new_for_both_renderers():
    """``--set heldout2`` (added after the first held-out set had been looked at): seeds and
    size/frame-rate combinations that neither the tuning set nor the first held-out set use,
    for the project renderer and the stacking one; ``--set all`` = the three sets."""
    from core.bench.count import SETS, set_specs
    assert SETS == ("tune", "heldout", "heldout2", "heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16", "heldout17", "heldout18", "heldout19", "heldout20", "heldout21", "heldout22", "heldout23", "heldout24", "heldout25", "heldout26", "heldout27", "heldout28")
    for r in ("clips", "stacking"):
        for quick in (False, True):
            new = set_specs(r, "heldout2", quick)
            assert new
            for old in ("tune", "heldout"):
                o = set_specs(r, old, quick)
                assert not set(o) & set(new)
                assert not {s.seed for s in o.values()} & {s.seed for s in new.values()}
                assert not {(s.width, s.height, s.fps) for s in o.values()} & {(s.width, s.height, s.fps)
                                                                               for s in new.values()}


@pytest.mark.parametrize("which", ["heldout3", "heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9", "heldout10", "heldout11", "heldout12", "heldout13", "heldout14", "heldout15", "heldout16", "heldout17", "heldout18", "heldout19", "heldout20", "heldout21", "heldout22", "heldout23", "heldout24", "heldout25", "heldout26", "heldout27", "heldout28"])
def test_later_heldout_sets_are_new_for_both_renderers(which):
    """``--set heldout3`` (fixed before a final run of issue 12, after heldout and heldout2 had
    been looked at) and ``heldout4`` (fixed after heldout3 had been looked at): seeds and
    size/frame-rate combinations no other set uses, for both renderers, with 720p clips for
    the throughput bar."""
    from core.bench.count import SETS, set_specs
    for r in ("clips", "stacking"):
        for quick in (False, True):
            new = set_specs(r, which, quick)
            assert new
            for old in [w for w in SETS if w != which]:
                o = set_specs(r, old, quick)
                assert not set(o) & set(new)
                assert not {s.seed for s in o.values()} & {s.seed for s in new.values()}
                assert not {(s.width, s.height, s.fps) for s in o.values()} & {(s.width, s.height, s.fps)
                                                                               for s in new.values()}
        assert any((s.width, s.height) == (1280, 720) for s in set_specs(r, which).values())


def test_a_nudge_of_an_empty_bin_renders():
    """A random corpus can draw a nudge (or touch) before the first sheet: nothing moves, the
    clip still renders with its truth (it crashed with an IndexError)."""
    from core.synthetic.stacking import Cycle, StackSpec, Stage, render_frames
    spec = StackSpec(width=320, height=240, fps=15, seed=3, cycles=[Cycle("nudge"), Cycle("sheet", gap_s=0.5)],
                     lead_s=0.5, tail_s=1.0, stage=Stage(initial=0))
    frames, truth = render_frames(spec)
    assert len(frames) == truth.frames and truth.expected_count == 1


def test_floor_and_bin_names_are_each_defined_once():
    """A name defined twice in ``FLOORS`` or ``BINS`` silently replaces the first look, and
    with it every earlier set that uses it (a held-out set must never change once seen)."""
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(st))
    seen = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") in ("FLOORS", "BINS") for t in node.targets):
            keys = [k.value for k in node.value.keys]
            assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)
            seen += 1
    assert seen == 2


def test_the_hard_training_corpus_leans_on_the_hardest_cases():
    """``train_specs(hard=True)``: far more identical, smooth, near-aligned sheets and floor-
    coloured paint than the default corpus, which it leaves exactly as it was (the same draws:
    clips rendered before it existed stay valid)."""
    from core.synthetic.stacking import SMOOTH_FINISHES, train_specs
    plain, hard = train_specs(40, seed0=90000), train_specs(40, seed0=90000, hard=True)
    assert train_specs(40, seed0=90000) == plain
    assert [s.seed for s in plain.values()] == [s.seed for s in hard.values()]
    assert [(s.width, s.height, s.fps, s.stage.floor) for s in plain.values()] == \
        [(s.width, s.height, s.fps, s.stage.floor) for s in hard.values()]

    def share(specs, f):
        return sum(map(f, specs.values())) / len(specs)

    def near(s):
        sheets = [c for c in s.cycles if c.kind == "sheet"]
        return sum(c.offset_px is not None for c in sheets) / max(1, len(sheets))

    def floor_paint(s):
        fb = [float(v) for v in s.stage.floor[5:].split(",")[:3]]
        return s.stage.finish == "painted" and max(abs(a - b) for a, b in zip(fb, s.stage.paint)) <= 0.07

    assert share(hard, lambda s: s.stage.identical) > share(plain, lambda s: s.stage.identical) + 0.2
    assert share(hard, lambda s: s.stage.finish in SMOOTH_FINISHES) > 0.7
    assert share(hard, near) > 2 * share(plain, near)
    assert share(hard, floor_paint) > 0.2 and share(plain, floor_paint) < 0.1
