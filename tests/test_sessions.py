"""Sessions, auto-capture and alert sounds on a real SQLite database and data folder."""
from __future__ import annotations

import json
import threading
import wave
from datetime import datetime, timezone

import numpy as np
import pytest
from sqlalchemy import func, select

from core.live import alerts, capture, sessions
from core.live.sessions import SessionError
from core.platform.settings import Settings
from core.platform.storage import CaptureRow, CountEventRow, SessionRow


def _ev(frame: int) -> capture.CountInput:
    img = np.full((90, 120, 3), 40, np.uint8)
    img[20:70, 30:100] = 200
    return capture.CountInput(frame=frame, image=img, box=(30, 20, 100, 70), confidence=0.93, t=frame / 10)


@pytest.mark.parametrize("name", ["", "   ", None])
def test_empty_name_is_refused_and_nothing_created(db, paths, name):
    with pytest.raises(SessionError, match="session name"):
        sessions.start_session(db, paths, name, 100)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(SessionRow)) == 0


@pytest.mark.parametrize("target,msg", [(0, "greater than 0"), (-5, "greater than 0"), ("-1", "greater than 0"),
                                        (10 ** 9, "too large"), ("1000000000", "too large"),
                                        ("abc", "whole number"), ("12.5", "whole number"), (2.5, "whole number"),
                                        ("", "Enter a target"), (True, "whole number")])
def test_bad_targets_are_refused_with_a_clear_message(db, paths, target, msg):
    with pytest.raises(SessionError, match=msg):
        sessions.start_session(db, paths, "Batch-A", target)
    assert sessions.open_session(db) is None


def test_target_text_is_accepted():
    assert sessions.validate_target(" 100 ") == 100
    assert sessions.validate_target(100.0) == 100


def test_free_text_name_gives_safe_folder_under_local_date(db, paths):
    s = sessions.start_session(db, paths, "Batch ü/../../etc", 5, tz="Asia/Jakarta")
    assert s.name == "Batch ü/../../etc"
    day, sid = s.folder.split("/")
    assert sid == s.id and ".." not in sid and "/" not in sid
    # the folder date is the plant's local date (WIB = UTC+7)
    assert day == s.started_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Jakarta")).strftime("%Y-%m-%d")
    assert (paths.sessions / day / sid).is_dir()
    # the date follows the zone: 20:30 UTC is already the next day in Jakarta
    late = datetime(2026, 11, 21, 20, 30, tzinfo=timezone.utc)
    assert sessions.session_folder("x-1", late, "Asia/Jakarta") == "2026-11-22/x-1"
    assert sessions.session_folder("x-1", late, "UTC") == "2026-11-21/x-1"


def test_one_open_session_at_a_time(db, paths):
    a = sessions.start_session(db, paths, "A", 3)
    with pytest.raises(SessionError, match="still open"):
        sessions.start_session(db, paths, "B", 3)
    sessions.finish_session(db, paths, a.id)
    b = sessions.start_session(db, paths, "B", 3)
    assert sessions.open_session(db).id == b.id


def test_pause_resume_finish_and_alerts(db, paths):
    s = sessions.start_session(db, paths, "Batch-A", 2)
    assert sessions.pause_session(db, s.id).status == "paused"
    # a paused session does not take automatic counts
    assert capture.record_count(db, paths, s.id, _ev(5)) is None
    with pytest.raises(SessionError):
        sessions.pause_session(db, s.id)
    assert sessions.resume_session(db, s.id).is_active
    for f in (10, 20, 30):
        capture.record_count(db, paths, s.id, _ev(f))
    st = sessions.session_status(db, s.id)
    assert st.count == 3 and st.over_target
    done = sessions.finish_session(db, paths, s.id)
    assert done.status == "finished" and done.finish_alert == "over" and done.finished_at is not None
    assert alerts.alert_kind_for_finish(done.count, done.target) == "finish_over"
    with pytest.raises(SessionError):
        sessions.finish_session(db, paths, s.id)
    with pytest.raises(SessionError):
        sessions.correct_count(db, s.id, 1, "late")
    assert capture.record_count(db, paths, s.id, _ev(40)) is None


def test_finish_writes_the_json_log(db, paths):
    s = sessions.start_session(db, paths, "Batch-A", 5)
    capture.record_count(db, paths, s.id, _ev(7))
    sessions.finish_session(db, paths, s.id)
    logs = list((paths.sessions / s.folder).glob("*.json"))
    assert logs, "no JSON log written on finish"
    data = json.loads(logs[0].read_text())
    assert data["count"] == 1 and data["session_id"] == s.id


def test_capture_writes_clean_and_annotated_files_and_commits(db, paths):
    s = sessions.start_session(db, paths, "Batch-A", 5)
    r = capture.record_count(db, paths, s.id, _ev(12))
    assert r.count == 1 and r.capture_index == 1 and r.frame == 12
    clean, ann = paths.sessions / r.path, paths.sessions / r.annotated_path
    assert clean.is_file() and ann.is_file()
    assert clean.parent == paths.sessions / s.folder
    import cv2
    a, b = cv2.imread(str(clean)), cv2.imread(str(ann))
    assert a.shape == b.shape == (90, 120, 3)
    assert np.abs(a.astype(int) - b.astype(int)).sum() > 0, "annotated copy has no drawing"
    assert not list(clean.parent.glob(".*.tmp")), "temp files left behind"
    with db.session() as ss:
        ev = ss.scalars(select(CountEventRow)).one()
        assert ev.kind == "auto" and ev.frame == 12 and ev.capture_id == r.capture_id and ev.confidence == 0.93
        assert ss.get(SessionRow, s.id).source_position == 12


def test_same_frame_is_never_counted_twice(db, paths):
    s = sessions.start_session(db, paths, "Batch-A", 5)
    assert capture.record_count(db, paths, s.id, _ev(50)).count == 1
    assert capture.record_count(db, paths, s.id, _ev(50)) is None
    # two writers racing on the same frame: exactly one wins
    results = []
    barrier = threading.Barrier(2)

    def go():
        barrier.wait()
        results.append(capture.record_count(db, paths, s.id, _ev(60)))

    ts = [threading.Thread(target=go) for _ in range(2)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert sum(r is not None for r in results) == 1
    assert sessions.session_status(db, s.id).count == 2
    with db.session() as ss:
        assert ss.scalar(select(func.count()).select_from(CaptureRow)) == 2


def test_manual_corrections_are_audited_and_captures_never_collide(db, paths):
    s = sessions.start_session(db, paths, "Batch-A", 5)
    capture.record_count(db, paths, s.id, _ev(1))
    capture.record_count(db, paths, s.id, _ev(2))
    with pytest.raises(SessionError, match="reason"):
        sessions.correct_count(db, s.id, -1, "  ")
    with pytest.raises(SessionError):
        sessions.correct_count(db, s.id, 5, "x")
    assert sessions.correct_count(db, s.id, -1, "double count", user="op").count == 1
    r = capture.record_count(db, paths, s.id, _ev(3))
    assert r.count == 2 and r.capture_index == 3   # count went back, capture numbers never do
    feed = sessions.recent_log(db, s.id)
    assert [(x.kind, x.delta, x.count_after) for x in feed] == [("auto", 1, 2), ("manual", -1, 1),
                                                                  ("auto", 1, 2), ("auto", 1, 1)]
    assert feed[1].reason == "double count" and feed[1].user == "op"
    sessions.correct_count(db, s.id, -1, "x")
    sessions.correct_count(db, s.id, -1, "x")
    with pytest.raises(SessionError, match="below 0"):
        sessions.correct_count(db, s.id, -1, "x")


def test_default_sounds_are_made_and_custom_ones_win(paths):
    for kind in alerts.KINDS:
        p = alerts.sound_path(kind, Settings(), paths)
        with wave.open(str(p)) as w:
            assert w.getnframes() / w.getframerate() > 0.3
    s = Settings()
    custom = paths.sounds / "mine.mp3"
    custom.write_bytes(b"ID3fake")
    s.alerts.finish_under_sound = "mine.mp3"
    assert alerts.sound_path("finish_under", s, paths) == custom
    s.alerts.finish_under_sound = "../../etc/passwd"
    assert alerts.sound_path("finish_under", s, paths).name == "default_finish_under.wav"
    assert alerts.alert_kind_for_finish(5, 5) is None
    assert alerts.alert_kind_for_finish(4, 5) == "finish_under"


def test_no_session_when_the_disk_is_nearly_full(db, paths):
    s = Settings()
    s.storage.min_free_gb = 1e9           # more than any disk has
    db.save_settings(s)
    with pytest.raises(SessionError, match="disk space"):
        sessions.start_session(db, paths, "Batch-A", 10)
    assert sessions.open_session(db) is None
