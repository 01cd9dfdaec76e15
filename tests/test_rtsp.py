"""A real RTSP camera: GStreamer's RTSP server (system Python) on 127.0.0.1 serving a
generated clip as H.264. The worker counts it exactly; when the server is SIGKILLed
mid-clip and restarted, the worker reconnects, shows the outage, and counts nothing twice.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from core.bench.rtsp_server import RtspServer, available
from core.live import sessions
from core.live.worker import CountingWorker
from core.platform.storage import CountEventRow

from live_clips import sheets_clip, split_clip, wait_for
from needs import in_ci

pytestmark = [pytest.mark.rtsp, pytest.mark.slow,
              pytest.mark.skipif(not available() and not in_ci(),
                                 reason="GStreamer RTSP server bindings missing: run .ci/system-deps.sh")]


def _auto_frames(db, sid):
    with db.session() as s:
        return [e.frame for e in s.scalars(select(CountEventRow).where(CountEventRow.session_id == sid,
                                                                      CountEventRow.kind == "auto"))]


def test_rtsp_stream_is_counted_exactly(db, paths, tmp_path):
    truth = sheets_clip(tmp_path / "cam.mp4", n_sheets=2, hand=True, tail_s=2.5)
    with RtspServer(tmp_path / "cam.mp4") as srv:
        w = CountingWorker(db, paths, source=srv.url)
        s = w.start_session("RTSP-A", 5)
        w.start()
        try:
            wait_for(lambda: w.status().source_status == "live", 30, what="the stream to go live")
            wait_for(lambda: w.status().count >= truth.expected_count, 60, what="the counts")
            wait_for(lambda: w.status().source_status in ("reconnecting", "ended", "stalled"), 30,
                     what="the end of the stream")
            time.sleep(1.0)
        finally:
            w.stop()
    assert w.status().count == truth.expected_count == 2
    frames = _auto_frames(db, s.id)
    assert len(frames) == len(set(frames)) == 2


def test_server_killed_and_restarted_mid_clip(db, paths, tmp_path):
    """Sheets 1-2 → (camera dies during the idle gap, comes back) → sheets 3-4."""
    clip = tmp_path / "full.mp4"
    truth = sheets_clip(clip, n_sheets=4, hand=False, gap_s=2.5, tail_s=2.5)
    ev = truth.sheet_events
    # part 1 ends late in the idle gap between sheet 2 (scene stable) and sheet 3 (arm
    # enters); the server is killed as soon as sheet 2 is counted, i.e. while part 1 is
    # still streaming that idle gap (mid-clip). Part 2 is what the camera sees when it is back.
    cut = ev[2].enter_frame - 3
    assert cut - ev[1].stable_frame >= 15, "clip has no idle gap to cut in"
    n1, n2 = split_clip(clip, cut, tmp_path / "part1.mp4", tmp_path / "part2.mp4")
    assert n1 > 0 and n2 > 0
    srv = RtspServer(tmp_path / "part1.mp4")
    srv.start()
    w = CountingWorker(db, paths, source=srv.url)
    s = w.start_session("RTSP-B", 4)
    w.start()
    seen = set()
    try:
        wait_for(lambda: w.status().count >= 2, 60, what="the first two sheets")
        srv.kill()                                       # SIGKILL: the camera loses power
        wait_for(lambda: (seen.add(w.status().source_status) or
                          w.status().source_status in ("reconnecting", "stalled")), 30, what="the outage status")
        assert w.status().count == 2 and not w.status().monitoring
        time.sleep(2.0)
        assert w.alive
        srv.start(tmp_path / "part2.mp4")               # the camera is back, the scene continued
        wait_for(lambda: w.status().source_status == "live", 30, what="the reconnect")
        wait_for(lambda: w.status().count >= 4, 60, what="sheets 3 and 4")
        wait_for(lambda: w.status().source_status in ("reconnecting", "ended", "stalled"), 40,
                 what="the end of part 2")
        time.sleep(1.0)
    finally:
        w.stop()
        srv.kill()
    st = w.status()
    assert st.count == 4, f"expected exactly 4, got {st.count}"
    assert st.outages >= 1
    assert sessions.session_status(db, s.id).count == 4
    frames = _auto_frames(db, s.id)
    assert len(frames) == len(set(frames)) == 4
