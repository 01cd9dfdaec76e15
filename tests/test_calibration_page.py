"""The Calibration page through Streamlit's AppTest on the real app (app.py, real database):
the engineer gate, a frame from a session's capture, a reference line → K saved and
mirrored into the settings, bad inputs that keep the previous calibration, K typed
directly, camera geometry, and roll back from the history."""
from __future__ import annotations

from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = "cal-4321"


@pytest.fixture
def app(data_dir, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MSM_ENGINEER_PIN", PIN)
    st.cache_resource.clear()          # a fresh database (+ worker) for this test's data folder
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/calibration.py")
    at.run()
    yield at
    st.cache_resource.clear()


def _button(at, key: str):
    for b in at.button:
        if b.key == key:
            return b
    raise AssertionError(f"no button {key!r} ({[b.key for b in at.button]})")


def _sign_in(at):
    at.text_input(key="engineer_name").input("Budi")
    at.text_input(key="engineer_pin").input(PIN)
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    assert not at.exception, at.exception


def _db(at):
    return at.session_state["_ctx"].db


def _capture(at) -> None:
    """A session with one capture: a rendered sheet written where the worker would put it."""
    from core.platform.paths import Paths
    from core.platform.storage import CaptureRow, SessionRow
    from core.synthetic.stills import Camera, SheetScene, render
    r = render(SheetScene(length_mm=1200, width_mm=600, angle_deg=0), Camera(480, 360, 200, 2000), seed=1)
    p = Paths.from_env().sessions / "2026-01-01" / "batch-a-1"
    p.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(p / "sheet_0001.jpg"), r.image)
    with _db(at).session() as s:
        s.add(SessionRow(id="batch-a-1", name="Batch-A", target=5, folder="2026-01-01/batch-a-1"))
        s.flush()
        s.add(CaptureRow(session_id="batch-a-1", index=1, path="2026-01-01/batch-a-1/sheet_0001.jpg",
                         width=480, height=360))


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_gate_then_line_calibration_from_a_capture(app):
    at = app
    assert "Engineer access" in [h.value for h in at.subheader]
    assert not at.tabs                            # nothing of the page before signing in
    _sign_in(at)
    assert "Calibration" in [t.value for t in at.title]
    assert any("Not calibrated" in w.value for w in at.warning)
    _capture(at)
    at.radio(key="cal_src").set_value("capture").run()
    _button(at, "cal_take_capture").click().run()
    assert not at.exception, at.exception
    assert any("Frame: 480 × 360 px" in cap.value for cap in at.caption)

    # a zero-length line is refused; nothing is saved
    at.number_input(key="cal_len").set_value(1000.0).run()
    _button(at, "cal_line_save").click().run()
    errs = _errors(at)
    assert any("too short" in e and "previous calibration stays active" in e for e in errs), errs
    assert _db(at).load_settings().calibration.mm_per_px == 0

    # a real line: 400 px for 1000 mm → K = 2.5
    for k, v in (("cal_x1", 40.0), ("cal_y1", 100.0), ("cal_x2", 440.0), ("cal_y2", 100.0)):
        at.number_input(key=k).set_value(v)
    at.run()
    assert any("K = 2.5000 mm/px" in cap.value for cap in at.caption)   # the preview before saving
    _button(at, "cal_line_save").click().run()
    assert not _errors(at), _errors(at)
    assert any("Calibration saved: K = 2.5000" in s.value for s in at.success)
    assert _db(at).load_settings().calibration.mm_per_px == pytest.approx(2.5)

    # a length ≤ 0 and an absurd length are refused; K stays 2.5
    for bad, words in ((-5.0, "greater than 0"), (5e7, "not plausible")):
        at.number_input(key="cal_len").set_value(bad).run()
        _button(at, "cal_line_save").click().run()
        assert any(words in e for e in _errors(at)), _errors(at)
        assert _db(at).load_settings().calibration.mm_per_px == pytest.approx(2.5)


def test_manual_k_geometry_history_and_roll_back(app):
    at = app
    _sign_in(at)
    at.number_input(key="cal_k").set_value(0.5).run()
    _button(at, "cal_k_save").click().run()
    at.number_input(key="cal_k").set_value(0.8).run()
    _button(at, "cal_k_save").click().run()
    assert _db(at).load_settings().calibration.mm_per_px == pytest.approx(0.8)
    at.number_input(key="cal_k").set_value(0.0).run()
    _button(at, "cal_k_save").click().run()
    assert any("not plausible" in e for e in _errors(at))
    assert _db(at).load_settings().calibration.mm_per_px == pytest.approx(0.8)

    # geometry for parallax
    at.number_input(key="cal_geo_c").set_value(2500.0)
    at.number_input(key="cal_geo_t").set_value(1.5)
    next(b for b in at.button if b.label == "Save geometry").click().run()
    g = _db(at).load_settings().calibration
    assert (g.camera_height_mm, g.sheet_thickness_mm) == (2500.0, 1.5)

    # roll back to the first calibration
    first = min(r.id for r in __import__("core.qa.calibration", fromlist=["x"]).calibration_history(_db(at)))
    at.selectbox(key="cal_back").set_value(first).run()
    _button(at, "cal_back_go").click().run()
    assert not at.exception, at.exception
    assert _db(at).load_settings().calibration.mm_per_px == pytest.approx(0.5)
    assert any("Rolled back to calibration" in s.value for s in at.success)


def test_live_source_without_a_frame_says_so(app):
    at = app
    _sign_in(at)
    ctx = at.session_state["_ctx"]
    at.radio(key="cal_src").set_value("live").run()
    assert not at.exception, at.exception
    get = getattr(ctx.worker, "latest_frame", None)
    if get is None or get(annotated=False) is None:
        assert any("No live frame now" in i.value for i in at.info)
    else:
        _button(at, "cal_take_live").click().run()
        assert any("Frame:" in cap.value for cap in at.caption)
