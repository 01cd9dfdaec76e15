"""The counting worker on real generated clips, the real engine, DB and files.

Nothing is mocked: frames come from video files through ``core.live.sources``, counts go through
``core.counting.engine`` into SQLite and the session folder.
"""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from core.live import sessions
from core.live.worker import CountingWorker, UploadError, check_source_uri, validate_upload
from core.platform.storage import CaptureRow, CountEventRow

from live_clips import sheets_clip, wait_for


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    p = d / "three.mp4"
    truth = sheets_clip(p, n_sheets=3)
    return p, truth


def _run_once(db, paths, clip_path, **kw) -> CountingWorker:
    w = CountingWorker(db, paths, source=str(clip_path), realtime=False, loop=False, **kw)
    return w


def _play_session(w: CountingWorker, name: str, target: int, timeout: float = 90):
    """Open a session, play the worker's file to its end, stop; the session row."""
    s = w.start_session(name, target)
    w.start()
    try:
        wait_for(lambda: w.status().source_status == "ended", timeout, what="the clip to end")
    finally:
        w.stop()
    return s


def test_worker_counts_a_clip_exactly_with_captures(db, paths, clip):
    path, truth = clip
    w = _run_once(db, paths, path)
    s = _play_session(w, "Batch-A", 10)
    st = w.status()
    assert not w.alive
    assert st.count == truth.expected_count == 3
    assert st.frames == truth.frames, "every frame must be processed"
    assert sessions.session_status(db, s.id).count == 3
    with db.session() as ss:
        caps = ss.scalars(select(CaptureRow).where(CaptureRow.session_id == s.id)).all()
        frames = [e.frame for e in ss.scalars(select(CountEventRow).where(CountEventRow.kind == "auto"))]
    assert len(caps) == 3 and len(set(frames)) == 3
    for c in caps:
        assert (paths.sessions / c.path).is_file() and (paths.sessions / c.annotated_path).is_file()
    # each count is decided after its sheet is in (frames are source positions here)
    stable = [e.stable_frame for e in truth.sheet_events]
    for f, sf in zip(sorted(frames), stable):
        assert sf <= f <= sf + 10, (frames, stable)


def test_a_watching_browser_never_costs_a_frame(db, paths, clip):
    """A viewer hammering the live JPEG from another thread: still every frame processed
    and the exact count (display is lazy and never blocks the loop)."""
    path, truth = clip
    w = _run_once(db, paths, path)
    w.start_session("Batch-B", 10)
    stop = threading.Event()
    jpegs = []

    def viewer():
        while not stop.is_set():
            j = w.latest_jpeg(max_width=320)
            if j:
                jpegs.append(len(j))
            time.sleep(0.001)

    t = threading.Thread(target=viewer)
    t.start()
    w.start()
    try:
        wait_for(lambda: w.status().source_status == "ended", 90, what="the clip to end")
    finally:
        stop.set()
        t.join()
        w.stop()
    assert jpegs and all(n > 1000 for n in jpegs)
    assert w.status().frames == truth.frames
    assert w.status().count == truth.expected_count


def test_no_session_means_no_counts_and_pause_stops_counting(db, paths, clip):
    path, _truth = clip
    w = _run_once(db, paths, path)
    w.start()
    try:
        wait_for(lambda: w.status().source_status == "ended", 90, what="the clip to end")
    finally:
        w.stop()
    with db.session() as ss:
        assert ss.scalar(select(func.count()).select_from(CountEventRow)) == 0
    # a paused session takes no automatic counts
    w2 = _run_once(db, paths, path)
    s = w2.start_session("Paused", 5)
    w2.pause()
    w2.start()
    try:
        wait_for(lambda: w2.status().source_status == "ended", 90, what="the clip to end")
    finally:
        w2.stop()
    assert sessions.session_status(db, s.id).count == 0
    assert not w2.status().monitoring


def test_pause_for_analysis_holds_the_loop_and_is_refused_while_counting(db, paths, clip):
    path, _ = clip
    w = CountingWorker(db, paths, source=str(path), realtime=True, loop=True)
    w.start()
    try:
        wait_for(lambda: w.status().frames > 3, 30, what="frames")
        assert w.pause_for_analysis() is True
        st = w.status()
        assert st.paused_for_analysis and st.source_status == "idle"
        n = st.frames
        time.sleep(0.6)
        assert w.status().frames == n, "frames still pulled during defect analysis"
        w.resume_after_analysis()
        wait_for(lambda: w.status().frames > n, 30, what="frames after analysis")
        w.start_session("Busy", 5)
        assert w.pause_for_analysis() is False
        assert not w.status().paused_for_analysis
    finally:
        w.stop()
    assert not w.alive


def test_manual_corrections_through_the_worker(db, paths, clip):
    path, _ = clip
    w = CountingWorker(db, paths, source=str(path), realtime=True, loop=True)
    w.start()
    try:
        s = w.start_session("Batch-C", 3)
        before = w.status().counts_version
        assert w.correct(+1, "missed").count == 1
        assert w.status().counts_version > before and w.status().count == 1
        with pytest.raises(sessions.SessionError):
            w.correct(+1, "")
        with pytest.raises(sessions.SessionError):
            w.set_source("demo")            # no source change while a session is open
        done = w.finish()
        assert done.finish_alert == "under" and w.status().session is None
        assert sessions.open_session(db) is None and done.id == s.id
    finally:
        w.stop()


# --- bad inputs -----------------------------------------------------------------------
def test_bad_uploads_are_refused_with_one_clear_message(paths, clip, tmp_path):
    path, _ = clip
    with pytest.raises(UploadError, match="empty"):
        validate_upload(b"", "a.mp4", paths, 500)
    with pytest.raises(UploadError, match="not a video container"):
        validate_upload(b"hello, this is text\n" * 50, "notes.mp4", paths, 500)
    with pytest.raises(UploadError, match="Not a video file"):
        validate_upload(b"hello", "notes.txt", paths, 500)
    data = path.read_bytes()
    with pytest.raises(UploadError, match="too large"):
        validate_upload(data, "big.mp4", paths, max_mb=len(data) / 2 / 2**20)
    # an MP4 header followed by garbage: a container, but no decodable frames
    with pytest.raises(UploadError, match="cannot be decoded|no frames"):
        validate_upload(data[:32] + b"\x00" * 5000, "broken.mp4", paths, 500)
    assert not [p for p in paths.uploads.iterdir() if p.suffix == ".mp4"], "refused uploads must not stay"
    ok = validate_upload(data, "Batch A ü.mp4", paths, 500)
    assert ok.parent == paths.uploads and ok.read_bytes() == data and " " not in ok.name


def test_bad_source_addresses(paths):
    # the same validator as Settings (core.live.sources.validate_stream_url)
    with pytest.raises(UploadError, match="must start with rtsp://"):
        check_source_uri("ftp://host/x", paths)
    with pytest.raises(UploadError, match="no host"):
        check_source_uri("rtsp://", paths)
    with pytest.raises(UploadError, match="spaces"):
        check_source_uri("http://example.com/x y", paths)
    with pytest.raises(UploadError, match="No such video file"):
        check_source_uri("/nowhere/clip.mp4", paths)
    fake = paths.uploads / "fake.mp4"
    fake.write_text("not a video at all\n")
    with pytest.raises(UploadError, match="cannot be decoded"):
        check_source_uri(str(fake), paths)
    empty = paths.uploads / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(UploadError, match="cannot be decoded"):
        check_source_uri(str(empty), paths)


def test_rtsp_to_nowhere_shows_the_outage_and_never_crashes(db, paths):
    """Port 9 on 127.0.0.1 refuses connections: the worker keeps retrying with backoff,
    says so, stays alive and stops promptly."""
    w = CountingWorker(db, paths, realtime=True)
    w.set_source("rtsp://127.0.0.1:9/nowhere")
    w.start()
    try:
        s = w.start_session("Blind", 5)     # allowed: the camera may come back
        wait_for(lambda: w.status().source_status in ("reconnecting", "error"), 30, what="the outage status")
        time.sleep(1.0)
        assert w.alive
        st = w.status()
        assert st.source_status in ("reconnecting", "error", "connecting") and st.count == 0
        assert not st.monitoring
    finally:
        t0 = time.monotonic()
        w.stop()
        assert time.monotonic() - t0 < 8
        assert not w.alive, "the worker thread must end even while the camera is unreachable"
    assert sessions.session_status(db, s.id).count == 0


def test_apply_settings_reaches_the_running_engine_without_a_restart(db, paths, clip):
    path, _ = clip
    w = CountingWorker(db, paths, source=str(path), realtime=True, loop=True)
    w.start()
    try:
        wait_for(lambda: w._engine is not None, 30, what="the engine")
        engine = w._engine
        new = db.load_settings()
        new.counting.motion_sensitivity = 0.9
        new.counting.settle_s = 0.4
        w.apply_settings(new)
        wait_for(lambda: engine.cfg.settle_s == 0.4, 10, what="the new settings in the engine")
        assert w._engine is engine, "settings must apply live, not by rebuilding the engine"
        assert engine.cfg.motion_sensitivity == 0.9
    finally:
        w.stop()


def test_every_decision_is_logged_with_its_cues_and_kept_for_teach_mode(db, paths, clip, caplog):
    """Issue 12: one live log line per decision (count or not) naming the cues that decided,
    and each decision stored with its cues (teach mode's examples)."""
    import logging

    from core.live import cycles
    path, truth = clip
    w = _run_once(db, paths, path)
    w.start_session("Batch-L", 10)
    with caplog.at_level(logging.INFO):
        w.start()
        try:
            wait_for(lambda: w.status().source_status == "ended", 90, what="the clip to end")
        finally:
            w.stop()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decision frame")]
    assert sum(" COUNT " in ln for ln in lines) == truth.expected_count == 3
    assert all(" by " in ln and "swept=" in ln and "tex_area=" in ln for ln in lines)
    kept = cycles.recent(db)
    assert len(kept) == len(lines) and sum(c.accepted for c in kept) == 3
    assert all("outline" in c.cues for c in kept)


def test_captures_and_live_view_outline_the_top_sheet_not_the_change(db, paths):
    """The engine's box is where the scene changed (the arm's sweep and shadows too: on the
    demo it reached the frame's right edge); the annotated capture and the live view draw
    the top sheet's outline, found on the clean frame by the measuring code."""
    import cv2
    import numpy as np

    from core.qa.measure import measure_pixels

    w = CountingWorker(db, paths, source="data/demo/demo.mp4", realtime=False, loop=False)
    s = _play_session(w, "Outline", 20, timeout=120)
    assert w.status().count == 9
    with db.session() as ss:
        caps = ss.scalars(select(CaptureRow).where(CaptureRow.session_id == s.id)).all()
    assert len(caps) == 9
    for c in caps:
        clean = cv2.imread(str(paths.sessions / c.path))
        ann = cv2.imread(str(paths.sessions / c.annotated_path))
        corners = np.array(measure_pixels(clean).corners_src_px)
        (x1, y1), (x2, y2) = corners.min(0), corners.max(0)
        ys, xs = np.nonzero(np.abs(ann.astype(int) - clean.astype(int)).max(2) > 60)
        assert len(xs) > 200, "nothing drawn"
        # everything drawn hugs the sheet (the label sits just above its top-left corner)
        assert x1 - 8 <= xs.min() and xs.max() <= x2 + 8, (c.index, xs.min(), xs.max(), x1, x2)
        assert y1 - 40 <= ys.min() and ys.max() <= y2 + 8, (c.index, ys.min(), ys.max(), y1, y2)
    # the live view: the last sheet's outline, nothing right of it (the old box ran to the edge)
    raw, shown = w.latest_frame(annotated=False), w.latest_frame(annotated=True)
    corners = np.array(measure_pixels(raw).corners_src_px)
    diff = np.abs(shown.astype(int) - raw.astype(int)).max(2) > 60
    right = int(corners[:, 0].max()) + 8
    assert diff[:, :right].sum() > 200 and diff[:, right:].sum() == 0
