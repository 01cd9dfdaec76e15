"""Session log: the PRD's JSON log from real database rows, validated against the schema."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import jsonschema
import pytest
from sqlalchemy import select

import core.reports as reports
from core.platform.storage import CaptureRow, CountEventRow, DefectRow, SessionRow
from core.synthetic.session import make_synthetic_session


def _validate(doc):
    jsonschema.Draft202012Validator.check_schema(reports.load_schema())
    jsonschema.validate(doc, reports.load_schema(), cls=jsonschema.Draft202012Validator)


def test_prd_example_fields_and_local_time(db, paths):
    t = datetime(2026, 11, 21, 7, 0, 1, tzinfo=timezone.utc)  # 14:00:01 WIB
    with db.session() as s:
        s.add(SessionRow(id="A1", name="Batch-A", target=50, count=50, status="finished",
                         folder="2026-11-21/A1", started_at=t, finished_at=t))
        s.flush()
        c = CaptureRow(session_id="A1", index=1, path="2026-11-21/A1/captures/sheet_0001.jpg", created_at=t)
        s.add(c)
        s.flush()
        s.add(DefectRow(capture_id=c.id, type="scratch", score=0.9, x1=1, y1=2, x2=30, y2=40,
                        crop_path="2026-11-21/A1/crop_01.png", mask_path="2026-11-21/A1/masks/m1.png"))
        s.add(CountEventRow(session_id="A1", kind="manual", delta=-1, count_after=50, wall_time=t,
                            reason="arm counted", user="op"))
    doc = reports.build_session_log(db, "A1")  # tz from settings: Asia/Jakarta by default
    assert doc["session_id"] == "A1" and doc["count"] == 50
    assert doc["timestamp"] == "2026-11-21T14:00:01+07:00"
    assert doc["defects_found"][0]["type"] == "scratch"
    assert doc["defects_found"][0]["file"] == "crop_01.png"
    assert doc["defects_found"][0]["mask"] == "masks/m1.png"
    assert doc["defects_found"][0]["bbox"] == [1.0, 2.0, 30.0, 40.0]
    assert doc["events"][0]["reason"] == "arm counted" and doc["events"][0]["kind"] == "manual"
    assert doc["captures"][0]["review"] == "pending"
    assert doc["summary"]["manual_corrections"] == 1
    _validate(doc)
    # another zone on request
    assert reports.build_session_log(db, "A1", "UTC")["timestamp"] == "2026-11-21T07:00:01+00:00"


def test_synthetic_session_log_validates_and_is_written_atomically(db, paths):
    sid = make_synthetic_session(db, paths, 12, name="Batch B")
    doc = reports.build_session_log(db, sid)
    _validate(doc)
    assert doc["summary"]["captures"] == 12 and doc["count"] == 11
    assert doc["summary"]["defects"] == 3 and len(doc["measurements"]) == 12
    assert doc["summary"]["rejected"] == 1
    out = reports.write_session_log(db, paths, sid)
    assert out.name == "session_log.json" and out.parent == paths.sessions / doc["folder"]
    on_disk = json.loads(out.read_text(encoding="utf-8"))
    assert on_disk["session_id"] == sid and on_disk["captures"][0]["file"] == "captures/sheet_0001.jpg"
    assert (out.parent / on_disk["defects_found"][0]["file"]).is_file()  # crop path resolves in the folder
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_schema_rejects_a_broken_log(db, paths):
    sid = make_synthetic_session(db, paths, 4)
    doc = reports.build_session_log(db, sid)
    for broken in ({**doc, "count": "50"}, {**doc, "timestamp": "2026-11-21 14:00"},
                   {k: v for k, v in doc.items() if k != "defects_found"},
                   {**doc, "defects_found": [{"type": "x", "file": "../../etc/passwd", "capture_index": 1,
                                              "bbox": [0, 0, 1, 1], "score": 0.5}]}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, reports.load_schema(), cls=jsonschema.Draft202012Validator)


def test_unknown_session_is_a_clear_error(db):
    with pytest.raises(reports.ReportError, match="unknown session: nope"):
        reports.build_session_log(db, "nope")


def test_log_of_a_real_session_lifecycle(db, paths):
    """The product's own modules make the rows (start, counts with captures, a manual
    correction, a QA reject, finish); finish writes the log and it validates."""
    import numpy as np

    from core.live import capture, sessions
    from core.qa.defects import set_review
    st = sessions.start_session(db, paths, "Batch Real", 3)
    img = np.full((60, 80, 3), 120, np.uint8)
    caps = [capture.record_count(db, paths, st.id, capture.CountInput(frame=f, image=img, box=[5, 5, 70, 50],
                                                                     confidence=0.9, t=f / 30))
            for f in (10, 40, 70)]
    sessions.correct_count(db, st.id, -1, "arm counted twice", user="op")
    with db.session() as s:
        cap_id = s.scalars(select(CaptureRow.id)
                           .where(CaptureRow.session_id == st.id, CaptureRow.index == 2)).one()
    set_review(db, cap_id, "rejected", "qa")
    sessions.finish_session(db, paths, st.id)
    doc = json.loads((paths.sessions / st.folder / "session_log.json").read_text(encoding="utf-8"))
    _validate(doc)
    assert doc["count"] == 2 and doc["target"] == 3 and doc["finish_alert"] == "under"
    assert [e["kind"] for e in doc["events"]] == ["auto", "auto", "auto", "manual"]
    assert doc["events"][-1]["reason"] == "arm counted twice" and doc["events"][0]["capture_index"] == 1
    assert [c["review"] for c in doc["captures"]] == ["pending", "rejected", "pending"]
    assert all((paths.sessions / st.folder / c["file"]).is_file() for c in doc["captures"])
    assert doc["captures"][0]["file"] == caps[0].path[len(st.folder) + 1:]       # relative to the session folder
