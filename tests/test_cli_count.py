"""``python -m core count`` — the exact CLI contract other tools parse, and bad input."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.synthetic.clips import ClipSpec, Event, Nuisances, SceneConfig, render_clip

from needs import need

ROOT = Path(__file__).resolve().parent.parent


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "core", "count", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    spec = ClipSpec(width=320, height=240, fps=15, seed=9, scene=SceneConfig(initial_sheets=1),
                    events=[Event("sheet"), Event("hand"), Event("sheet", gap_s=0.4)], nuisances=Nuisances())
    return render_clip(spec, tmp_path_factory.mktemp("cli") / "clip.mp4")


def test_contract_exact(clip):
    r = run(clip.path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)                       # ONE JSON object, nothing else on stdout
    assert r.stdout.strip().count("\n") == 0
    assert set(out) == {"count", "events", "frames", "fps"}
    assert out["count"] == 2 == len(out["events"])
    assert out["frames"] == clip.frames and out["fps"] == 15.0
    for i, (ev, gt) in enumerate(zip(out["events"], clip.sheet_events), 1):
        assert set(ev) == {"index", "frame", "t"} and ev["index"] == i
        assert isinstance(ev["frame"], int) and ev["t"] == pytest.approx(ev["frame"] / 15.0, abs=1e-3)
        assert 0 <= ev["frame"] - gt.stable_frame <= 7    # ≤ 500 ms at 15 fps
    assert "sheets in" in r.stderr                    # logs go to stderr


def test_details_roi_config(clip, tmp_path):
    r = run(clip.path, "--details", "--roi", "10,10,310,230")
    out = json.loads(r.stdout)
    assert out["count"] == 2 and {"confidence", "reason", "box", "wall_time"} <= set(out["events"][0])
    # issue 12: the cues behind each count, under new keys only
    ev = out["events"][0]
    assert {"tex_area", "tone_area", "outline", "carried", "swept"} <= set(ev["cues"])
    assert ev["decided_by"] and set(ev["decided_by"]) <= set(ev["cues"])
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"counting": {"settle_s": 0.25, "motion_sensitivity": 0.6}}))
    assert json.loads(run(clip.path, "--config", cfg).stdout)["count"] == 2
    cfg.write_text("{not json")
    r = run(clip.path, "--config", cfg)
    assert r.returncode == 2 and "not valid JSON" in r.stderr


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


@pytest.mark.parametrize("kind", ["missing", "zero", "text", "url", "roi", "range"])
def test_bad_input_one_line_exit_2(tmp_path, clip, kind):
    if kind == "missing":
        args = [tmp_path / "nope.mp4"]
    elif kind == "zero":
        (tmp_path / "z.mp4").write_bytes(b"")
        args = [tmp_path / "z.mp4"]
    elif kind == "text":
        (tmp_path / "t.mp4").write_text("hello, not a video")
        args = [tmp_path / "t.mp4"]
    elif kind == "url":
        args = [f"rtsp://127.0.0.1:{_closed_port()}/cam"]
    elif kind == "roi":
        args = [clip.path, "--roi", "1,2,3"]
    else:
        args = [clip.path, "--sensitivity", "7"]
    r = run(*args, timeout=60)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr


def test_help_lists_count():
    r = subprocess.run([sys.executable, "-m", "core", "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0 and "count" in r.stdout and "synth" in r.stdout


@pytest.mark.rtsp
def test_count_over_rtsp(tmp_path):
    """The same contract on a real GStreamer RTSP server (real time, the stream ends with
    the clip; the CLI retries briefly, then prints the result)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from core.bench.rtsp_server import RtspServer, available
    need(available(), "GStreamer RTSP server bindings missing: run .ci/system-deps.sh")
    spec = ClipSpec(width=320, height=240, fps=15, seed=12, scene=SceneConfig(initial_sheets=1), lead_in_s=1.0,
                    tail_s=1.5, events=[Event("sheet"), Event("hand"), Event("sheet", gap_s=0.6)])
    truth = render_clip(spec, tmp_path / "cam.mp4")
    with RtspServer(Path(truth.path)) as srv:
        r = run(srv.url, timeout=90)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) == {"count", "events", "frames", "fps"}
    assert out["count"] == 2 and out["frames"] > 0.8 * truth.frames, out


def test_counting_a_file_converts_only_the_frames_the_engine_keeps(monkeypatch):
    """Issue 12 throughput: ``count_video`` reads files as decoded planes; a whole frame is
    converted to BGR only for a background, a decision or a capture, and the counts are
    those of the engine fed OpenCV's converted frames."""
    import cv2

    from core.counting.engine import CountingEngine
    from core.counting.frames import YuvFrame
    from core.live.count import count_video
    from core.platform.settings import CountingSettings
    calls = []
    real = YuvFrame.bgr

    def counting_bgr(self):
        if self._bgr is None:
            calls.append(1)
        return real(self)
    monkeypatch.setattr(YuvFrame, "bgr", counting_bgr)
    r = count_video("data/demo/demo.mp4")
    eng = CountingEngine(CountingSettings())
    cap = cv2.VideoCapture("data/demo/demo.mp4")
    ref, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        ev = eng.update(img, i, i / r.fps)
        if ev is not None:
            ref.append(ev.frame)
        i += 1
    assert r.count == 9 and r.frames == i
    assert [e.frame for e in r.events] == ref
    decisions = len(eng.decisions)
    assert 0 < len(calls) <= 2 * decisions + 2 < r.frames / 10, (len(calls), decisions, r.frames)
