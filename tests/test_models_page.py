"""Models page through Streamlit's AppTest on the real app (app.py, real database, real
registry with the shipped detector, real training child process): engineer gate, versions
table, activate / roll back, and a background training job that survives a page reload and
can be cancelled. (AppTest cannot drive st.file_uploader; the upload path's validation is
covered in test_models.py on the same Registry methods the page calls.)"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = "gate-4321"


def _open(signed_in: bool = True):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/models.py")
    at.run()
    if signed_in:
        at.text_input(key="engineer_name").input("Budi")
        at.text_input(key="engineer_pin").input(PIN)
        next(b for b in at.button if b.label == "Sign in").click()
        at.run()
    return at


@pytest.fixture
def app_env(data_dir, monkeypatch):
    import streamlit as st
    monkeypatch.setenv("MSM_ENGINEER_PIN", PIN)
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _button(at, label: str):
    for b in at.button:
        if b.label == label:
            return b
    raise AssertionError(f"no button {label!r} ({[b.label for b in at.button]})")


def test_gate_then_versions_and_activation(app_env):
    at = _open(signed_in=False)
    assert not at.exception
    assert "Engineer access" in [h.value for h in at.subheader] and not at.dataframe
    at = _open()
    assert not at.exception, at.exception
    df = at.dataframe[0].value
    # both shipped models are listed, each the active version of its task
    assert sorted(df["Name"]) == ["defect_yolo11n", "metal_sheet"] and list(df["Active"]) == [True, True]   # a check box, no emoji font needed
    sheet = df[df["Name"] == "metal_sheet"]
    assert float(str(sheet["mAP50"].iloc[0]).replace(",", ".")) > 0.5
    _button(at, "Roll back").click()
    at.run()
    assert any("oldest version" in e.value for e in at.error), [e.value for e in at.error]
    _button(at, "Activate").click()
    at.run()
    assert not at.exception and any("is active" in s.value for s in at.success)
    logs = at.session_state["_ctx"].db
    from sqlalchemy import select

    from core.platform.storage import UserLogRow
    with logs.session() as s:
        assert any("activated by Budi" in r.message for r in s.scalars(select(UserLogRow)))


@pytest.mark.slow
def test_training_job_survives_reload_and_cancels(app_env):
    at = _open()
    inputs = {t.label: t for t in at.text_input}
    inputs["Dataset"].input("synthetic:12")
    nums = {n.label: n for n in at.number_input}
    nums["Epochs"].set_value(200)
    nums["Image size"].set_value(64)
    nums["Batch"].set_value(4)
    _button(at, "Start training").click()
    at.run()
    assert not at.exception, at.exception
    # a reload = a fresh browser session on the same app process: the job is still there
    deadline = time.time() + 240
    while True:
        at2 = _open()
        md = " ".join(m.value for m in at2.markdown)
        if "running" in md and at2.get("plotly_chart"):
            break
        assert time.time() < deadline, md
        time.sleep(2)
    assert "Latest training job" in md
    _button(at2, "Cancel training").click()
    at2.run()
    from core.platform.jobs import JobRunner  # noqa: F401  (the runner lives in app.py's cache)
    runner = at2.session_state["_ctx"].jobs
    job = runner.latest("train", 1)[0]
    assert runner.wait(job.id, 60).status == "cancelled"


def test_defect_threshold_table_shows_the_shipped_per_class_confidences(app_env):
    """The shipped locator's per-class confidences (weights/manifest.json, chosen for a
    stated precision on the selection split) with precision / recall per split."""
    import json
    at = _open()
    assert not at.exception, at.exception
    assert "Defect thresholds" in [h.value for h in at.subheader]
    table = next(d.value for d in at.dataframe if "Class" in d.value.columns)
    shipped = json.loads((ROOT / "weights" / "manifest.json").read_text())["files"]["defect_yolo11n.pt"]
    conf = shipped["metrics"]["class_thresholds"]["conf"]
    assert sorted(table["Class"]) == sorted(conf) and set(table["Set by"]) == {"Model"}
    row = table[table["Class"] == "patches"].iloc[0]
    assert float(str(row["Confidence"]).replace(",", ".")) == pytest.approx(conf["patches"], abs=0.006)
    assert {"Precision (val)", "Recall (val)", "Precision (selection)"} <= set(table.columns)
