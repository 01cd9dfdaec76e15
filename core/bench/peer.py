"""The peer counter for the benchmark: frame-by-frame YOLO + tracker, region counting.

This is how counting is usually done with Ultralytics (``solutions.ObjectCounter``): run the
detector on every frame, track boxes with ByteTrack, and count each track ID once when its
centroid is inside the counting region (a polygon) with a previous position on record. It
uses the project's trained ``metal_sheet`` detector and the same counting rule as
``ObjectCounter`` (re-implemented here with OpenCV's point-in-polygon instead of shapely,
and with ONNX Runtime inference through :class:`core.models.manager.YoloRunner`).

``python -m core bench count`` (the counting engine's benchmark) runs it side by side with
the stacking state machine on the same clips and prints both accuracies and the throughput ratio.

Example:
    >>> from core.bench.peer import peer_count, peer_run
    >>> n = peer_count("data/demo/demo.mp4")   # doctest: +SKIP
    >>> r = peer_run("clip.mp4")               # doctest: +SKIP
    >>> r.count, r.fps                         # doctest: +SKIP
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Optional, Sequence

import numpy as np

from core.platform.log import get

log = get("peer")


@dataclass
class PeerResult:
    count: int
    frames: int
    seconds: float
    tracks: int                       # distinct track IDs seen
    counted_ids: list[int] = field(default_factory=list)
    count_frames: list[int] = field(default_factory=list)   # frame index of each count

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_weights() -> Optional[Path]:
    """The active ``sheet`` model from the registry, else ``weights/metal_sheet.pt``; None when neither."""
    from core.platform.paths import Paths
    paths = Paths.from_env()
    try:
        from core.models.manager import Registry
        from core.platform.storage import Database
        mv = Registry(Database(), paths).active("sheet")
        if mv is not None:
            return mv.path
    except Exception as e:  # the bench must still run without a database
        log.debug("registry unavailable: %s", e)
    p = paths.weights / "metal_sheet.pt"
    return p if p.exists() else None


def _tracker_args(frame_rate: float) -> SimpleNamespace:
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml
    cfg = YAML.load(check_yaml("bytetrack.yaml"))
    return IterableSimpleNamespace(**cfg)


def _in_polygon(poly: np.ndarray, pt: tuple[float, float]) -> bool:
    import cv2
    return cv2.pointPolygonTest(poly, (float(pt[0]), float(pt[1])), False) >= 0


class RegionCounter:
    """``ObjectCounter``'s polygon rule: a track is counted once, the first time its centroid
    is inside the region while the track has a previous position; IDs the tracker retires
    are forgotten (so memory stays bounded on a 24/7 stream)."""

    def __init__(self, region: Sequence[tuple[float, float]]):
        self.region = np.asarray(region, dtype=np.float32).reshape(-1, 1, 2)
        self.count = 0
        self.counted_ids: set[int] = set()
        self.history: dict[int, list[tuple[float, float]]] = {}
        self.all_ids: set[int] = set()
        self.count_frames: list[int] = []

    def update(self, tracks: np.ndarray, frame_idx: int) -> None:
        for row in tracks:
            x1, y1, x2, y2, tid = row[:5]
            tid = int(tid)
            self.all_ids.add(tid)
            c = ((x1 + x2) / 2, (y1 + y2) / 2)
            h = self.history.setdefault(tid, [])
            h.append(c)
            del h[:-30]
            if len(h) > 1 and tid not in self.counted_ids and _in_polygon(self.region, c):
                self.count += 1
                self.counted_ids.add(tid)
                self.count_frames.append(frame_idx)

    def forget(self, ids: Sequence[int]) -> None:
        for i in ids:
            self.history.pop(int(i), None)
            self.counted_ids.discard(int(i))


def peer_run(video_path: str | Path, weights: str | Path | None = None, conf: float = 0.25,
             region: Optional[Sequence[tuple[float, float]]] = None,
             max_frames: Optional[int] = None) -> Optional[PeerResult]:
    """Count sheets in a video with detector + ByteTrack + region counting. ``region``
    defaults to the frame minus a 10 % border (where arms enter). None when no weights."""
    import cv2
    from ultralytics.engine.results import Boxes
    from ultralytics.trackers.byte_tracker import BYTETracker

    from core.models.manager import YoloRunner
    w = Path(weights) if weights else default_weights()
    if w is None or not w.exists():
        return None
    runner = YoloRunner.load(w)
    cap = cv2.VideoCapture(str(video_path))
    if not cap.isOpened():
        raise ValueError(f"cannot open video: {video_path}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    tracker = BYTETracker(_tracker_args(fps))
    counter: Optional[RegionCounter] = None
    n = 0
    t0 = time.perf_counter()
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if counter is None:
                h, wd = frame.shape[:2]
                counter = RegionCounter(region or [(0.1 * wd, 0.1 * h), (0.9 * wd, 0.1 * h),
                                                   (0.9 * wd, 0.9 * h), (0.1 * wd, 0.9 * h)])
            boxes = runner.predict(frame, conf=min(conf, 0.1))   # ByteTrack uses low-score boxes too
            data = np.array([[*b.xyxy, b.conf, b.cls] for b in boxes], dtype=np.float32).reshape(-1, 6)
            before = {t.track_id for t in tracker.removed_stracks}
            tracks = tracker.update(Boxes(data, frame.shape[:2]), frame)
            removed = [t.track_id for t in tracker.removed_stracks if t.track_id not in before]
            counter.update(tracks, n)
            if removed:
                counter.forget(removed)
            n += 1
            if max_frames and n >= max_frames:
                break
    finally:
        cap.release()
        runner.unload()
    secs = time.perf_counter() - t0
    if counter is None:
        return PeerResult(0, 0, secs, 0)
    return PeerResult(counter.count, n, round(secs, 3), len(counter.all_ids), sorted(counter.counted_ids),
                      counter.count_frames)


def peer_count(video_path: str | Path, weights: str | Path | None = None) -> Optional[int]:
    """Sheets counted by the peer in ``video_path``; None when no sheet detector exists."""
    r = peer_run(video_path, weights)
    return None if r is None else r.count
