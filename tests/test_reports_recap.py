"""Production recap: sessions table filters, sheets per day and per shift (plant time,
night shift across midnight), target vs actual, defect types, review rates."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import core.reports as reports
from core.platform.storage import CountEventRow, SessionRow
from core.synthetic.session import make_synthetic_session


@pytest.mark.parametrize("hh, mm, day, shift", [
    (5, 59, 20, "C"), (6, 0, 21, "A"), (13, 59, 21, "A"), (14, 0, 21, "B"), (21, 59, 21, "B"),
    (22, 0, 21, "C"), (23, 59, 21, "C"), (0, 0, 21, "C"),
])
def test_shift_boundaries(hh, mm, day, shift):
    d, sh = reports.shift_of(datetime(2026, 11, 21, hh, mm))
    assert (sh, d.day) == (shift, day - (1 if (hh, mm) == (0, 0) else 0))


def test_recap_counts_per_day_and_shift_with_corrections(db):
    wib = lambda d, h, m=0: datetime(2026, 11, d, h, m, tzinfo=timezone(timedelta(hours=7)))  # noqa: E731
    with db.session() as s:
        s.add(SessionRow(id="s1", name="S1", target=5, count=4, status="finished", folder="x/s1",
                         started_at=wib(20, 13, 50).astimezone(timezone.utc)))
        s.add(SessionRow(id="s2", name="S2", target=2, count=2, status="paused", folder="x/s2",
                         started_at=wib(21, 1).astimezone(timezone.utc)))
        n = 0
        for t in (wib(20, 13, 55), wib(20, 14, 5), wib(20, 14, 10), wib(20, 22, 30), wib(21, 2, 0)):
            n += 1
            s.add(CountEventRow(session_id="s1", kind="auto", delta=1, count_after=n, frame=n, wall_time=t))
        s.add(CountEventRow(session_id="s1", kind="manual", delta=-1, count_after=4, wall_time=wib(21, 2, 5),
                            reason="arm"))
        for i, t in enumerate((wib(21, 1, 10), wib(21, 7, 0)), 1):
            s.add(CountEventRow(session_id="s2", kind="auto", delta=1, count_after=i, frame=i, wall_time=t))
    rec = reports.production_recap(db, ["s1", "s2"], "Asia/Jakarta")
    assert rec.per_day == [{"day": "2026-11-20", "sheets": 5}, {"day": "2026-11-21", "sheets": 1}]
    assert rec.per_shift == [{"day": "2026-11-20", "shift": "A", "sheets": 1},
                             {"day": "2026-11-20", "shift": "B", "sheets": 2},
                             {"day": "2026-11-20", "shift": "C", "sheets": 2},   # 22:30, 02:00, -1 at 02:05, 01:10
                             {"day": "2026-11-21", "shift": "A", "sheets": 1}]
    assert rec.total_sheets == 6 == 4 + 2
    assert [(r["name"], r["target"], r["count"]) for r in rec.target_vs_actual] == [("S1", 5, 4), ("S2", 2, 2)]
    # the sessions table: local-day filter and status filter
    assert [r.id for r in reports.list_sessions(db, "2026-11-21", "2026-11-21", tz="Asia/Jakarta")] == ["s2"]
    assert [r.id for r in reports.list_sessions(db, None, None, ["finished"])] == ["s1"]
    assert [r.id for r in reports.list_sessions(db)] == ["s2", "s1"]


def test_recap_defects_and_review_rates(db, paths):
    a = make_synthetic_session(db, paths, 20)           # defects every 4th, rejects every 10th
    rec = reports.production_recap(db, [a])
    assert sum(rec.defect_types.values()) == 5
    assert rec.reviews == {"approved": 12, "rejected": 2, "pending": 6}
    assert rec.approve_rate == pytest.approx(12 / 14) and rec.reject_rate == pytest.approx(2 / 14)
    tl = reports.count_timeline(db, a)
    assert [e["count"] for e in tl][-2:] == [20, 19] and tl[-1]["kind"] == "manual"
    assert tl[0]["time"].utcoffset() == timedelta(hours=7)
    empty = reports.production_recap(db, [])
    assert empty.total_sheets == 0 and empty.approve_rate is None
