"""Local time everywhere: the database stores UTC; folders, the JSON log, log lines and
date stamps in names are plant-local with the zone; a session crossing local midnight
stays ONE session (one folder, one log, counts on both sides of midnight).

Everything is real (SQLite database, files on disk, core.live.sessions / core.live.capture /
core.reports). Only the clock is set: ``core.live.sessions.utcnow`` is patched so the session
starts at 23:50 WIB and finishes at 00:30 WIB the next day without waiting for midnight.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import numpy as np
import pytest

import core.reports as reports
from core.live import capture, sessions
from core.live.capture import CountInput
from core.platform import i18n
from core.platform.storage import CaptureRow, CountEventRow, SessionRow

UTC = timezone.utc
START = datetime(2026, 11, 21, 16, 50, tzinfo=UTC)        # 23:50 WIB, Saturday
FINISH = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)       # 00:30 WIB, Sunday
SHEETS = [datetime(2026, 11, 21, 16, 55, tzinfo=UTC), datetime(2026, 11, 21, 16, 59, 30, tzinfo=UTC),
          datetime(2026, 11, 21, 17, 0, 30, tzinfo=UTC), datetime(2026, 11, 21, 17, 20, tzinfo=UTC)]


def _frame(i: int) -> np.ndarray:
    img = np.full((60, 80, 3), 40 * i, np.uint8)
    img[10:50, 10:70] = 200
    return img


@pytest.fixture
def clock(monkeypatch):
    now = {"t": START}
    monkeypatch.setattr(sessions, "utcnow", lambda: now["t"])
    return now


def test_session_crossing_local_midnight_is_one_session(db, paths, clock):
    st = sessions.start_session(db, paths, "Night-C", "4")
    assert st.is_active
    for i, at in enumerate(SHEETS, start=1):
        r = capture.record_count(db, paths, st.id, CountInput(frame=i * 10, image=_frame(i), wall_time=at))
        assert r is not None and r.count == i
    clock["t"] = FINISH
    done = sessions.finish_session(db, paths, st.id)
    assert (done.count, done.finish_alert) == (4, "ok")

    with db.session() as s:
        rows = s.query(SessionRow).all()
        assert len(rows) == 1, "midnight must not split or open a session"
        row = rows[0]
        # the folder carries the plant's local START date (Saturday), not UTC's, not Sunday's
        assert row.folder == f"2026-11-21/{st.id}"
        caps = s.query(CaptureRow).order_by(CaptureRow.index).all()
        assert [c.index for c in caps] == [1, 2, 3, 4]
        assert all(c.path.startswith(row.folder + "/") for c in caps)
        events = s.query(CountEventRow).order_by(CountEventRow.id).all()
        local_days = {i18n.to_local(e.wall_time, "Asia/Jakarta").date().isoformat() for e in events}
        assert local_days == {"2026-11-21", "2026-11-22"}      # counts on both sides of midnight
        # the database keeps UTC (SQLite hands back naive values; they are UTC, not local)
        assert row.started_at.replace(tzinfo=UTC) == START

    # exactly one session folder on disk, holding every capture and the one JSON log
    folders = [p for p in paths.sessions.glob("*/*") if p.is_dir()]
    assert [p.relative_to(paths.sessions).as_posix() for p in folders] == [f"2026-11-21/{st.id}"]
    logs = list(paths.sessions.rglob(reports.LOG_NAME))
    assert logs == [folders[0] / reports.LOG_NAME]
    assert len(list(folders[0].glob("sheet_*_annotated.jpg"))) == 4

    data = json.loads(logs[0].read_text(encoding="utf-8"))
    assert data["timezone"] == "Asia/Jakarta"
    assert data["started_at"] == "2026-11-21T23:50:00+07:00"
    assert data["finished_at"] == "2026-11-22T00:30:00+07:00"
    assert data["count"] == 4 and data["summary"]["captures"] == 4
    times = [e["time"] for e in data["events"]]
    assert times == ["2026-11-21T23:55:00+07:00", "2026-11-21T23:59:30+07:00",
                     "2026-11-22T00:00:30+07:00", "2026-11-22T00:20:00+07:00"]

    # the production recap: the night shift (22–06) belongs to the day it started
    rec = reports.production_recap(db, [st.id])
    assert rec.per_day == [{"day": "2026-11-21", "sheets": 4}]
    assert rec.per_shift == [{"day": "2026-11-21", "shift": "C", "sheets": 4}]


def test_plant_zone_is_a_setting(db, paths, clock):
    """Another plant zone moves folder dates, JSON times and stamps with it."""
    s = db.load_settings()
    assert s.ui.timezone == "Asia/Jakarta"                    # the default
    s.ui.timezone = "Asia/Jayapura"                           # WIT, UTC+9
    db.save_settings(s, "test")
    clock["t"] = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)   # 00:30 WIT on the 22nd, 22:30 WIB on the 21st
    st = sessions.start_session(db, paths, "East", "1")
    with db.session() as x:
        assert x.get(SessionRow, st.id).folder.startswith("2026-11-22/")
    log = reports.build_session_log(db, st.id)
    assert log["timezone"] == "Asia/Jayapura" and log["started_at"] == "2026-11-22T00:30:00+09:00"
    assert i18n.plant_tz(db) == "Asia/Jayapura"
    assert i18n.local_now(i18n.plant_tz(db)).utcoffset().total_seconds() == 9 * 3600
    assert i18n.fmt_dt(clock["t"], i18n.plant_tz(db)).endswith(" WIT")


def test_log_lines_carry_plant_local_time_with_zone():
    from core.platform.log import PlantTimeFormatter
    f = PlantTimeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "Asia/Jakarta")
    rec = logging.LogRecord("msm.test", logging.INFO, __file__, 1, "sheet counted", None, None)
    rec.created = START.timestamp()
    assert f.format(rec) == "2026-11-21 23:50:00 WIB INFO msm.test: sheet counted"


def test_date_stamps_in_names_are_plant_local():
    # the stamp follows the zone it is given, not the server's (UTC) clock
    jkt, utc = i18n.local_stamp("%Y%m%d%H", "Asia/Jakarta"), datetime.now(UTC).strftime("%Y%m%d%H")
    assert jkt != utc and len(jkt) == 10
    assert i18n.zone("Not/AZone").key == "Asia/Jakarta"       # a bad zone never crashes a stamp
