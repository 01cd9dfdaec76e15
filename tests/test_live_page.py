"""The Live Monitoring page under Streamlit's AppTest: bad inputs → clear messages and no
session; start → counts arrive from a generated clip (real worker, engine, DB) → over
target alert → finish → sound B state and the JSON log download.

Nothing is mocked: the app's cached owner starts the real worker process (issue 16); the
buttons' commands are acknowledged by it. The MJPEG video itself is checked in the browser test.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.live import sessions
from core.platform.storage import Database

from live_clips import sheets_clip

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture
def app(data_dir, tmp_path, monkeypatch):
    clip = tmp_path / "page.mp4"
    truth = sheets_clip(clip, n_sheets=3, hand=False, gap_s=0.6, tail_s=4.0, fps=10)
    monkeypatch.setenv("MSM_SOURCE", str(clip))
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    assert not at.exception, at.exception
    yield at, truth
    st.cache_resource.clear()      # on_release stops the worker process


def _acked(at, button) -> None:
    """Click ``button`` and rerun until the worker process acknowledged the command (the page
    shows "sent" meanwhile; a loaded machine may take a while)."""
    button.click()
    at.run()
    deadline = time.time() + 30
    while at.session_state["live_pending"] if "live_pending" in at.session_state else False:
        assert time.time() < deadline, "the command was never acknowledged"
        time.sleep(0.3)
        at.run()
    assert not at.exception, at.exception


def _start(at, name, target):
    at.text_input(key="live_name").set_value(name)
    at.text_input(key="live_target").set_value(target)
    _click(at, "START SESSION")


def _click_key(at, key: str) -> None:
    _acked(at, at.button(key=key))


def _click(at, label: str) -> None:
    _acked(at, [b for b in at.button if b.label == label][0])


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


@pytest.mark.parametrize("name,target,msg", [
    ("", "100", "Enter a session name."),
    ("Batch-A", "0", "The target must be greater than 0."),
    ("Batch-A", "-3", "The target must be greater than 0."),
    ("Batch-A", "1000000000", "The target is too large"),
    ("Batch-A", "abc", "The target must be a whole number."),
])
def test_bad_inputs_give_one_clear_message_and_no_session(app, name, target, msg):
    at, _ = app
    _start(at, name, target)
    errs = _errors(at)
    assert any(msg in e for e in errs), errs
    assert not any("Traceback" in e for e in errs)
    assert sessions.open_session(Database()) is None
    assert [b for b in at.button if b.label == "START SESSION"], "the start form must stay"


def _view(at, mode: str = "panel") -> dict:
    """What the page's self-updating view was drawn with (components v2: the browser fills
    the counter, state and log from it and from /status.json; tests/test_live_view_browser.py
    checks the DOM)."""
    import json
    for e in at.get("bidi_component"):
        d = json.loads(e.proto.json)
        if d.get("mode") == mode:
            return d
    raise AssertionError(f"no {mode} view on the page")


def _log(at) -> str:
    d = _view(at, "log")
    return "\n".join(d["labels"]["log_auto" if e["kind"] == "auto" else "log_fix"].format(
        time=e["time"], n=e["n"], d=f"{e['delta']:+d}", why=e["reason"]) for e in d["initial"]["log"])


def test_start_counts_arrive_over_target_alert_then_finish_sound_b(app):
    at, truth = app
    _start(at, "Batch ü/..", "2")
    db = Database()
    s = sessions.open_session(db)
    assert s is not None and s.name == "Batch ü/.." and s.target == 2
    deadline = time.time() + 30                  # the worker process may still be opening the clip
    while _view(at)["initial"]["source"]["status"] != "live" and time.time() < deadline:
        time.sleep(0.3)
        at.run()
    v = _view(at)
    assert v["initial"]["session"]["name"] == "Batch ü/.." and v["initial"]["session"]["status"] == "active"
    assert v["labels"]["active"] == "Monitoring active" and v["rendered"].startswith(s.id + "|active|")
    # Defect check is disabled while the session runs
    links = [e for e in at.get("page_link")]
    assert links and all(getattr(l.proto, "disabled", False) for l in links)

    deadline = time.time() + 90
    while time.time() < deadline:      # AppTest has no browser: rerunning stands in for the polling
        time.sleep(1.0)
        at.run()
        assert not at.exception, at.exception
        if at.session_state["live_count"] >= truth.expected_count:
            break
    assert at.session_state["live_count"] == truth.expected_count == 3
    v = _view(at)["initial"]["session"]
    assert (v["count"], v["target"]) == (3, 2), "counter must show 3 / 2 (the browser draws it red)"
    assert _view(at)["rendered"].endswith("|over|" + _view(at)["initial"]["last_command"])
    assert at.session_state["live_alert"] == "over_target"
    assert at.get("audio"), "the over-target alert sound must be on the page"
    log_text = _log(at)
    assert "Sheet #3 detected" in log_text and "Sheet #1 detected" in log_text

    [b for b in at.button if b.label == "FINISH SESSION"][0].click()
    at.run()
    assert sessions.open_session(db) is not None            # FINISH asks once first
    _click_key(at, "live_finish_yes")
    assert not at.exception, at.exception
    assert sessions.open_session(db) is None
    done = sessions.session_status(db, s.id)
    assert done.status == "finished" and done.finish_alert == "over"
    assert at.session_state["live_alert"] == "finish_over"
    assert any("Over target: 1 sheets too many." in e for e in _errors(at))
    assert at.get("audio"), "sound B must be on the page"
    assert at.get("download_button"), "the JSON log must be downloadable"
    assert [b for b in at.button if b.label == "START SESSION"], "ready for the next session"


def test_finish_under_target_gives_sound_a_and_corrections_show_in_the_log(app):
    at, _ = app
    _start(at, "Batch-U", "50")
    at.text_input(key="live_reason").set_value("sheet missed by the camera")
    _click(at, "+1")
    assert "Correction +1 → 1 (sheet missed by the camera)" in _log(at)
    _click(at, "−1")
    at.text_input(key="live_reason").set_value("")
    _click(at, "+1")
    assert any("Give a reason" in e for e in _errors(at))
    [b for b in at.button if b.label == "FINISH SESSION"][0].click()
    at.run()
    _click_key(at, "live_finish_yes")
    assert at.session_state["live_alert"] == "finish_under"
    assert any("Under target: 50 sheets missing." in w.value for w in at.warning)


def test_tabs_share_one_worker(app):
    at, _ = app
    at2 = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at2.session_state["lang"] = "en"
    at2.run()
    w1 = at.session_state["_ctx"].worker
    w2 = at2.session_state["_ctx"].worker
    assert w1 is w2 and w1.alive
