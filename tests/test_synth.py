"""Synthetic clip generator: ground truth consistent with the pixels, sizes, JSON, stills."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from core.live.sources import probe_video
from core.synthetic.clips import (
    FINISHES,
    ClipSpec,
    ClipTruth,
    Event,
    Nuisances,
    SceneConfig,
    demo_spec,
    presets,
    render_clip,
    render_still,
)


def _read(path):
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            return out
        out.append(f)


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    p = tmp_path_factory.mktemp("syn") / "c.mp4"
    spec = ClipSpec(width=320, height=240, fps=15, seed=4, codec="h264", scene=SceneConfig(initial_sheets=1),
                    events=[Event("sheet", side="left", arm="dark"), Event("hand", side="top", pause_s=1.0)],
                    nuisances=Nuisances(noise_sigma=0))
    return render_clip(spec, p)


def test_truth_matches_pixels(one):
    frames = _read(one.path)
    assert len(frames) == one.frames
    sheet, hand = one.events
    assert (sheet.kind, hand.kind, one.expected_count) == ("sheet", "hand", 1)
    assert sheet.enter_frame < sheet.release_frame < sheet.stable_frame < hand.enter_frame < hand.stable_frame
    base = frames[0].astype(np.int16)
    # before the arm enters the scene is the still background; once stable it holds still
    assert np.abs(frames[sheet.enter_frame - 1].astype(np.int16) - base).mean() < 2.0
    s0 = frames[sheet.stable_frame].astype(np.int16)
    assert np.abs(frames[hand.enter_frame - 1].astype(np.int16) - s0).mean() < 2.0
    # the arm is in view on its enter frame and during the pause, gone on the stable frame
    assert np.abs(frames[sheet.enter_frame].astype(np.int16) - base).max() > 40
    assert np.abs(frames[hand.stable_frame - 1].astype(np.int16) - frames[hand.stable_frame]).max() > 40
    # the sheet landed inside its box: the texture there changed; outside it did not
    x1, y1, x2, y2 = sheet.box
    inner = (slice(y1 + 8, y2 - 8), slice(x1 + 8, x2 - 8))
    changed_in = np.abs(s0[inner] - base[inner]).mean()
    changed_out = np.abs(s0[:20, :20] - base[:20, :20]).mean()     # H.264 noise only
    assert changed_out < 4 and changed_in > 3 * changed_out, (changed_in, changed_out)
    # the hand-only cycle leaves the scene as it was
    after_hand = frames[hand.stable_frame + 3].astype(np.int16)
    assert np.abs(after_hand - s0).mean() < 2.0
    assert hand.pause_s == 1.0 and hand.stable_frame - hand.release_frame >= 15


def test_json_round_trip(one, tmp_path):
    p = one.save(tmp_path / "t.json")
    back = ClipTruth.load(p)
    assert back == one
    d = json.loads(p.read_text())
    assert d["expected_count"] == 1 and d["events"][0]["stable_frame"] == one.events[0].stable_frame


def test_browser_playable_h264(one):
    import av
    with av.open(one.path) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and s.codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("w,h,fps", [(640, 480, 30), (1920, 1080, 15)])
def test_sizes_and_rates(tmp_path, w, h, fps):
    spec = ClipSpec(width=w, height=h, fps=fps, seed=1, codec="mp4v", lead_in_s=0.2, tail_s=0.2,
                    events=[Event("sheet", speed=3.0)])
    t = render_clip(spec, tmp_path / "s.mp4")
    info = probe_video(t.path)
    assert (info.width, info.height, info.fps) == (w, h, fps) and info.frame_count == t.frames
    b = t.events[0].box
    assert 0 < b[0] < b[2] < w and 0 < b[1] < b[3] < h


def test_failing_stream_glitches_recorded(tmp_path):
    spec = ClipSpec(width=160, height=120, fps=10, seed=2, codec="mjpg", events=[Event()], tail_s=2.0,
                    lead_in_s=2.0, nuisances=Nuisances(black_frames=2, frozen_runs=1, dropped_frames=2))
    t = render_clip(spec, tmp_path / "g.avi")      # MJPG: intra-only, so repeats stay bit-exact
    frames = _read(t.path)
    for i in t.black_frames:
        assert frames[i].mean() < 8
    for i in t.frozen_frames:
        assert np.array_equal(frames[i], frames[i - 1])
    n_scene = t.frames + len(t.dropped_scene_frames)
    assert len(t.dropped_scene_frames) >= 2 and n_scene > t.frames


def test_every_sheet_has_its_own_texture():
    """Same finish = same kind and colour, never the same pixels."""
    from core.synthetic.clips import StackScene
    sc = StackScene(np.random.default_rng(0), 320, 240, SceneConfig(finish="painted"))
    a, b = sc.new_sheet().tex.astype(np.float32), sc.new_sheet().tex.astype(np.float32)
    assert abs(a.mean() - b.mean()) < 6                      # same colour
    hp = lambda x: x - cv2.GaussianBlur(x, (0, 0), 3)       # noqa: E731
    inner = (slice(10, -10), slice(10, -10), 1)              # the cut edges look alike, as they should
    r = np.corrcoef(hp(a)[inner].ravel(), hp(b)[inner].ravel())[0, 1]
    assert abs(r) < 0.2                                      # different fine texture


@pytest.mark.parametrize("finish", FINISHES)
def test_render_still(finish):
    rng = np.random.default_rng(7)
    img, top, boxes, meta = render_still(rng, (640, 480), n_sheets=3, finish=finish, arm="partial",
                                         max_angle_deg=10)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert len(boxes) == 3 and top == boxes[-1] and meta["finish"] == finish
    x1, y1, x2, y2 = top
    assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    assert len(meta["top_sheet_corners"]) == 4 and 0.0 <= meta["occluded_fraction"] <= 1.0
    empty, top0, boxes0, _ = render_still(rng, (320, 240), n_sheets=0, arm="none")
    assert top0 is None and boxes0 == []


def test_presets_cover_the_issue():
    ps = presets()
    assert {"first_sheet", "exact_on_top", "fast_feed", "hand_only", "arm_pause", "lighting", "shake_noise",
            "failing_stream", "idle"} <= set(ps)
    assert all(e.gap_s == 0.4 for e in ps["fast_feed"].events[1:])
    assert ps["first_sheet"].scene.initial_sheets == 0
    d = demo_spec()
    assert (d.width, d.height) in ((960, 540), (1280, 720))


def test_cli_synth(tmp_path):
    r = subprocess.run([sys.executable, "-m", "core", "synth", "--out", str(tmp_path), "--preset", "first_sheet",
                        "--width", "160", "--height", "120", "--fps", "10", "--codec", "mp4v"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out[0]["name"] == "first_sheet" and out[0]["expected_count"] == 1
    assert (tmp_path / "first_sheet.mp4").exists() and (tmp_path / "first_sheet.json").exists()
    bad = subprocess.run([sys.executable, "-m", "core", "synth", "--out", str(tmp_path), "--preset", "nope"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown preset" in bad.stderr and "Traceback" not in bad.stderr
