"""The Dashboard page under Streamlit's AppTest with the real app (database, job runner):
seeded sessions over several days, the sessions table and filters, the recap charts, and
[Generate Report] as a background job whose files a fresh page (a reload) offers.

Mocked: ``streamlit_webrtc.webrtc_streamer`` only (it cannot run under AppTest; the live
page is not under test here).
"""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from streamlit.testing.v1 import AppTest

from core.platform.storage import SessionRow, utcnow
from core.synthetic.session import make_synthetic_session

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def seeded(db, paths):
    now = utcnow()
    a = make_synthetic_session(db, paths, 6, name="Morning batch", started_at=now - timedelta(days=2),
                                       interval_s=60, seed=1)
    b = make_synthetic_session(db, paths, 5, name="Night batch", started_at=now - timedelta(days=1),
                                       interval_s=60, target=8, seed=2)
    old = make_synthetic_session(db, paths, 3, name="Old batch", started_at=now - timedelta(days=90),
                                         interval_s=60, seed=3)
    live = make_synthetic_session(db, paths, 2, name="Running batch", started_at=now - timedelta(minutes=5),
                                          interval_s=10, status="active", seed=4)
    return a, b, old, live


@pytest.fixture(autouse=True)
def fresh_app_cache(data_dir, monkeypatch):
    """A fresh database, worker and job runner for this test's data folder."""
    import streamlit as st
    monkeypatch.setenv("MSM_SOURCE", "none")
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()      # on_release stops the worker thread


def _app(monkeypatch):
    import streamlit_webrtc
    fake = SimpleNamespace(state=SimpleNamespace(playing=False))
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda *a, **k: fake)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/dashboard.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _table_names(at):
    df = at.dataframe[0].value
    return list(df["Name"])


def test_table_filters_and_charts(data_dir, monkeypatch, seeded):
    at = _app(monkeypatch)
    assert at.title[0].value == "Dashboard"
    # default range: last 30 days, every status → the 90-day-old session is left out
    assert _table_names(at) == ["Running batch", "Night batch", "Morning batch"]
    df = at.dataframe[0].value
    night = df[df["Name"] == "Night batch"].iloc[0]
    assert night["Target"] == 8 and night["Count"] == 4 and night["Status"] == "finished"
    assert night["Rejects"] == 0 and night["Defects"] == 1
    assert night["Started"].endswith("WIB")                     # plant local time with its zone
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sessions"] == "3" and metrics["Sheets counted"] == str(5 + 4 + 2)
    # recap charts: plotly figures (day/shift, per shift, target vs actual, defect types, reviews, timeline)
    charts = at.get("plotly_chart")
    assert len(charts) == 6
    specs = [json.loads(ch.proto.spec) for ch in charts]
    assert specs[0]["layout"]["title"]["text"] == "Sheets per day"
    assert {tr["name"] for tr in specs[2]["data"]} == {"Target", "Count"}
    assert list(specs[2]["data"][0]["x"]) == ["Morning batch", "Night batch", "Running batch"]
    # status filter
    at.multiselect(key="dash_status_en").set_value(["active"]).run()
    assert _table_names(at) == ["Running batch"]
    # a date range that holds only the old session
    old_day = (utcnow() - timedelta(days=90)).astimezone(ZoneInfo("Asia/Jakarta")).date()
    at.multiselect(key="dash_status_en").set_value(["active", "paused", "finished"])
    at.date_input(key="dash_range").set_value((old_day - timedelta(days=1), old_day + timedelta(days=1))).run()
    assert _table_names(at) == ["Old batch"]
    assert not at.exception


def test_generate_report_job_and_download_after_reload(data_dir, monkeypatch, seeded, db):
    a, b, _old, _live = seeded
    at = _app(monkeypatch)
    at.radio(key="dash_scope").set_value("session").run()
    at.selectbox(key="dash_report_session").select_index(1).run()   # newest first: Night batch
    at.multiselect(key="dash_formats").set_value(["xlsx", "json"]).run()
    at.button(key="dash_generate").click().run()
    assert not at.exception, at.exception
    runner = at.session_state["_ctx"].jobs
    job = runner.latest("report", 1)[0]
    assert runner.wait(job.id, timeout=60).status == "done", runner.get(job.id).message
    # a fresh page (reload) reads the finished job from the database and offers the files
    at2 = _app(monkeypatch)
    files = runner.get(job.id).result["files"]
    assert [f["format"] for f in files] == ["xlsx", "json"]
    wb = openpyxl.load_workbook(files[0]["path"])
    assert "Summary" in wb.sheetnames and wb["Summary"].cell(7, 1).value == b
    assert json.loads(Path(files[1]["path"]).read_text(encoding="utf-8"))["session_id"] == b
    assert any("Report ready" in s.value for s in at2.success)
    assert len(at2.get("download_button")) == 2
    with db.session() as s:
        assert s.get(SessionRow, b).exported_at is not None
        assert s.get(SessionRow, a).exported_at is None


def test_empty_range_says_so(data_dir, monkeypatch):
    at = _app(monkeypatch)
    assert any("No sessions in this date range" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_page_in_indonesian(data_dir, monkeypatch, seeded):
    import streamlit_webrtc

    from core.platform.i18n import translator
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer",
                        lambda *a, **k: SimpleNamespace(state=SimpleNamespace(playing=False)))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "id"
    at.run()
    at.switch_page("pages/dashboard.py")
    at.run()
    assert not at.exception, at.exception
    _ = translator("id")
    assert at.title[0].value == _("Dashboard")
    assert _("Name") in at.dataframe[0].value.columns
    assert at.button(key="dash_generate").label == _("Generate Report")
