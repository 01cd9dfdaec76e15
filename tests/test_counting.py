"""Counting engine on the project's own generated clips: exact counts, no false counts,
every count within 500 ms (video time) of the scene becoming stable again.

Clips are rendered once per test session at 320×240 / 15 fps (H.264, like a camera) — the
bench runs the same set at 640×480 and 720p.
"""
from __future__ import annotations

import numpy as np
import pytest

from core.counting.engine import (
    Change,
    CountingEngine,
    DetectorVerifier,
    EngineState,
    ModelFreeVerifier,
    Verdict,
    make_verifier,
)
from core.live.count import count_video
from core.platform.settings import CountingSettings
from core.synthetic.clips import ClipTruth, SceneConfig, presets, render_clip

from live_clips import read_frames

LATENCY_S = 0.5


def check_counts(truth: ClipTruth, events) -> None:
    """Exact count; each count matches one distinct sheet event, decided after its scene
    became stable again and within 500 ms of it; hand-only cycles are never counted."""
    assert len(events) == truth.expected_count, (
        f"{truth.path}: counted {len(events)} at frames {[e.frame for e in events]}, expected "
        f"{truth.expected_count} (stable frames {[e.stable_frame for e in truth.sheet_events]})")
    sheets = truth.sheet_events
    for ev, gt in zip(events, sheets):
        lat = (ev.frame - gt.stable_frame) / truth.fps
        assert 0 <= lat <= LATENCY_S, f"count {ev.index} at frame {ev.frame}: latency {lat * 1000:.0f} ms " \
                                      f"after the stable frame {gt.stable_frame}"
        assert ev.box is not None and ev.image.size > 0
        # the reported box covers the new sheet
        bx, sb = ev.box, gt.box
        ix = max(0, min(bx[2], sb[2]) - max(bx[0], sb[0]))
        iy = max(0, min(bx[3], sb[3]) - max(bx[1], sb[1]))
        assert ix * iy > 0.5 * (sb[2] - sb[0]) * (sb[3] - sb[1])


@pytest.fixture(scope="session")
def clip_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return {name: render_clip(spec, d / f"{name}.mp4") for name, spec in presets(320, 240, 15, seed=0).items()}


CASES = [
    ("first_sheet", "must count: the first sheet into an empty bin"),
    ("exact_on_top", "must count: sheets laid exactly on the previous one (0–3 px, same finish)"),
    ("fast_feed", "must count: fast feeding, 0.4 s of stillness between sheets"),
    ("hand_only", "must not count: arm reaches in, touches the stack, leaves with nothing"),
    ("arm_pause", "must not count: the arm stops in view 1–2 s on its way out"),
    ("lighting", "must not count: light drift, gradient, mains flicker, auto-exposure jumps"),
    ("shake_noise", "must not count: camera shake ±2 px, sensor noise, JPEG artifacts"),
    ("failing_stream", "must not count: black, frozen and dropped frames"),
    ("idle", "must not count: idle with drift and flicker"),
    ("painted", "must count: painted finish (weakest texture) exactly on top"),
    ("galvanized", "must count: galvanized spangle on tiles"),
    ("mill_scale", "must count: mill-scale sheets on a pallet"),
]


@pytest.mark.parametrize("name,case", CASES, ids=[c[0] for c in CASES])
def test_clip_counted_exactly(clip_set, name, case):
    truth = clip_set[name]
    res = count_video(truth.path, keep_images=True)
    assert res.frames == truth.frames
    check_counts(truth, res.events)


def test_every_nuisance_and_case_is_in_the_set(clip_set):
    specs = {n: t.spec for n, t in clip_set.items()}
    nz = [s["nuisances"] for s in specs.values()]
    assert any(n["shake_px"] >= 2 for n in nz) and any(n["jpeg_quality"] for n in nz)
    assert any(n["auto_exposure"] for n in nz) and any(n["flicker"] for n in nz) and any(n["light_drift"] for n in nz)
    assert any(n["black_frames"] and n["frozen_runs"] and n["dropped_frames"] for n in nz)
    fails = clip_set["failing_stream"]
    assert fails.black_frames and fails.frozen_frames and fails.dropped_scene_frames
    assert any(e.kind == "hand" for t in clip_set.values() for e in t.events)
    assert any(e.pause_s >= 1.0 for t in clip_set.values() for e in t.events)


@pytest.mark.slow
def test_bigger_sizes_and_30fps(tmp_path):
    """The same engine at 640×480/30 fps and 1280×720/25 fps (a few cases)."""
    for (w, h, fps), names in {(640, 480, 30): ["fast_feed", "hand_only"], (1280, 720, 25): ["shake_noise"]}.items():
        ps = presets(w, h, fps, seed=3)
        for n in names:
            truth = render_clip(ps[n], tmp_path / f"{n}_{w}.mp4")
            check_counts(truth, count_video(truth.path, keep_images=True).events)


# --------------------------------------------------------------------------- engine units
def _frames(truth: ClipTruth):
    return read_frames(truth.path)


def test_dropped_frames_handled_by_timestamps(clip_set):
    """A live stream that drops frames: the engine gets real timestamps with gaps."""
    truth = clip_set["fast_feed"]
    frames = _frames(truth)
    eng = CountingEngine(CountingSettings())
    events = []
    rng = np.random.default_rng(5)
    for i, f in enumerate(frames):
        if 0 < i and rng.random() < 0.15 and i not in {e.stable_frame + k for e in truth.events for k in range(6)}:
            continue  # dropped: never delivered
        ev = eng.update(f, i, i / truth.fps)
        if ev:
            events.append(ev)
    check_counts(truth, events)


def test_black_and_frozen_frames_ignored(clip_set):
    """Black frames never advance anything; a long freeze while the arm is in view never
    produces a decision, and repeated timestamps are ignored."""
    truth = clip_set["hand_only"]
    frames = _frames(truth)
    sheet = truth.sheet_events[0]
    eng = CountingEngine(CountingSettings())
    events = []
    t = 0.0
    for i, f in enumerate(frames):
        t = i / truth.fps
        if i == sheet.release_frame:
            # 3 s of the stream repeating the frame with the arm at the stack
            for k in range(45):
                assert eng.update(f, i, t + k / truth.fps * 0.0) is None  # same timestamp: ignored
            for k in range(10):
                assert eng.update(np.zeros_like(f), i, t) is None        # black
        if i % 7 == 3:
            assert eng.update(np.zeros_like(f), i, t) is None
        ev = eng.update(f, i, t)
        if ev:
            events.append(ev)
    assert eng.frames_ignored > 10
    check_counts(truth, events)


def test_frozen_stream_with_arm_in_view_never_decides(clip_set):
    truth = clip_set["arm_pause"]
    frames = _frames(truth)
    ev0 = truth.events[0]
    eng = CountingEngine(CountingSettings())
    for i in range(ev0.release_frame + 1):
        eng.update(frames[i], i, i / truth.fps)
    # the stream freezes on a frame with the arm over the stack for 5 s (advancing clock)
    f = frames[ev0.release_frame]
    for k in range(1, 75):
        assert eng.update(f, ev0.release_frame, ev0.release_frame / truth.fps + k / 15) is None
    assert eng.state in (EngineState.OCCLUDED, EngineState.MOTION)
    assert eng.count == 0


def test_roi_and_live_settings_keep_background(clip_set):
    truth = clip_set["exact_on_top"]
    frames = _frames(truth)
    box = truth.sheet_events[0].box
    roi = [box[0] - 30, box[1] - 30, box[2] + 30, box[3] + 30]
    cfg = CountingSettings(roi=roi)
    eng = CountingEngine(cfg)
    events = []
    for i, f in enumerate(frames):
        if i == 5:  # live update mid-stream: thresholds change, background and count stay
            eng.apply_settings(CountingSettings(roi=roi, motion_sensitivity=0.6))
        ev = eng.update(f, i, i / truth.fps)
        if ev:
            events.append(ev)
    check_counts(truth, events)
    assert eng.snapshot().count == 3 and eng.snapshot().last_box is not None


def test_mask_excludes_area(clip_set, tmp_path):
    """A mask that blanks the stack: nothing can be counted there. The mask covers everything
    that differs between the first and the last frame (the sheet, its soft shadow and the
    light it reflects reach well beyond its box): the arm that brought it still crosses the
    counted area, which alone must not count."""
    import cv2
    truth = clip_set["first_sheet"]
    frames = _frames(truth)
    changed = (cv2.absdiff(frames[0], frames[-1]).max(axis=2) > 6).astype(np.uint8)
    changed = cv2.dilate(changed, np.ones((21, 21), np.uint8))
    m = np.where(changed > 0, 0, 255).astype(np.uint8)
    b = truth.sheet_events[0].box
    assert (m[b[1]:b[3], b[0]:b[2]] == 0).all() and (m == 255).mean() > 0.2
    p = tmp_path / "mask.png"
    cv2.imwrite(str(p), m)
    assert count_video(truth.path, CountingSettings(mask_path=str(p))).count == 0
    assert count_video(truth.path, CountingSettings()).count == 1


def test_snapshot_and_reset(clip_set):
    truth = clip_set["first_sheet"]
    eng = CountingEngine()
    for i, f in enumerate(_frames(truth)):
        eng.update(f, i, i / truth.fps)
        if i == truth.events[0].release_frame:
            s = eng.snapshot()
            assert s.state in (EngineState.MOTION, EngineState.OCCLUDED) and s.rim > 0
    s = eng.snapshot()
    assert s.count == 1 and s.state == EngineState.STABLE and s.frames_seen == truth.frames
    assert "new surface" in s.last_reason
    eng.reset()
    assert eng.count == 0 and eng.snapshot().frames_seen == 0


def test_verifier_seam_detector_and_failures(clip_set):
    """DetectorVerifier combines a detector (a stand-in function here: the trained YOLO
    model arrives with issue 4) with the model-free 'top really changed' check."""
    truth = clip_set["hand_only"]
    calls = []

    def detect_sheet(img):
        calls.append(img.shape)
        return [(10, 10, 200, 150, 0.9)]

    res = count_video(truth.path, verifier=DetectorVerifier(detect_sheet, 0.5))
    assert res.count == 1                  # the hand-only cycles fail the texture check
    assert 0 < len(calls) <= 2             # detector runs on decision frames only, never per frame

    res = count_video(truth.path, verifier=DetectorVerifier(lambda img: [(0, 0, 5, 5, 0.2)], 0.5))
    assert res.count == 0                  # texture changed but no confident metal_sheet

    def broken(img):
        raise RuntimeError("CUDA out of memory")
    assert count_video(truth.path, verifier=DetectorVerifier(broken, 0.5)).count == 1  # falls back

    class Exploding:
        name = "exploding"

        def verify(self, before, after, change):
            raise ValueError("bug")
    assert count_video(truth.path, verifier=Exploding()).count == 0   # loop survives, no count

    assert isinstance(make_verifier(CountingSettings(verifier="model_free"), detect_sheet), ModelFreeVerifier)
    # issue 12: the detector is opt-in ("auto"/"detector"); the default is model-free everywhere
    assert isinstance(make_verifier(CountingSettings(verifier="auto"), detect_sheet), DetectorVerifier)
    assert isinstance(make_verifier(CountingSettings(), detect_sheet), ModelFreeVerifier)
    assert isinstance(make_verifier(CountingSettings(), None), ModelFreeVerifier)


def test_model_free_verifier_directly():
    """New physical sheet (same finish, 0 px offset) vs the same sheet re-lit and shifted."""
    from core.synthetic.clips import StackScene, sheet_texture
    rng = np.random.default_rng(3)
    sc = StackScene(rng, 320, 240, SceneConfig(finish="brushed", initial_sheets=0), pad=0)
    sc.place(sc.new_sheet())
    before = sc.canvas.copy()
    import cv2
    relit = cv2.convertScaleAbs(np.roll(before, 2, axis=1), alpha=1.25, beta=-10)
    s2 = sc.new_sheet((0, 0))
    sc.place(s2)
    after = sc.canvas.copy()
    v = ModelFreeVerifier()
    # what the engine saw during each cycle (issue 12 cues): a sheet carried in vs a bare hand
    ch = Change(roi=[0, 0, 320, 240], carried=0.2, swept=0.4, swept_edges=0.25, came_not_left=0.2, entered_wider=0.4)
    assert v.verify(before, after, ch).accept
    no = v.verify(before, relit, Change(roi=[0, 0, 320, 240], carried=0.06, swept=0.1, swept_edges=0.06))
    assert not no.accept and isinstance(no, Verdict)
    assert sheet_texture is not None


def test_something_left_at_the_rim_does_not_block_counting(clip_set):
    """A box put down in the entry zone for good: after a while the engine re-learns the
    scene (no count for it) and counts the next sheet again."""
    import cv2
    truth = clip_set["first_sheet"]
    frames = _frames(truth)
    eng = CountingEngine()
    t = 0.0
    for i in range(truth.events[0].enter_frame - 2):
        t = i / truth.fps
        eng.update(frames[i], i, t)
    base = frames[truth.events[0].enter_frame - 3].copy()
    boxed = base.copy()
    cv2.rectangle(boxed, (0, 0), (60, 60), (20, 20, 200), -1)
    n = 0
    for k in range(int(13 * truth.fps)):          # 13 s with the box at the rim
        t += 1 / truth.fps
        n += eng.update(boxed, 1000 + k, t) is not None
    assert n == 0 and eng.state == EngineState.STABLE
    assert "rim occupied" in eng.last_reason
    events = []
    for i in range(truth.events[0].enter_frame - 2, len(frames)):   # the sheet arrives, box still there
        f = frames[i].copy()
        cv2.rectangle(f, (0, 0), (60, 60), (20, 20, 200), -1)
        t += 1 / truth.fps
        ev = eng.update(f, i, t)
        if ev:
            events.append(ev)
    assert len(events) == 1


def test_detector_verifier_with_the_trained_sheet_model(clip_set, tmp_path):
    """The real trained ``metal_sheet`` detector (issue 4) through the verifier seam: still
    exact on the hand-only clip; skipped when the weights are not in this checkout."""
    from pathlib import Path

    from core.platform.paths import PROJECT_ROOT, Paths
    weights = Path(PROJECT_ROOT) / "weights"
    assert (weights / "metal_sheet.pt").exists() or (weights / "metal_sheet.onnx").exists(), "shipped weights missing"
    from core.models import manager as models
    fn = models.load_sheet_detect_fn(Paths(data=tmp_path / "data", weights=weights))
    assert fn is not None, "the shipped sheet model must load"
    for name in ("hand_only", "exact_on_top"):
        truth = clip_set[name]
        res = count_video(truth.path, verifier=DetectorVerifier(fn, 0.5), keep_images=True)
        check_counts(truth, res.events)
        assert all("metal_sheet" in e.reason for e in res.events)


# --------------------------------------------------------------------------- issue 12: cues
def _flat_scene(shade: float = 150.0, off: tuple[int, int] = (0, 0), h: int = 240, w: int = 320):
    """A smooth (texture-free) sheet on a floor: what painted / galvanised stock looks like."""
    import cv2
    img = np.full((h, w, 3), 70.0, np.float32)
    img += np.random.default_rng(1).normal(0, 1.5, (h, w, 1))
    x, y = 80 + off[0], 60 + off[1]
    img[y:y + 120, x:x + 160] = shade
    img[y:y + 120, x:x + 2] *= 0.8        # the cut edge shows as a thin rim
    img[y:y + 120, x + 158:x + 160] *= 0.8
    img[y:y + 2, x:x + 160] *= 0.8
    img[y + 118:y + 120, x:x + 160] *= 0.8
    return cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 0.7)


def test_cues_see_a_smooth_sheet_by_tone_and_outline_not_texture():
    """A smooth sheet of another shade laid 3 px off: no texture change, yet tone and
    outline cues see it; the verifier counts it. The same frame re-exposed (+20 %) does not."""
    import cv2

    from core.counting.cues import thin_outline
    before = _flat_scene(150)
    after = _flat_scene(162, off=(3, 2))
    v = ModelFreeVerifier()
    ch = Change(roi=[0, 0, 320, 240], carried=0.2, swept=0.4, swept_edges=0.25, came_not_left=0.2, entered_wider=0.4)
    yes = v.verify(before, after, ch)
    assert yes.accept, yes.reason
    assert yes.cues["tone_area"] > 0.1 and yes.cues["tex_area"] < 0.05
    assert set(yes.cues) >= {"tex_area", "tone_area", "same_surface", "outline", "carried", "swept"}
    assert yes.decided_by and all(k in yes.cues for k in yes.decided_by)
    exposed = cv2.convertScaleAbs(before, alpha=1.2)
    no = v.verify(before, exposed, Change(roi=[0, 0, 320, 240], carried=0.02, swept=0.05))
    assert not no.accept, no.reason
    g = lambda im: im[..., 1].astype(np.float32)  # noqa: E731
    assert thin_outline(g(before), g(_flat_scene(150, off=(2, 0)))) > 0.2
    assert thin_outline(g(before), g(before)) == 0.0


def test_a_touch_that_changes_nothing_is_not_counted():
    """An arm that touched the top (nothing moved, nothing carried) is no sheet."""
    v = ModelFreeVerifier()
    before = _flat_scene(150)
    r = v.verify(before, before.copy(), Change(roi=[0, 0, 320, 240], carried=0.05, swept=0.08))
    assert not r.accept and r.cues["tex_area"] == 0.0 and r.cues["outline"] == 0.0 and r.confidence > 0.8


def test_a_red_arm_on_a_dark_floor_is_seen_at_the_rim():
    """Green channel alone cannot tell a red arm from a dark floor; the chroma check can:
    the engine must not settle (and decide) while it is in view."""
    import cv2
    base = np.full((240, 320, 3), 40, np.uint8)
    eng = CountingEngine(CountingSettings())
    t = 0.0
    for i in range(5):
        eng.update(base, i, t)
        t += 1 / 15
    arm = base.copy()
    cv2.rectangle(arm, (0, 100), (200, 130), (30, 40, 220), -1)    # BGR: red, green level = floor
    for i in range(5, 20):
        eng.update(arm, i, t)
        t += 1 / 15
    assert eng.state == EngineState.OCCLUDED
    assert eng.last_decision is None


def _fast_fed_frames() -> list:
    """Two arms carrying flat sheets in from the left, the next arm entering after only ~0.13 s
    of stillness (15 frames/s), then 2.7 s still."""
    import cv2
    frames = []
    scene = _flat_scene(150)
    frames += [scene] * 10
    for k, shade in enumerate((175, 200)):
        for x in range(0, 200, 25):                 # an arm carrying the sheet in from the left
            f = _flat_scene(shade, off=(4 * (k + 1), 0)) if x > 150 else scene.copy()
            cv2.rectangle(f, (0, 110), (x, 130), (20, 20, 20), -1)
            frames.append(f)
        scene = _flat_scene(shade, off=(4 * (k + 1), 0))
        frames += [scene] * 2                      # 0.13 s still, then the next arm
    # 2.7 s still at the end: these flat test scenes are no sheet to the verifier, and a "no
    # sheet" verdict while a quarter of the area differs waits DEFER_S before it is final
    frames += [scene] * 40
    return frames


def test_fast_feeding_never_merges_two_sheets():
    """The next arm enters after only ~0.13 s of stillness (less than settle_s): the engine
    decides on that last still frame, so each sheet keeps its own decision."""
    eng = CountingEngine(CountingSettings(settle_s=0.3))
    events = []
    for i, f in enumerate(_fast_fed_frames()):
        ev = eng.update(f, i, i / 15)
        if ev:
            events.append(ev)
    assert len(eng.decisions) == 2, [d.reason for d in eng.decisions]
    assert eng.decisions[0].frame < eng.decisions[1].frame


def test_a_fast_fed_decision_reads_its_own_cycle_not_the_next_arms_first_frame():
    """The decision taken when the next arm comes in is that of the last still frame: what
    still differs there, and the cycle's figures up to it. The next arm's first frame belongs
    to the next cycle (it had counted in both: its change as the decided sheet's, its entry as
    this arm's way out, so an arm that brought a sheet no longer came in wider than it left)."""
    eng = CountingEngine(CountingSettings(settle_s=0.3))
    seen, changes = [], {}
    verify = eng.verifier.verify

    def spy(before, after, change):
        seen.append((change, len(eng._cyc_masks), eng._cyc_masks[-1][0]))
        return verify(before, after, change)

    eng.verifier.verify = spy
    for i, f in enumerate(_fast_fed_frames()):
        eng.update(f, i, i / 15)
        changes[i] = eng._change
    first, n_masks, last_t = seen[0]
    assert first.frame == 20 and eng.decisions[0].frame == 20   # the last still frame before the 2nd arm
    assert first.final_change == pytest.approx(changes[20])      # not the 2nd arm's frame's (0.26)
    assert changes[21] > changes[20] + 0.005
    assert last_t == pytest.approx(20 / 15)                      # the cycle ends on that frame


def test_fast_fed_sheets_whose_arm_left_unseen_are_not_merged(tmp_path):
    """Fast feeding (under 0.5 s still between sheets) where the arm's way out was not seen in
    the edge band and its tail still showed in the entry zone on the first still frame: the
    zone is empty on every later still frame, so the next arm's entry is the next cycle, not
    this arm moving out (both sheets had been merged with the next: one at 25 frames/s, and a
    dark one at 11 frames/s whose decision also read the next arm's entry as its own way out).
    Clips of the stacking renderer's ``heldout19`` (looked at first in session 16, seen since)."""
    from core.synthetic.stacking import set_specs
    specs = set_specs("heldout19")
    assert_stacking_clip_exact(specs["h19_brushed_fast"], tmp_path, 10)
    assert_stacking_clip_exact(specs["h19_dark_first_fast"], tmp_path, 5)


def test_an_arm_whose_tail_slipped_out_unseen_is_gone_without_the_no_exit_wait(tmp_path, monkeypatch):
    """A fast gripper whose way out the edge band never saw moving (it crossed the band between
    two frames): only a faint trace in the entry zone as it stopped moving, gone on every later
    still frame. That tail is its way out: the last sheet is counted within 500 ms, not after
    the NO_EXIT_SETTLE_S wait (it was still uncounted when the clip ended, 1.5 s after it was
    still). ``h21_brushed_fast`` of the stacking renderer's ``heldout21`` (looked at first in
    session 17's last run, seen since)."""
    from core.counting import engine as E
    from core.synthetic.stacking import set_specs
    truth = assert_stacking_clip_exact(set_specs("heldout21")["h21_brushed_fast"], tmp_path, 10)
    monkeypatch.setattr(E, "TAIL_CLEAR_S", 1e9)        # the tail not taken for a way out
    assert count_video(truth.path).count == 9


def test_an_identical_dark_sheet_fed_fast_counts_by_its_rim_on_the_way_in(tmp_path, monkeypatch):
    """Dark sheets the stack's colour, fed fast: the third sheet changed nothing visible on
    the top, and the fifth only a faint outline that the empty-hand visit after it shows too.
    On the way in, the carried sheet's rim (lines a pixel wide that the ``span`` cue's opening
    drops) enclosed a sheet-sized area it did not enclose on the way out (``span_in`` 0.36-0.38,
    ``span_out`` 0.03-0.05): :func:`~core.counting.cues.carried_rim` counts them.
    ``h22_dark_first_fast`` of the stacking renderer's ``heldout22`` (missed in session 18's
    last run, seen since)."""
    from core.counting import cues as C
    from core.synthetic.stacking import set_specs
    truth = assert_stacking_clip_exact(set_specs("heldout22")["h22_dark_first_fast"], tmp_path, 5)
    ev = count_video(truth.path).events
    assert [e.decided_by for e in ev].count(["span_in", "came_not_left"]) == 2
    monkeypatch.setattr(C, "RIM_SPAN_IN", 1e9)        # the rule off: sheets 3 and 5 refused, as before
    assert count_video(truth.path).count == 3


def test_an_arm_the_colour_of_the_rim_is_not_gone_until_the_zone_stays_clear(tmp_path, monkeypatch):
    """A magenta arm lays a dark sheet on a dark stack in an orchid bin and leaves slowly: over
    the rim it hardly differs from the rim, over the stack ~1 % of the area. The carried sheet's
    edge crossing the edge band read as the way out; the arm's faint trace then came and went in
    the entry zone, and the fifth sheet was counted 0.2 s before the arm had gone (one false
    count and one missed). A trace after the stillness began holds the decision until the zone
    has been clear ``LATE_TRACE_CLEAR_S``. ``h23_dark_first_fast`` of the stacking renderer's
    ``heldout23`` (counted early in session 19's last run, seen since)."""
    from core.bench.count import score
    from core.counting import engine as E
    from core.synthetic.stacking import set_specs
    truth = assert_stacking_clip_exact(set_specs("heldout23")["h23_dark_first_fast"], tmp_path, 5)
    monkeypatch.setattr(E, "LATE_TRACE_CLEAR_S", 0.0)   # the hold off: the fifth count early, as before
    assert score(truth, count_video(truth.path).events)[:2] == (1, 1)


def test_count_event_details_keep_old_keys_and_add_cues():
    from datetime import datetime, timezone

    from core.counting.engine import CountEvent
    ev = CountEvent(1, 10, 0.5, datetime.now(timezone.utc), 0.9, "r", [0, 0, 1, 1], np.zeros((1, 1, 3), np.uint8),
                    cues={"tex_area": 0.1}, decided_by=["tex_area"])
    d = ev.to_dict()
    assert list(d)[:8] == ["index", "frame", "t", "wall_time", "confidence", "reason", "box", "verifier"]
    assert d["cues"] == {"tex_area": 0.1} and d["decided_by"] == ["tex_area"]


def test_one_default_verifier_for_app_cli_and_bench():
    """Issue 12: the app's default is the CLI's and the bench's (model-free, detector opt-in)."""
    assert CountingSettings().verifier == "model_free"
    assert isinstance(make_verifier(CountingSettings(), lambda img: []), ModelFreeVerifier)


def test_teach_fit_learns_a_station_and_reports_precision_recall():
    """Labelled cycles (cues + confirmed truth) → a model that separates them, with the
    before/after figures the Settings page shows; a station whose identical sheets only
    change their outline is fitted so that outline + carried decide."""
    from core.counting.cues import DEFAULT_MODEL, Cues
    from core.counting.teach import evaluate, fit
    rng = np.random.default_rng(0)
    ex, y = [], []
    for _ in range(30):        # identical smooth sheets: only a thin outline and a carried object
        ex.append(Cues(outline=rng.uniform(0.2, 0.6), carried=rng.uniform(0.15, 0.3), swept=rng.uniform(0.3, 0.5),
                       same_surface=1.0).to_dict()); y.append(1)
        ex.append(Cues(outline=rng.uniform(0.0, 0.05), carried=rng.uniform(0.02, 0.08), swept=rng.uniform(0.05, 0.15),
                       same_surface=1.0).to_dict()); y.append(0)
    r = fit(ex, y, prior=DEFAULT_MODEL)
    assert r.after.recall == 1.0 and r.after.precision == 1.0
    assert r.after.recall >= r.before.recall
    assert evaluate(r.model, ex, y).to_dict()["precision"] == 1.0
    with pytest.raises(ValueError):
        fit([], [])


def test_idle_scene_is_watched_at_idle_fps_and_every_cycle_frame_is_analysed(clip_set):
    """Issue 12 throughput: while nothing moves only ``idle_fps`` frames/s are analysed; from
    the first change to the decision every frame is (the cycle's figures never depend on a
    sampling rate); ``idle_fps = 0`` analyses every frame; the settings refuse a rate too low
    to see an arm come in."""
    truth = clip_set["fast_feed"]
    frames = _frames(truth)
    fps = 30.0                                   # fed as a 30 fps camera (timestamps i / 30)
    analysed, states = [], []
    eng = CountingEngine(CountingSettings(idle_fps=10.0))
    for i, f in enumerate(frames):
        if eng.wants(i / fps):
            analysed.append(i)
            states.append(eng.state.value)
        eng.update(f, i, i / fps)
    assert len(analysed) < len(frames)
    steps = [b - a for a, b in zip(analysed, analysed[1:])]
    assert max(steps) <= 3, "idle: at least 10 frames/s"
    busy = [b - a for a, b, st in zip(analysed, analysed[1:], states[1:]) if st != "stable"]
    assert busy and all(d == 1 for d in busy), "a cycle is analysed frame by frame"
    every = CountingEngine(CountingSettings(idle_fps=0.0))
    assert all(every.wants(i / fps) for i in range(10))
    from core.platform.settings import Settings
    assert any("idle_fps" in e for e in Settings(counting=CountingSettings(idle_fps=2.0)).validate())
    assert not Settings(counting=CountingSettings(idle_fps=0.0)).validate()


def test_count_video_reports_every_frame_and_the_files_frame_numbers(clip_set):
    """``python -m core count``'s contract with the analysis rate: ``frames`` is the file's
    frame count and event frames are the file's frame numbers."""
    from core.live.count import count_video
    truth = clip_set["fast_feed"]
    r = count_video(truth.path, keep_images=True)
    assert r.frames == truth.frames
    check_counts(truth, r.events)
    r0 = count_video(truth.path, CountingSettings(idle_fps=0.0), keep_images=True)
    assert r0.frames == truth.frames and r0.count == r.count


def test_nudge_check_leaves_the_compared_images_untouched():
    """OpenCV's phaseCorrelate multiplies its inputs by the window IN PLACE when their size
    needs no DFT padding. The nudge check (``_same_surface``) crops the registered images; a
    crop over the whole width is a view, so without copies the background figures (cached:
    the next decision's ``before``) and the thin-outline cue were computed on windowed images."""
    import cv2

    from core.counting import cues
    rng = np.random.default_rng(3)
    before = cv2.GaussianBlur(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8), (0, 0), 1.5)
    after = before.copy()          # a band across the whole width slid 8 px: a nudged sheet
    after[64:192] = np.roll(before[64:192], 8, axis=1)
    v = ModelFreeVerifier()
    c = v.compare(before, after, Change(roi=[0, 0, 320, 256]))
    a0, b0 = c["a"].copy(), c["b"].copy()
    tone, gain = cues.tone_changed(c["a"], c["b"], v.block, *c["valid"].shape)
    assert v._same_surface(c, tone, gain) > 0.5          # seen as the same surface moved
    assert np.array_equal(c["a"], a0) and np.array_equal(c["b"], b0)
    a = before[..., 1].astype(np.float32)
    b = after[..., 1].astype(np.float32)
    a1, b1 = a.copy(), b.copy()
    cues.same_surface(a, b, (0, 0, 320, 256))     # the module's own nudge measure: the same
    assert np.array_equal(a, a1) and np.array_equal(b, b1)


@pytest.mark.parametrize("dx,dy", [(0.37, -1.21), (2.0, 0.06), (-3.51, 4.99), (0.02, 0.0), (-6.0, -5.97), (5.99, 6.0)])
def test_a_registration_shift_moves_the_picture_as_warp_affine_does(dx, dy):
    """The decision moves ``after`` (and its band-pass) by the registration's shift with a 2×2
    filter instead of ``cv2.warpAffine``: the same picture to within float rounding, borders
    included, for every shift the registration accepts (±6 px)."""
    import cv2

    from core.counting.cues import Scratch, shift_image
    img = cv2.GaussianBlur(np.random.default_rng(5).random((120, 160), np.float32) * 255, (0, 0), 1.5)
    ref = cv2.warpAffine(img, np.float32([[1, 0, -dx], [0, 1, -dy]]), (160, 120), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT)
    ws = Scratch()
    out = shift_image(img, dx, dy, ws, "t")
    assert out.shape == img.shape
    assert float(np.abs(out - ref).max()) < 1e-3
    assert np.array_equal(shift_image(img * 0.5, dx, dy, ws, "u"), shift_image(img * 0.5, dx, dy))


def test_edge_chains_are_labelled_the_same_with_16_bit_labels():
    """Components are labelled with 16-bit labels where at most one per 2×2 block fits in them:
    the same components, areas and boxes as with 32-bit labels, on a dense edge map."""
    import cv2

    from core.counting.cues import _components, _edges
    img = cv2.GaussianBlur(np.random.default_rng(6).random((360, 640), np.float32) * 255, (0, 0), 2.0)
    m = _edges(img).view(np.uint8)
    n, lab, st, _c = _components(m)
    n32, lab32, st32, _c32 = cv2.connectedComponentsWithStatsWithAlgorithm(m, 8, cv2.CV_32S, cv2.CCL_GRANA)
    assert lab.dtype == np.uint16 and n == n32 > 100
    assert np.array_equal(lab, lab32) and np.array_equal(st, st32)


class _NoCacheVerifier(ModelFreeVerifier):
    """The verifier without its background cache: every figure computed afresh."""

    def verify(self, before, after, change):
        self._cache = self._edge_cache = None
        return super().verify(before, after, change)


def test_a_decisions_after_serves_the_next_decision_with_its_edges_and_band_pass(monkeypatch):
    """Issue 12 throughput: ``after`` becomes the next background, so its edges (found on it
    as decoded) and its band-pass (of the unshifted image, then shifted for the comparison
    when the camera shook) are kept: the next decision finds edges and band-passes only its
    own ``after``, with the figures a fresh verifier finds."""
    import cv2

    from core.counting import cues
    from core.counting import engine as E
    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 2.0)
    s1 = base.copy()
    s1[60:180, 80:240] = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    s1 = cv2.warpAffine(s1, np.float32([[1, 0, 1.4], [0, 1, -0.8]]), (320, 240), borderMode=cv2.BORDER_REFLECT)
    s2 = s1.copy()
    s2[50:170, 70:230] = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 1.5)
    calls = {"edges": 0, "bp": 0}
    real_edges, real_bp = cues._edges, ModelFreeVerifier._bandpass

    def edges(*a, **k):
        calls["edges"] += 1
        return real_edges(*a, **k)

    def bp(*a, **k):
        calls["bp"] += 1
        return real_bp(*a, **k)
    monkeypatch.setattr(cues, "_edges", edges)
    monkeypatch.setattr(ModelFreeVerifier, "_bandpass", staticmethod(bp))
    ch = Change(roi=[0, 0, 320, 240])
    seen = {}
    for reuse in (True, False):
        monkeypatch.setattr(E, "EDGE_REUSE", reuse)
        monkeypatch.setattr(E, "BP_WARP", reuse)
        v = ModelFreeVerifier()
        assert v.verify(base, s1, ch).cues["new_edges"] > 0      # the new top's outline
        calls.update(edges=0, bp=0)
        seen[reuse] = (v.verify(s1, s2, ch).cues, dict(calls))
    # the second decision: edges of its ``after`` only; one band-pass less (the nudge check has its own)
    assert seen[True][1]["edges"] == 1 and seen[False][1]["edges"] == 2, seen
    assert seen[True][1]["bp"] == seen[False][1]["bp"] - 1, seen
    # what is kept is what a fresh verifier finds on that background: the same figures
    monkeypatch.setattr(E, "EDGE_REUSE", True)
    monkeypatch.setattr(E, "BP_WARP", True)
    assert _NoCacheVerifier().verify(s1, s2, ch).cues == seen[True][0]


@pytest.mark.parametrize("name", ["fast_feed", "shake_noise"])
def test_uncopied_frames_and_kept_figures_decide_exactly_the_same(clip_set, name, monkeypatch):
    """Issue 12 throughput: ``count_video`` never draws on its frames, so its engine keeps them
    without copies (``copy_frames=False``); a frame that becomes the background reuses the small
    images made when it was analysed; the verifier keeps each new stable frame's grey image for
    the next decision, also when that frame was registered (shifted, shake_noise). Every
    decision must be the same, cue for cue, as with copies and no cache."""
    truth = clip_set[name]
    frames = _frames(truth)
    preps = {"ref": 0, "fast": 0}
    real_prep = ModelFreeVerifier._prep

    def run(copy: bool, verifier: ModelFreeVerifier, key: str):
        def prep(self, *a, **k):
            preps[key] += 1
            return real_prep(self, *a, **k)
        monkeypatch.setattr(ModelFreeVerifier, "_prep", prep)
        eng = CountingEngine(CountingSettings(), verifier, copy_frames=copy)
        for i, f in enumerate(frames):
            if eng.wants(i / truth.fps):
                eng.update(f, i, i / truth.fps)
        return eng

    ref = run(True, _NoCacheVerifier(), "ref")
    fast = run(False, ModelFreeVerifier(), "fast")
    assert len(ref.decisions) >= 2
    assert [(d.frame, d.accept, d.cues) for d in fast.decisions] == [(d.frame, d.accept, d.cues) for d in ref.decisions]
    assert preps["fast"] < preps["ref"], "the next decision's background was prepared again"
    assert any(fast._bg_full is f for f in frames) and not any(ref._bg_full is f for f in frames)


def test_an_arm_that_brought_a_sheet_came_in_wider_than_it_leaves():
    """``came_not_left`` (changed in the cycle's first half, never in its second): identical
    matte sheets landing 2 px off the last one leave almost nothing on the surface to tell,
    but the arm that brought one came in wider than it left; a touch and an empty hover go out
    the way they came in. Rendered by the independent stacking renderer (tuning-style seed)."""
    from core.synthetic.stacking import Cycle, StackSpec, Stage, render_frames
    cycles = [Cycle("sheet", carrier="gripper", side="left", offset_px=(2.0, 0.0), angle_deg=0.0),
              Cycle("touch", side="left", gap_s=0.8), Cycle("hover", side="top", gap_s=0.8, pause_s=0.6),
              Cycle("sheet", carrier="hands", side="top", gap_s=0.8, offset_px=(0.0, 2.0), angle_deg=0.0)]
    spec = StackSpec(width=320, height=240, fps=15, seed=7, cycles=cycles, lead_s=0.8, tail_s=1.2,
                     stage=Stage(finish="matte", identical=True, initial=1))
    frames, truth = render_frames(spec)
    eng = CountingEngine(CountingSettings())
    for i, f in enumerate(frames):
        eng.update(f, i, i / spec.fps)
    decs = list(eng.decisions)
    evs = truth.events
    for k, e in enumerate(evs):
        end = evs[k + 1].enter_frame if k + 1 < len(evs) else 10 ** 9
        mine = [d for d in decs if e.enter_frame <= d.frame < end]
        assert mine, (e, [d.frame for d in decs])
        if e.kind == "sheet":     # counted, and the arm came in wider than it left
            assert [d.accept for d in mine] == [True], (e, [d.cues for d in mine])
            assert mine[0].cues["came_not_left"] > 0.05 and mine[0].cues["entered_wider"] > 0.05, mine[0].cues
        else:                     # went out the way it came in
            assert not any(d.accept for d in mine), (e, [d.cues for d in mine])
            assert max(d.cues["came_not_left"] for d in mine) < 0.03, [d.cues for d in mine]
    assert eng.count == truth.expected_count == 2


def _faint_arm_frame(sheet_x: int, arm_to: int, cuff: bool = True):
    """A flat scene with a sheet carried in from the left by an arm of the floor's own grey
    (a dark gripper at its end): at the frame's edge only its cuff, a little lighter than the
    floor, differs from it (a few pixels of the entry zone)."""
    import cv2
    f = _flat_scene(185, off=(4, 2)) if sheet_x >= 84 else _flat_scene(150)
    if sheet_x < 84:                               # the sheet in flight (not yet on the stack)
        cv2.rectangle(f, (sheet_x, 62), (sheet_x + 160, 182), (185, 185, 185), -1)
    if arm_to > 0:
        cv2.rectangle(f, (0, 112), (arm_to, 126), (70, 70, 70), -1)
        cv2.rectangle(f, (arm_to - 30, 108), (arm_to, 130), (20, 20, 20), -1)
    if cuff:
        cv2.rectangle(f, (4, 114), (12, 124), (96, 96, 96), -1)
    return f


def _carried_in() -> list:
    return [_flat_scene(150)] * 15 + [_faint_arm_frame(x, x + 120) for x in range(-160, 85, 20)]


def test_an_arm_resting_almost_unseen_at_the_edge_is_waited_for():
    """An arm the camera can hardly tell from the floor at the frame's edge (a few pixels of
    its cuff differ) lays a sheet and rests on it for 3.5 s, longer than the engine waits when
    it saw no way out: the faint trace on one side of the entry zone holds the decision until
    the arm has gone, and the sheet is counted once, after that."""
    fps = 15
    frames = _carried_in() + [_faint_arm_frame(84, 204)] * int(3.5 * fps)   # released, resting
    left_at = len(frames)
    frames += [_faint_arm_frame(84, a) for a in range(204, -1, -40)]            # out the way it came
    frames += [_faint_arm_frame(84, 0, cuff=False)] * 20
    eng = CountingEngine(CountingSettings())
    events = [ev for i, f in enumerate(frames) if (ev := eng.update(f, i, i / fps))]
    assert [e.frame >= left_at for e in events] == [True], ([e.frame for e in events], left_at,
                                                            [(d.frame, d.reason) for d in eng.decisions])


def test_a_faint_trace_left_at_the_edge_for_good_delays_but_never_blocks_a_count():
    """The same arm, but its cuff stays at the edge for good once the gripper has gone (a glove
    or a cable left there, a few pixels). The engine takes the trace for the arm at first and
    waits; after ``FAINT_RIM_S`` of stillness it takes it for part of the scene and counts the
    sheet once."""
    from core.counting.engine import FAINT_RIM_S
    fps = 15
    frames = _carried_in() + [_faint_arm_frame(84, 204)] * fps
    still_from = len(frames) + 1
    frames += [_faint_arm_frame(84, 0)] * int((FAINT_RIM_S + 2) * fps)   # gripper gone, cuff stays
    eng = CountingEngine(CountingSettings())
    events = [ev for i, f in enumerate(frames) if (ev := eng.update(f, i, i / fps))]
    assert len(events) == 1, [(d.frame, d.reason) for d in eng.decisions]
    waited = (events[0].frame - still_from) / fps
    assert FAINT_RIM_S - 0.5 <= waited <= FAINT_RIM_S + 1.0, waited


def test_an_identical_sheet_laid_exactly_on_the_last_one_is_counted_from_the_cycle():
    """Identical painted sheets laid exactly on each other: the top does not change at all
    (the same image before and after). Only the cycle can tell, and it is enough when the arm
    came in much wider than it left and part of the area changed on the way in only, with
    nothing new elsewhere in the picture. A cycle that went out the way it came in, or a
    sheet that now lies in a masked-out part of the picture, is not counted."""
    before = _flat_scene(185)
    after = before.copy()
    v = ModelFreeVerifier()
    brought = dict(roi=[0, 0, 320, 240], carried=0.23, swept=0.36, swept_edges=0.3)
    yes = v.verify(before, after, Change(**brought, came_not_left=0.12, entered_wider=0.52))
    assert yes.accept, yes.reason
    assert yes.cues["tex_area"] == 0 and yes.cues["outline"] == 0 and yes.cues["new_edges"] == 0
    assert "entered_wider" in yes.decided_by or "came_not_left" in yes.decided_by
    same_way_out = v.verify(before, after, Change(**brought, came_not_left=0.12, entered_wider=0.05))
    put_elsewhere = v.verify(before, after, Change(**brought, came_not_left=0.12, entered_wider=0.52, elsewhere=0.3))
    assert not same_way_out.accept and not put_elsewhere.accept


def test_no_sheet_while_the_picture_still_differs_waits_for_what_is_there_to_go():
    """Hands hovering over the stack that the entry zone cannot show: after the stillness the
    engine waits for with no way out seen, the verdict is "no sheet" while a good part of the
    area still differs from the background. Adopting that picture as the background would keep
    the hands in it; instead the engine waits (DEFER_S, or until something moves again), so
    the cycle is decided once they have gone, against the old background. Hands that stay are
    taken for part of the scene after DEFER_S."""
    import cv2

    from core.counting.engine import DEFER_S, NO_EXIT_SETTLE_S
    fps = 15
    scene = _flat_scene(150)
    hands = scene.copy()
    blob = np.zeros(scene.shape[:2], np.float32)
    cv2.ellipse(blob, (160, 120), (55, 35), 0, 0, 360, 1.0, -1)
    blob = cv2.GaussianBlur(blob, (0, 0), 9)[..., None]          # soft: no cut edge, no sheet
    hands = (scene * (1 - 0.6 * blob)).astype(np.uint8)
    rest_s = NO_EXIT_SETTLE_S + 1.0
    for stays in (False, True):
        frames = [scene] * 15 + [hands] * int(rest_s * fps)
        gone_at = len(frames)
        frames += [hands if stays else scene] * int((DEFER_S + 1.5) * fps)
        eng = CountingEngine(CountingSettings())
        for i, f in enumerate(frames):
            assert eng.update(f, i, i / fps) is None
        assert len(eng.decisions) == 1, [(d.frame, d.reason) for d in eng.decisions]
        d = eng.decisions[0]
        if stays:       # decided DEFER_S after the first verdict, the hands then part of the scene
            assert (d.frame - 15) / fps == pytest.approx(NO_EXIT_SETTLE_S + DEFER_S, abs=0.3), d
            assert d.cues["final_change"] >= 0.03
        else:           # decided after they had gone, against the old background: nothing differs
            assert gone_at <= d.frame and d.cues["final_change"] < 0.01, (gone_at, d)


def test_an_arm_seen_moving_out_is_gone_even_if_the_zone_keeps_a_trace():
    """The arm is seen moving out through the edge band and pauses there a moment before it
    goes; the new sheet, laid loosely, reaches a few pixels into the entry zone. Those pixels
    are no arm (it was seen leaving): the sheet is counted within 500 ms, not after the
    faint-trace wait (``FAINT_RIM_S``)."""
    import cv2
    fps = 15
    floor = _flat_scene(150)
    laid = _flat_scene(185, off=(4, 2))
    cv2.rectangle(laid, (6, 70), (9, 73), (185, 185, 185), -1)        # the sheet's corner in the zone
    frames = [floor] * 15
    for x in range(0, 201, 25):                    # carried in from the left
        f = laid.copy() if x > 150 else floor.copy()
        cv2.rectangle(f, (0, 110), (x, 130), (20, 20, 20), -1)
        frames.append(f)
    for x in (150, 100, 50, 15, 15, 15):           # out again, a pause with its end in the band
        f = laid.copy()
        cv2.rectangle(f, (0, 110), (x, 130), (20, 20, 20), -1)
        frames.append(f)
    gone_at = len(frames)
    frames += [laid] * 40

    class Yes:      # this test is about WHEN the engine decides: a verifier that always says yes
        name = "yes"

        def verify(self, before, after, change):
            return Verdict(True, 1.0, "yes", [0, 0, 10, 10], cues={})

    eng = CountingEngine(CountingSettings(), Yes())
    events = [ev for i, f in enumerate(frames) if (ev := eng.update(f, i, i / fps))]
    assert len(events) == 1, [(d.frame, d.reason) for d in eng.decisions]
    assert 0 <= (events[0].frame - gone_at) / fps <= 0.5, (events[0].frame, gone_at)


def assert_stacking_clip_exact(spec, tmp_path, sheets: int):
    """Render a stacking-renderer clip as a camera sends it, count it with the default
    configuration: every one of its ``sheets`` sheets counted within 500 ms, nothing else.
    Returns the clip's truth (a test counts the same file again with a fix taken out)."""
    from core.bench.count import score
    from core.synthetic.stacking import render_clip
    truth = render_clip(spec, tmp_path / f"{spec.name}.mp4")
    r = count_video(truth.path)
    false_counts, missed, lat = score(truth, r.events)
    assert (false_counts, missed) == (0, 0), [(e.frame, e.reason) for e in r.events]
    assert r.count == truth.expected_count == sheets and max(lat) <= 500
    return truth


def test_hands_that_rested_hardly_seen_and_move_out_are_not_the_next_arm(tmp_path):
    """Matte identical sheets; hands linger 2.3 s over the stack after a release, only a few
    pixels of them in the entry zone, and then move out through it. Their motion there is the
    same hands leaving, not the next arm coming in (fast feeding), so the cycle is decided once
    they have gone: every sheet counted after its scene is still again, nothing before. A clip
    of the stacking renderer's random corpus drawn with other seeds (50000+; not a held-out
    set), H.264 as a camera sends it: the raw frames do not show the faint trace."""
    from core.synthetic.stacking import train_specs
    spec = train_specs(27, seed0=50000)["r_026"]
    assert_stacking_clip_exact(spec, tmp_path, 4)


def test_a_flicker_band_rolling_over_a_new_sheet_is_no_motion(tmp_path):
    """A rolling-shutter flicker band (±2.9 % gain) and auto exposure over a light table, tread
    plate sheets: where a sheet now lies, the background's gain map holds only the global
    gain, so compared frame to frame the band read as motion there and the engine never
    settled: not one decision in 26 s, all 5 sheets lost. Motion is now judged at the
    previous frame's exposure in those cells. A clip of the stacking renderer's hard corpus
    drawn with seeds 80000+ (not a held-out set), H.264 as rendered."""
    from core.synthetic.stacking import train_specs
    spec = train_specs(20, seed0=80000, hard=True)["r_019"]
    assert spec.camera.band > 0.02 and spec.stage.bin == "rand:"      # the case: a band over a flat table
    assert_stacking_clip_exact(spec, tmp_path, 5)


def test_identical_painted_sheets_that_show_only_their_rim_are_counted(tmp_path):
    """Identical painted sheets laid a few px off the last one, close to the floor's colour:
    carried in, a sheet shows almost nowhere, so the cycle's entered-wider and came-not-left
    cues stay small. What its visible parts (the rim over the walls, the shadow, the arm)
    enclose does not: the ``span`` cue. Without it 2 of the 5 sheets were lost; the nudge,
    the hover and the touch of the same clip still count nothing. A clip of the stacking
    renderer's hard corpus (seeds 70000+), which the cue model was fitted on."""
    from core.synthetic.stacking import train_specs
    spec = train_specs(14, seed0=70000, hard=True)["r_013"]
    assert spec.stage.identical and spec.stage.finish == "painted"
    assert {c.kind for c in spec.cycles} == {"sheet", "nudge", "hover", "touch"}
    assert_stacking_clip_exact(spec, tmp_path, 5)


def test_a_one_frame_blip_after_the_arm_left_does_not_bring_it_back(tmp_path):
    """Mains flicker and 2 px camera shake: after an arm was seen leaving, single frames of
    'motion' inside the area (the camera, not an arm) reset the arm's way out, so the engine
    took the stillness that followed for an arm still holding something and decided the next
    cycle wrongly (a hand's touch counted as a sheet). Motion inside resets the way out only on
    two frames in a row. A clip of the stacking renderer's training corpus (seeds 40000+)."""
    from core.synthetic.stacking import train_specs
    spec = train_specs(93)["r_092"]
    assert spec.camera.flicker > 0.05 and spec.camera.shake_px == 2
    assert_stacking_clip_exact(spec, tmp_path, 4)


def test_a_first_sheet_on_an_empty_bin_is_counted_though_much_still_differs(tmp_path, monkeypatch):
    """A painted sheet handed onto an empty bin after a touch and an empty visit: once all is
    still, 44 % of the area differs from the background, all of it the new sheet's surface
    with cut edges. The cue rule refused it (its ``final_change`` weight was fitted where what
    still differed was an arm's remains) and counted the nudge that followed instead: one false
    count, one miss. :func:`~core.counting.cues.new_cover` counts it; the touch, the empty visit
    and the nudge count nothing. Since session 11 the exposure gain comes from the floor's ring
    of cells where most cells disagree (``RING_GAIN``), and with it the rule alone counts this
    sheet too, and since session 12 so does the rule's ``span`` cue for a new textured top
    (``SPAN_GATE_NEW_TEXTURE``); without all three, the nudge is counted. The first four
    cycles of a clip of the stacking renderer's hard corpus drawn with seeds 80000+ (not a
    held-out set)."""
    import dataclasses

    import core.counting.cues as C
    import core.counting.engine as E
    from core.synthetic.stacking import train_specs
    spec = train_specs(43, seed0=80000, hard=True)["r_042"]
    spec = dataclasses.replace(spec, cycles=spec.cycles[:4])
    assert spec.stage.initial == 0 and [c.kind for c in spec.cycles] == ["touch", "empty", "sheet", "nudge"]
    assert_stacking_clip_exact(spec, tmp_path, 1)
    path = str(tmp_path / f"{spec.name}.mp4")
    monkeypatch.setattr(C, "new_cover", lambda c: False)       # the rule alone ...
    r = count_video(path)
    assert r.count == 1 and r.events[0].frame < 150            # ... counts the sheet with the ring's gain
    monkeypatch.setattr(E, "RING_GAIN", False)                 # ... and with the new-texture gate
    r = count_video(path)
    assert r.count == 1 and r.events[0].frame < 150
    monkeypatch.setattr(C, "SPAN_GATE_NEW_TEXTURE", C.SPAN_GATE_TEXTURED)    # as it was before all three
    r = count_video(path)
    assert r.count == 1 and r.events[0].frame > 150            # the nudge's cycle, not the sheet's


def test_a_sheet_whose_texture_tone_and_outline_all_changed_is_counted_though_hands_carried_it(tmp_path, monkeypatch):
    """Hands carry hot-rolled sheets in from every side, so the cycle hardly comes in wider than
    it leaves (``came_not_left`` 0.037), and the cue rule, which weighs the arm's figures most,
    refused the last sheet although its texture, tone and outline all changed.
    :func:`~core.counting.cues.strong_new_surface` counts it; the touches, the nudge and the
    hover of the same clip count nothing. Since session 12 the rule's ``span`` cue counts it too
    (its old top did not move: ``SPAN_GATE_NEW_TEXTURE``); without both it is refused. A clip of
    ``heldout13`` (held out in session 10, looked at once there; tuning data since)."""
    import core.counting.cues as C
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout13")["h13_hands_all_sides"]
    assert [c.kind for c in spec.cycles] == ["touch", "sheet", "nudge", "sheet", "touch", "sheet", "hover", "sheet"]
    assert_stacking_clip_exact(spec, tmp_path, 4)
    monkeypatch.setattr(C, "strong_new_surface", lambda c: False)       # the rule alone
    assert count_video(str(tmp_path / f"{spec.name}.mp4")).count == 4
    monkeypatch.setattr(C, "SPAN_GATE_NEW_TEXTURE", C.SPAN_GATE_TEXTURED)    # ... as it was
    assert count_video(str(tmp_path / f"{spec.name}.mp4")).count == 3


def test_a_fast_fed_sheet_with_new_texture_outline_and_mostly_new_edges_is_counted(tmp_path, monkeypatch):
    """Brushed sheets fed fast: one sheet's texture and outline changed and its long edges are
    mostly new (2.3 new to 1.1 lost), but its tone did not, and the cue rule refused it (p 0.49).
    :func:`~core.counting.cues.strong_new_surface` counts it. A clip of ``heldout10`` (held out
    in session 7, seen since)."""
    import core.counting.cues as C
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout10")["h10_brushed_fast"]
    assert {c.kind for c in spec.cycles} == {"sheet"} and spec.stage.finish == "brushed"
    assert_stacking_clip_exact(spec, tmp_path, 10)
    monkeypatch.setattr(C, "strong_new_surface", lambda c: False)
    assert count_video(str(tmp_path / f"{spec.name}.mp4")).count == 9


def test_hands_still_in_the_picture_are_no_strong_new_surface(tmp_path, monkeypatch):
    """A hand touches the stack and stays at the edge: once all is still, its texture, tone and
    long new edges read like a new sheet's, and 14 % of the area still differs from the
    background. The engine waits for such hands to go; :func:`~core.counting.cues.
    strong_new_surface` holds back where that much still differs (``STRONG_STILL``), or it would
    count the hand. A clip of ``heldout9`` (held out in session 6, seen since)."""
    import dataclasses

    import core.counting.cues as C
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout9")["h9_mixed_1080p"]
    assert [c.kind for c in spec.cycles] == ["sheet", "touch", "sheet", "sheet"]
    spec = dataclasses.replace(spec, cycles=spec.cycles[:2])     # the sheet and the touch (rendering is most of the time)
    assert_stacking_clip_exact(spec, tmp_path, 1)
    monkeypatch.setattr(C, "STRONG_STILL", 1.0)
    assert count_video(str(tmp_path / f"{spec.name}.mp4")).count == 2      # the hand counted


def test_a_bright_sheet_filling_most_of_the_picture_is_no_exposure_change(tmp_path, monkeypatch):
    """A green painted sheet laid on an empty dark bin that fills most of the picture: most of
    the background's gain cells now see ~4.5× the light, so their median read as the camera's
    exposure rising ×4.5, the floor around it then read as changed everywhere, the entry zone
    stayed "occupied" and nothing was decided again. The floor's ring of cells keeps ratio 1:
    the engine takes the ring's gain where the two disagree (``RING_GAIN``), counts the sheet
    and refuses the touch that follows. The first two cycles of a clip of a hard corpus drawn
    with seeds 110000+ (rendered in session 11 as tuning data; not a held-out set)."""
    import dataclasses

    import core.counting.engine as E
    from core.synthetic.stacking import train_specs
    spec = train_specs(48, seed0=110000, hard=True)["r_047"]
    spec = dataclasses.replace(spec, cycles=spec.cycles[:2])
    assert spec.stage.initial == 0 and spec.stage.bin_frac > 0.75 and [c.kind for c in spec.cycles] == ["sheet", "touch"]
    assert_stacking_clip_exact(spec, tmp_path, 1)
    monkeypatch.setattr(E, "RING_GAIN", False)
    assert count_video(str(tmp_path / f"{spec.name}.mp4")).count == 0


@pytest.mark.parametrize("summed", [True, False])
def test_an_edge_that_stays_changed_is_relearned_though_arms_keep_moving(monkeypatch, summed):
    """Something stays at the edge for good (here a block; on a hard-corpus clip, an arm's
    remains in a background taken while it was still there) while arms keep coming and going
    every 3 s: the still spells between them are summed over the cycle (``STUCK_OVER_CYCLE``),
    so after ``STUCK_S`` of stillness the scene is re-learned and counting goes on; restarting
    the wait at each motion left the engine waiting for good."""
    import core.counting.engine as E
    monkeypatch.setattr(E, "STUCK_OVER_CYCLE", summed)
    rng = np.random.default_rng(5)
    base = np.clip(90 + rng.normal(0, 12, (240, 320, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    fps = 10.0
    eng = CountingEngine(CountingSettings(), ModelFreeVerifier())
    relearned = None
    for i in range(int(20 * fps)):
        f = base.copy()
        if i >= 10:
            f[90:150, 0:14] = (30, 30, 200)            # stays at the edge
        if i >= 20 and i % 30 in (0, 1):
            f[100:140, 140 + 10 * (i % 30):180 + 10 * (i % 30)] = 230     # a brief motion inside
        eng.update(f, i, i / fps)
        if relearned is None and "rim occupied" in eng.last_reason:
            relearned = i / fps
    if summed:
        assert relearned is not None and E.STUCK_S <= relearned <= E.STUCK_S + 5.0, relearned
    else:
        assert relearned is None and eng.state != EngineState.STABLE


def test_background_refresh_waits_for_stillness():
    """The background absorbs slow drift once a second, but only with a frame after which
    nothing moved for ``REFRESH_HOLD_S``: the tip of an arm coming in, still below every motion
    limit on the frame the refresh would take, must not become part of the background (its
    remains then read as a change at the rim once the arm has left: seen on a red floor once
    red−blue changes counted from 0.75 grey-level limits)."""
    from core.counting.engine import REFRESH_HOLD_S
    from core.counting.frames import pixels
    rng = np.random.default_rng(3)
    base = np.clip(90 + rng.normal(0, 12, (240, 320, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    base = np.ascontiguousarray(base)
    fps = 10.0

    def run(tip_at: int | None, n: int) -> CountingEngine:
        eng = CountingEngine(CountingSettings(), ModelFreeVerifier())
        for i in range(n):
            f = base.copy()
            if tip_at is not None and i == tip_at:
                f[110:118, 0:3] = (40, 40, 200)          # the tip of an arm: below every motion limit
            elif tip_at is not None and i > tip_at:
                f[100:130, 0:30 * (i - tip_at)] = (40, 40, 200)    # ... then the arm
            eng.update(f, i, i / fps)
        return eng

    still = run(None, 30)                 # nothing happens: refreshed with a still frame
    assert still.state == EngineState.STABLE and still._bg_t >= 1.0
    assert REFRESH_HOLD_S <= still._bg_t <= 3.0 - REFRESH_HOLD_S
    first_cand = 11                       # the first frame more than 1 s after the first background
    arm = run(first_cand, first_cand + 4)
    assert arm.state != EngineState.STABLE                 # the arm is in view
    assert arm._bg_t < first_cand / fps                     # ... and its tip is in no background
    assert (pixels(arm._bg_full)[110:118, 0:3] == base[110:118, 0:3]).all()


def _carry_frames(sheet_bgr=(30, 40, 52), floor=50):
    """An arm carries a sheet in from the left and lays it exactly on an identical one: only
    the carry shows (320×240 at 10 frames/s)."""
    rng = np.random.default_rng(5)
    base = np.clip(floor + rng.normal(0, 2, (240, 320, 1)), 0, 255).astype(np.uint8).repeat(3, axis=2)
    base[60:180, 80:240] = sheet_bgr
    frames = [base.copy() for _ in range(30)]
    for k, x in enumerate(range(-160, 81, 40)):             # the sheet comes in, carried
        f = base.copy()
        f[60:180, max(0, x):x + 160] = sheet_bgr
        f[115:125, 0:max(0, x) + 80] = (200, 200, 200)        # the arm holding it
        frames.append(f)
    for x in range(80, -10, -40):                             # the arm goes back alone
        f = base.copy()
        f[115:125, 0:x + 80] = (200, 200, 200)
        frames.append(f)
    return frames + [base.copy() for _ in range(40)]


def test_a_carried_sheet_the_floor_hides_in_grey_shows_in_colour(monkeypatch):
    """A dark brown sheet carried over a charcoal floor differs by ~10 grey levels and ~20 in
    red−blue: below both of the states' limits. The cycle's figures see it with the weaker
    colour limit (``CUE_CHROMA_K``): what was carried is the sheet, not the arm alone."""
    import core.counting.engine as E

    def carried(k: float) -> dict:
        monkeypatch.setattr(E, "CUE_CHROMA_K", k)
        eng = CountingEngine(CountingSettings(), ModelFreeVerifier())
        for i, f in enumerate(_carry_frames()):
            eng.update(f, i, i / 10.0)
        assert len(eng.decisions) == 1
        return eng.decisions[0].cues

    weak, states = carried(E.CUE_CHROMA_K), carried(E.CHROMA_K)
    assert states["carried"] < 0.08 < weak["carried"]          # the arm alone vs arm and sheet
    assert weak["swept"] > states["swept"] + 0.08
    assert states["entered_wider"] < 0.05 < 0.3 < weak["entered_wider"]    # came in wider than it left


def test_a_flicker_band_at_the_frame_edge_is_no_arm_in_the_entry_zone(tmp_path, monkeypatch):
    """A rolling-shutter flicker band (±2.5 % gain, a sine over the rows) on a flat table under
    2 px of shake: the background's coarse gain cells follow it in the middle of the picture,
    but not in the top and bottom rows, past the last cells' centres, which are the entry
    zone's top and bottom sides. There the band read as an arm resting at the edge: the first
    sheet was counted 0.7 s late, and the touch after it counted too. Each row's median
    residual gain is now taken out (``ROW_GAIN_TOL``). A clip of the stacking renderer's hard
    corpus drawn with seeds 90000+ (not a held-out set)."""
    import dataclasses

    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import train_specs
    spec = train_specs(24, seed0=90000, hard=True)["r_007"]
    # its first three cycles (rendering is most of this test's time; the whole clip has seven)
    spec = dataclasses.replace(spec, cycles=spec.cycles[:3])
    assert spec.camera.band > 0.02 and spec.camera.shake_px == 2 and [c.kind for c in spec.cycles] == ["sheet", "touch", "sheet"]
    truth = assert_stacking_clip_exact(spec, tmp_path, 2)
    monkeypatch.setattr(E, "ROW_GAIN_TOL", 0.0)           # the coarse gain cells alone, as before
    assert score(truth, count_video(truth.path).events)[:2] == (0, 0)   # (undoing jolts alone keeps the touch out now)
    monkeypatch.setattr(E, "JOLT_CHECK", False)            # ... and without that, as before: the touch counted
    assert score(truth, count_video(truth.path).events)[:2] == (1, 1)


def test_a_one_frame_jolt_of_a_still_scene_is_no_arm_moving_inside(tmp_path, monkeypatch):
    """A harsh camera (exposure steps, shake, flicker, H.264 at crf 34) over tread plate: one
    jolted frame after the arm left shows as motion twice, into the jolt and back out of it, and
    two frames of motion in a row meant an arm still in view: the way out was forgotten, the
    sheet waited for the no-exit stillness, and the next arm merged it with the next cycle (one sheet
    lost). Motion that returns to the still frame before it is the jolt's. The clip is
    ``heldout9``'s ``h9_tread_harsh``: a held-out set looked at in session 6, tuning data since
    session 7."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout9")["h9_tread_harsh"]
    assert spec.camera.exposure_jumps and spec.camera.shake_px == 2 and spec.stage.finish == "tread"
    truth = assert_stacking_clip_exact(spec, tmp_path, 5)
    monkeypatch.setattr(E, "GLITCH_CHECK", False)
    monkeypatch.setattr(E, "JOLT_CHECK", False)             # (which undoes such a jolt too)
    assert score(truth, count_video(truth.path).events)[:2] != (0, 0)


def test_a_jolt_of_a_few_frames_is_undone_and_the_stillness_goes_on(tmp_path, monkeypatch):
    """A harsh camera that jolts every ~5 frames for 1-3 frames (shake, a badly compressed run)
    over tread plate at 18 frames/s: each jolt restarted the stillness, two still frames between
    jolts never made settle_s, and a sheet laid 1.8 s before the next arm was merged with the next
    one. Once the picture is back at the still frame before the jolt, the jolt is undone: the
    stillness goes on with its time, and no jolted frame enters the cycle's figures. The clip is
    ``heldout17``'s ``h17_tread_harsh`` (held out until session 14's last run, seen since)."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout17")["h17_tread_harsh"]
    assert spec.stage.finish == "tread" and spec.fps == 18
    truth = assert_stacking_clip_exact(spec, tmp_path, 5)
    monkeypatch.setattr(E, "JOLT_CHECK", False)
    assert score(truth, count_video(truth.path).events)[:2] == (0, 1)


def test_nothing_counted_keeps_the_background_when_the_picture_is_back_to_it(tmp_path, monkeypatch):
    """A cycle that brought nothing (a harsh camera's jolt, a touch) ends with a picture no
    different from the background: the frame it was decided on is no better a background, and
    it may hold the tip of the next arm, below every limit; that tip then read as something
    resting in the entry zone long after the arm left, and a sheet was lost. The background is
    kept. The clip is ``heldout2``'s ``h2_tread_harsh``: a held-out set looked at in issue 12's
    first runs, tuning data since."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout2")["h2_tread_harsh"]
    assert spec.stage.finish == "tread" and "touch" in {c.kind for c in spec.cycles}
    truth = assert_stacking_clip_exact(spec, tmp_path, 5)
    monkeypatch.setattr(E, "KEEP_BACKGROUND_IF_NOTHING", False)
    assert score(truth, count_video(truth.path).events)[:2] != (0, 0)


def test_hands_on_sleeves_the_camera_hardly_sees_are_not_gone_when_the_edge_flickers(tmp_path, monkeypatch):
    """Two gloved hands on dark sleeves (the floor's grey) hold a galvanised sheet over the
    stack, still, before letting go: only the sleeves' edges reach the entry zone, right at its
    limit. The zone rose over the limit for one frame and fell back with nothing moving, and
    that counted as the arms leaving it: the sheet was counted 0.7 s early, while it was still
    held, and the hands' way out counted nothing (one false count, one miss). An arm leaves the
    zone by filling it first (1.5 × the limit) or while something moves. The clip is
    ``heldout11``'s ``h11_sides_smooth``: a held-out set looked at once, in session 8's last run,
    tuning data since."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout11")["h11_sides_smooth"]
    assert spec.stage.finish == "galvanised" and spec.fps <= 12
    truth = assert_stacking_clip_exact(spec, tmp_path, 4)
    monkeypatch.setattr(E, "OCC_PEAK_K", 0.0)
    # since session 13 a late trace with hands over the sheet holds the decision as well
    # (``TRACE_CLEAR_S``): without both the sheet is counted early
    monkeypatch.setattr(E, "TRACE_CLEAR_S", 0.0)
    assert score(truth, count_video(truth.path).events)[:2] == (1, 1)


def test_a_new_textured_top_brought_by_a_narrow_arm_is_counted(tmp_path, monkeypatch):
    """Lighting changes while a sheet of a new texture is laid by an arm that came in hardly
    wider than it left (``came_not_left`` 3.8 %): where the top's texture changed widely the
    rule's ``span`` cue waited for 5 % changed on the way in alone (a hand that shifted a
    textured sheet reached 2.8 %), and the sheet was refused (p 0.33). Its old surface did not
    move (``same_surface`` 0), so 3 % suffice (``SPAN_GATE_NEW_TEXTURE``); the hand cycle
    between the two sheets counts nothing. The project renderer's ``lighting_720p14``
    (``heldout14``, looked at in session 11's last run; tuning data since)."""
    import core.counting.cues as C
    from core.bench.count import set_specs
    spec = set_specs("clips", "heldout14")["lighting_720p14"]
    truth = render_clip(spec, tmp_path / "l.mp4")
    assert [e.kind for e in truth.events] == ["sheet", "hand", "sheet"]
    check_counts(truth, count_video(truth.path, keep_images=True).events)
    monkeypatch.setattr(C, "SPAN_GATE_NEW_TEXTURE", C.SPAN_GATE_TEXTURED)    # as it was
    assert count_video(truth.path).count == 1


def test_small_hands_that_slipped_out_unseen_do_not_merge_two_fast_fed_sheets(tmp_path, monkeypatch):
    """Galvanised sheets at 11 frames/s, laid by small hands: the hands leave through the entry
    zone below every motion limit, a faint trace there for two frames, then nothing. No way
    out was seen, so the engine waits ``NO_EXIT_SETTLE_S``; the next hands came 1.1 s later,
    and because the zone had shown a trace in that stillness they were taken for the same
    hands moving out: two sheets made one cycle (one counted, one missed). A zone clear for
    ``CLEAR_RUN_S`` at the end of the stillness lets the next arm's entry decide the cycle.
    ``heldout15``'s ``h15_galv_small_hands``: held out in session 12, looked at once in its
    last run, tuning data since."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import render_clip as render_stacking
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout15")["h15_galv_small_hands"]
    assert spec.fps == 11 and spec.stage.finish == "galvanised"
    truth = render_stacking(spec, tmp_path / f"{spec.name}.mp4")
    r = count_video(truth.path)
    assert score(truth, r.events)[:2] == (0, 0) and r.count == 5, [e.frame for e in r.events]
    monkeypatch.setattr(E, "CLEAR_RUN_S", 1e9)                  # as it was
    assert score(truth, count_video(truth.path).events)[:2] == (0, 1)


def test_hands_still_holding_the_last_sheet_fade_out_of_the_zone_without_being_gone(tmp_path, monkeypatch):
    """Harsh camera over tread plate: hands hold the last sheet still over the stack and their
    trace in the entry zone fades, one frame to the next, with nothing moving. The sheet was
    counted 14 frames before it was let go (one false count), and the decision after the hands
    really left refused it (one miss). A trace seen in the stillness after its first frame,
    while 3-10 % of the area still differs (``LATE_TRACE_CHANGE``: the hands over the sheet),
    now holds the decision until the zone has been clear for ``TRACE_CLEAR_S``; the hands move
    again before that. (Held on any trace, nine sheets of the tuning sets were counted 0.4 s
    later: on the first still frame a trace is most often the arm's tail going out.)
    ``heldout15``'s ``h15_tread_touches``: held out in session 12, looked at once in its last
    run, tuning data since."""
    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import render_clip as render_stacking
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout15")["h15_tread_touches"]
    assert spec.stage.finish == "tread" and [c.kind for c in spec.cycles].count("sheet") == 3
    truth = render_stacking(spec, tmp_path / f"{spec.name}.mp4")
    r = count_video(truth.path)
    false_counts, missed, lat = score(truth, r.events)
    assert (false_counts, missed) == (0, 0) and r.count == 3 and max(lat) <= 500, [e.frame for e in r.events]
    monkeypatch.setattr(E, "TRACE_CLEAR_S", 0.0)                # as it was
    assert score(truth, count_video(truth.path).events)[:2] == (1, 1)


def test_identical_sheets_the_floor_s_colour_are_counted_from_what_the_arm_brought(tmp_path, monkeypatch):
    """Identical sheets painted close to the floor's colour: once laid, the top shows nothing
    new (no texture, tone or outline), and four of ten were refused because the arm came in
    hardly wider than it left (``came_not_left`` 2-4 %). What it brought still enclosed a
    sheet-sized area (``span`` 0.13-0.14) and it swept a fifth of the area with sharp edges:
    :func:`~core.counting.cues.unseen_sheet` counts them; no hand, touch or hover of the tuning
    data comes near. The stacking renderer's tuning clip ``t_near_floor_paint``."""
    import core.counting.cues as C
    from core.bench.count import score
    from core.synthetic.stacking import render_clip as render_stacking
    from core.synthetic.stacking import set_specs
    spec = set_specs("tune")["t_near_floor_paint"]
    assert {c.kind for c in spec.cycles} == {"sheet"} and spec.stage.identical
    truth = render_stacking(spec, tmp_path / f"{spec.name}.mp4")
    r = count_video(truth.path)
    assert score(truth, r.events)[:2] == (0, 0) and r.count == 10, [e.frame for e in r.events]
    monkeypatch.setattr(C, "unseen_sheet", lambda c: False)      # as it was
    assert count_video(truth.path).count == 6


def test_hands_resting_over_a_new_sheet_hold_the_decision_though_their_arm_moved_in_the_zone(tmp_path, monkeypatch):
    """Painted sheets at 11 frames/s, hands: the fifth sheet's arm moved in the entry zone all
    the way in (which also reads as a way out), then the hands rested over the sheet, a faint
    trace of them in the zone and 4-5 % of the area still differing. The sheet was counted
    there, 6 frames before the hands let go (one false count), and the decision after they
    left refused it (one miss). Where ``LATE_TRACE_CHANGE`` of the area still differs, a late
    trace holds the decision even after an arm was seen moving out. Hard corpus E's
    ``r_011`` (``train_specs(hard=True)``, seeds 110000+: tuning data); its two other misses
    (identical sheets the floor's colour whose arm's figures read like a hand's) remain."""
    import core.counting.engine as E
    import core.live.sources as S
    from core.bench.count import score
    from core.synthetic.stacking import render_clip as render_stacking
    from core.synthetic.stacking import train_specs
    spec = train_specs(12, 110000, hard=True)["r_011"]
    assert spec.fps == 11 and [c.kind for c in spec.cycles].count("sheet") == 5
    truth = render_stacking(spec, tmp_path / "r_011.mp4")
    # every picture deblocked (as OpenCV, and so a camera stream, decodes it): the pictures the
    # failure was found on; with the file reader's default the rule-off run happens to pass
    monkeypatch.setattr(S, "SKIP_NONREF_DEBLOCK", False)
    assert score(truth, count_video(truth.path).events)[:2] == (0, 2)
    monkeypatch.setattr(E, "LATE_TRACE_CHANGE", 1.0)            # as it was
    monkeypatch.setattr(E, "LATE_TRACE_CLEAR_S", 0.0)           # (the fainter traces' hold, off too)
    assert score(truth, count_video(truth.path).events)[:2] == (1, 3)


def test_hands_resting_on_unseen_sleeves_after_the_zone_fell_back_are_not_a_tail_going_out(tmp_path, monkeypatch):
    """Two gloved hands on sleeves the floor's grey lay a sheet and rest over it: the sleeves' edges
    took the entry zone over its limit for a frame with nothing moving, then fell back, a faint trace
    on the first still frame and none after. That trace was taken for the arm's tail slipping out
    (``TAIL_CLEAR_S``), and the sheet was counted 8 frames before the hands moved out (one false
    count, one miss). A tail counts only on a stillness that began from motion
    (``TAIL_AFTER_MOTION``). The first two cycles of ``heldout25``'s ``h25_near_aligned`` (looked at
    once, in session 21; tuning data since)."""
    import dataclasses

    import core.counting.engine as E
    from core.bench.count import score
    from core.synthetic.stacking import render_clip as render_stacking
    from core.synthetic.stacking import set_specs
    spec = set_specs("heldout25")["h25_near_aligned"]
    spec = dataclasses.replace(spec, cycles=spec.cycles[:2])
    assert [c.kind for c in spec.cycles] == ["sheet", "sheet"]
    truth = render_stacking(spec, tmp_path / f"{spec.name}.mp4")
    r = count_video(truth.path)
    false_counts, missed, lat = score(truth, r.events)
    assert (false_counts, missed) == (0, 0) and r.count == 2 and max(lat) <= 500, [e.frame for e in r.events]
    monkeypatch.setattr(E, "TAIL_AFTER_MOTION", False)          # as it was
    assert score(truth, count_video(truth.path).events)[:2] == (1, 1)
