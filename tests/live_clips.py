"""Small generated stacking clips for the live-monitoring tests (worker, RTSP, crash
resume, page). Low resolution and frame rate keep them fast on a shared 2-core box."""
from __future__ import annotations

import time
from pathlib import Path

import cv2

from core.synthetic.clips import ClipSpec, ClipTruth, Event, SceneConfig, render_clip


def sheets_clip(path: Path, n_sheets: int = 3, hand: bool = True, fps: float = 10.0, seed: int = 11,
                gap_s: float = 1.0, tail_s: float = 2.0, lead_in_s: float = 1.0,
                width: int = 320, height: int = 240) -> ClipTruth:
    """``n_sheets`` placed into an empty bin (one hand-only touch after the first)."""
    events = []
    for i in range(n_sheets):
        events.append(Event("sheet", gap_s=gap_s))
        if hand and i == 0:
            events.append(Event("hand", gap_s=gap_s))
    spec = ClipSpec(width=width, height=height, fps=fps, seed=seed, events=events, lead_in_s=lead_in_s,
                    tail_s=tail_s, codec="mp4v", scene=SceneConfig(finish="brushed", floor="concrete",
                                                                  container="bin"), name=path.stem)
    return render_clip(spec, path)


def read_frames(path: str) -> list:
    """Every frame of a video file, in order (BGR)."""
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            cap.release()
            return out
        out.append(f)


def split_clip(src: Path, at_frame: int, first: Path, second: Path) -> tuple[int, int]:
    """Cut a clip into [0, at_frame) and [at_frame, end) — a camera that went away in
    between and came back on the same (continuing) scene."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    outs = [cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h)) for p in (first, second)]
    n = [0, 0]
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        k = 0 if i < at_frame else 1
        outs[k].write(frame)
        n[k] += 1
        i += 1
    cap.release()
    for o in outs:
        o.release()
    return n[0], n[1]


def wait_for(pred, timeout: float, every: float = 0.1, what: str = "condition"):
    """Poll ``pred`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
