"""Settings page through Streamlit's AppTest on the real app (app.py, real database, real
counting worker): the engineer gate, saving with an audit trail, live hand-over to the
worker, and bad input on every form and upload."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PIN = "gate-4321"


@pytest.fixture
def app(data_dir, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("MSM_ENGINEER_PIN", PIN)
    st.cache_resource.clear()          # a fresh database + worker for this test's data folder
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/settings.py")
    at.run()
    yield at
    st.cache_resource.clear()          # on_release stops the worker thread


def _texts(els) -> list[str]:
    return [e.value for e in els]


def _button(at, label: str, key: str | None = None):
    for b in at.button:
        if b.label == label and (key is None or b.key == key):
            return b
    raise AssertionError(f"no button {label!r} ({[b.label for b in at.button]})")


def _sign_in(at, pin: str = PIN, name: str = "Ani (shift 2)"):
    at.text_input(key="engineer_name").input(name)
    at.text_input(key="engineer_pin").input(pin)
    _button(at, "Sign in").click()
    at.run()
    return at


def _db(at):
    return at.session_state["_ctx"].db


def test_gate_blocks_until_the_right_pin(app):
    at = app
    assert not at.exception
    assert "Engineer access" in [h.value for h in at.subheader]
    assert not [s for s in at.slider]  # nothing of the settings is rendered
    _sign_in(at, pin="wrong-pin")
    assert "Wrong PIN or password." in _texts(at.error) and not at.slider
    _sign_in(at, pin="wrong-again")
    _sign_in(at, pin="still-wrong")   # third wrong → backoff
    _sign_in(at, pin=PIN)             # right PIN, but inside the backoff window
    assert any("Too many wrong attempts" in t for t in _texts(at.error)) and not at.slider


def test_no_pin_configured_explains_how(data_dir, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    monkeypatch.delenv("MSM_ENGINEER_PIN", raising=False)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["lang"] = "en"
        at.run()
        at.switch_page("pages/settings.py")
        at.run()
        assert not at.exception
        assert any("MSM_ENGINEER_PIN" in w for w in _texts(at.warning)) and not at.slider
    finally:
        st.cache_resource.clear()


def test_models_page_is_gated_too(app):
    at = app
    at.switch_page("pages/models.py")
    at.run()
    assert not at.exception
    src = (ROOT / "pages" / "models.py").read_text()
    assert "require_engineer" in src, "the Models page must sit behind the engineer gate"
    assert "Engineer access" in [h.value for h in at.subheader]


def test_save_thresholds_audit_and_live_worker(app):
    at = _sign_in(app)
    assert not at.exception and at.slider
    worker = at.session_state["_ctx"].worker
    assert worker is not None, "app.py should provide the counting worker"
    at.text_input(key="set_rtsp").input("rtsp://admin:s3cret@10.1.2.3:554/stream1")
    at.slider(key="set_motion").set_value(0.8)
    at.slider(key="set_sheet_conf").set_value(0.65)
    at.number_input(key="set_fps").set_value(12.0)
    _button(at, "Save camera and thresholds").click()
    at.run()
    assert not at.exception
    assert any("saved" in t and "Applied to the running counter" in t for t in _texts(at.success)), _texts(at.success)
    s = _db(at).load_settings()
    assert s.counting.motion_sensitivity == pytest.approx(0.8) and s.camera.fps_limit == 12.0
    assert s.camera.rtsp_url == "rtsp://admin:s3cret@10.1.2.3:554/stream1"
    # the running worker got the new settings without a restart
    assert worker.settings.counting.motion_sensitivity == pytest.approx(0.8)
    assert worker.settings.counting.sheet_confidence == pytest.approx(0.65)
    from core.platform.engineering import audit_trail
    trail = {a.key: a for a in audit_trail(_db(at))}
    assert trail["counting.motion_sensitivity"].old == 0.5 and trail["counting.motion_sensitivity"].new == 0.8
    assert trail["counting.motion_sensitivity"].who == "Ani (shift 2)"
    # the audit tab shows who / old → new, with the camera password hidden
    table = at.dataframe[-1].value
    assert "counting.motion_sensitivity" in set(table["Setting"])
    shown = " ".join(map(str, table["New"]))
    assert "s3cret" not in shown and "admin:***@10.1.2.3" in shown


@pytest.mark.parametrize("url", ["ftp://cam/1", "rtsp://has space/x", "rtsp://", "rtsp://h:99999/x"])
def test_bad_camera_url_is_refused_and_nothing_saved(app, url):
    at = _sign_in(app)
    at.text_input(key="set_rtsp").input(url)
    at.slider(key="set_motion").set_value(0.9)
    _button(at, "Save camera and thresholds").click()
    at.run()
    assert not at.exception and len(at.error) == 1 and "camera address" in at.error[0].value
    assert _db(at).load_settings().counting.motion_sensitivity == 0.5


def test_roi_editor_saves_and_refuses_bad_boxes(app):
    at = _sign_in(app)
    for k, v in {"roi_x1": 100, "roi_y1": 50, "roi_x2": 400, "roi_y2": 300}.items():
        at.number_input(key=k).set_value(v)
    _button(at, "Save counting area").click()
    at.run()
    assert not at.exception
    assert _db(at).load_settings().counting.roi == [100, 50, 400, 300]
    # right of left by only 5 px → refused with a message, the saved ROI stays
    at.number_input(key="roi_x2").set_value(105)
    _button(at, "Save counting area").click()
    at.run()
    assert any("too small" in t for t in _texts(at.error))
    assert _db(at).load_settings().counting.roi == [100, 50, 400, 300]
    _button(at, "Use the whole frame").click()
    at.run()
    assert _db(at).load_settings().counting.roi is None


def test_mask_upload_validated(app):
    import cv2
    at = _sign_in(app)
    at.file_uploader(key="roi_mask_upload").set_value(("mask.png", b"not an image at all", "image/png"))
    at.run()
    _button(at, "Use this mask").click()
    at.run()
    assert any("could not be read" in t for t in _texts(at.error))
    assert _db(at).load_settings().counting.mask_path == ""
    m = np.zeros((72, 128), np.uint8)
    m[10:60, 20:100] = 255
    ok, png = cv2.imencode(".png", m)
    at.file_uploader(key="roi_mask_upload").set_value(("mask.png", png.tobytes(), "image/png"))
    at.run()
    _button(at, "Use this mask").click()
    at.run()
    assert not at.exception
    rel = _db(at).load_settings().counting.mask_path
    assert rel and (Path(at.session_state["_ctx"].paths.data) / rel).is_file()


def _mp3_bytes(seconds: float = 1.0) -> bytes:
    """A real MP3 made with PyAV's LAME encoder."""
    import av
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp3") as out:
        st = out.add_stream("libmp3lame", rate=22050)
        st.layout = "mono"
        t = np.arange(int(22050 * seconds)) / 22050
        pcm = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)[None, :]
        fr = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        fr.sample_rate = 22050
        for pkt in st.encode(fr):
            out.mux(pkt)
        for pkt in st.encode(None):
            out.mux(pkt)
    return buf.getvalue()


def _wav_bytes() -> bytes:
    from core.live.alerts import DEFAULT_TONES, synth_wav
    return synth_wav(DEFAULT_TONES["over_target"])


@pytest.mark.parametrize("name,data,msg", [
    ("fake.wav", b"this is a text file, renamed", "could not be decoded"),
    ("empty.mp3", b"", "empty"),
    ("cut.mp3", "TRUNCATED_MP3", "could not be decoded"),
])
def test_bad_sound_uploads_refused(app, name, data, msg):
    # (a wrong extension such as .ogg never reaches the page: st.file_uploader(type=...) refuses it)
    if data == "TRUNCATED_MP3":
        data = _mp3_bytes()[:150]
    at = _sign_in(app)
    at.file_uploader(key="snd_up_finish_under").set_value((name, data, "audio/wav"))
    at.run()
    _button(at, "Use this sound", key="snd_save_finish_under").click()
    at.run()
    assert not at.exception
    assert any(msg in t for t in _texts(at.error)), _texts(at.error)
    assert _db(at).load_settings().alerts.finish_under_sound == ""


def test_mp3_upload_accepted(app):
    at = _sign_in(app)
    at.file_uploader(key="snd_up_over_target").set_value(("beep.mp3", _mp3_bytes(), "audio/mpeg"))
    at.run()
    _button(at, "Use this sound", key="snd_save_over_target").click()
    at.run()
    assert not at.exception and not at.error
    assert _db(at).load_settings().alerts.over_target_sound == "custom_over_target.mp3"


def test_good_sound_upload_used_and_restorable(app):
    at = _sign_in(app)
    at.file_uploader(key="snd_up_finish_under").set_value(("a.wav", _wav_bytes(), "audio/wav"))
    at.run()
    _button(at, "Use this sound", key="snd_save_finish_under").click()
    at.run()
    assert not at.exception
    s = _db(at).load_settings()
    assert s.alerts.finish_under_sound == "custom_finish_under.wav"
    from core.live.alerts import sound_path
    p = sound_path("finish_under", s, at.session_state["_ctx"].paths)
    assert p.name == "custom_finish_under.wav" and p.read_bytes() == _wav_bytes()
    _button(at, "Restore the built-in sound", key="snd_reset_finish_under").click()
    at.run()
    assert _db(at).load_settings().alerts.finish_under_sound == ""


def test_storage_settings_and_health_panel(app):
    at = _sign_in(app)
    assert {"CPU", "RAM", "Disk free", "Counting FPS", "Decision latency", "Uptime"} <= {m.label for m in at.metric}
    at.number_input(key="set_min_free").set_value(5.5)
    at.number_input(key="set_retention").set_value(30)
    _button(at, "Save storage settings").click()
    at.run()
    s = _db(at).load_settings()
    assert s.storage.min_free_gb == 5.5 and s.storage.retention_days == 30
    _button(at, "Preview").click()
    at.run()
    assert not at.exception and any("No finished session" in t for t in _texts(at.info))


def test_disk_guard_shows_on_storage_tab(app):
    at = _sign_in(app)
    at.number_input(key="set_min_free").set_value(9999.0)
    _button(at, "Save storage settings").click()
    at.run()
    assert any("Not enough free disk space" in t for t in _texts(at.error))


def test_change_pin_on_access_tab(app):
    at = _sign_in(app)
    at.text_input(key="pin_old").input(PIN)
    at.text_input(key="pin_new1").input("new-pin-1")
    at.text_input(key="pin_new2").input("new-pin-2")
    _button(at, "Change PIN").click()
    at.run()
    assert any("differ" in t for t in _texts(at.error))
    at.text_input(key="pin_old").input(PIN)
    at.text_input(key="pin_new1").input("new-pin-1")
    at.text_input(key="pin_new2").input("new-pin-1")
    _button(at, "Change PIN").click()
    at.run()
    assert "The PIN was changed." in _texts(at.success)
    from core.platform.auth import EngineerAuth
    assert EngineerAuth(_db(at)).verify("new-pin-1").ok


def test_sign_out(app):
    at = _sign_in(app)
    _button(at, "Sign out").click()
    at.run()
    assert "Engineer access" in [h.value for h in at.subheader] and not at.slider


def test_roi_editor_on_a_real_camera_frame(data_dir, monkeypatch, tmp_path):
    """The worker plays a generated clip; the ROI tab draws the preview with box-select on
    the worker's own frame (its size, not the configured one)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from live_clips import sheets_clip, wait_for
    clip = tmp_path / "clip.mp4"
    sheets_clip(clip, n_sheets=1, hand=False)
    monkeypatch.setenv("MSM_SOURCE", str(clip))
    monkeypatch.setenv("MSM_ENGINEER_PIN", PIN)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["lang"] = "en"
        at.run()
        worker = at.session_state["_ctx"].worker
        wait_for(lambda: worker.latest_frame(annotated=False) is not None, 30, what="a frame from the clip")
        at.switch_page("pages/settings.py")
        at.run()
        _sign_in(at)
        assert not at.exception
        assert any("320 × 240 px" in c.value for c in at.caption), [c.value for c in at.caption]
        assert any("Click two corners" in c.value for c in at.caption)      # the clickable frame is there
        assert at.number_input(key="roi_x2").value == 320 and at.number_input(key="roi_y2").value == 240
    finally:
        st.cache_resource.clear()


def test_roi_click_helpers():
    """Two clicked corners give the counting area; clicked points around a part give the mask."""
    import cv2

    from core.platform.engineering import mask_from_polygon, roi_from_corners, roi_preview
    frame = np.full((240, 320, 3), 100, np.uint8)
    prev = roi_preview(frame, [10, 20, 200, 220])
    assert prev[5, 5].max() < 50 and prev[100, 100].max() == 100     # outside dimmed, inside untouched
    assert roi_from_corners((300.7, 130.9), (12.2, -5), 320, 240) == [12, 0, 301, 131]
    m = cv2.imdecode(np.frombuffer(mask_from_polygon([(0, 0), (100, 0), (100, 100)], 320, 240), np.uint8), 0)
    assert m.shape == (240, 320) and m[10, 80] == 0 and m[200, 300] == 255
    import pytest as _pt

    from core.platform.engineering import InputError
    with _pt.raises(InputError):
        mask_from_polygon([(0, 0), (5, 5)], 320, 240)


def test_idle_engineer_is_signed_out(app):
    at = _sign_in(app)
    assert at.slider
    state = at.session_state["_engineer"]
    state["seen"] -= 31 * 60          # 31 minutes without a page run
    at.session_state["_engineer"] = state
    at.run()
    assert "Engineer access" in [h.value for h in at.subheader] and not at.slider


def test_camera_change_reopens_the_running_worker(db, paths):
    """Real CountingWorker watching the configured camera: a new URL reopens it at once;
    while a session is open the change waits (never a camera switch mid-batch)."""
    from core.live.worker import CountingWorker
    from core.platform.engineering import apply_settings
    s = db.load_settings()
    s.camera.rtsp_url = "rtsp://127.0.0.1:9/cam-a"          # port 9: nothing listens
    db.save_settings(s, who="t")
    w = CountingWorker(db, paths, source=s.camera.rtsp_url, realtime=False)
    w.start()
    try:
        new = db.load_settings()
        new.camera.rtsp_url, new.counting.motion_sensitivity = "rtsp://127.0.0.1:9/cam-b", 0.9
        res = apply_settings(db, new, who="eng", worker=w)
        assert res.applied_live and res.source_reopened and not res.camera_deferred
        assert w.status().source == "rtsp://127.0.0.1:9/cam-b"
        assert w.settings.counting.motion_sensitivity == 0.9
        w.start_session("Batch-X", 10, user="op")
        newer = db.load_settings()
        newer.camera.rtsp_url = "rtsp://127.0.0.1:9/cam-c"
        res = apply_settings(db, newer, who="eng", worker=w)
        assert res.camera_deferred and not res.source_reopened
        assert w.status().source == "rtsp://127.0.0.1:9/cam-b"
        assert db.load_settings().camera.rtsp_url == "rtsp://127.0.0.1:9/cam-c"   # saved anyway
    finally:
        w.stop()


def test_defect_analysis_settings_store_only_overrides(app):
    """Per-class confidences start at the model's shipped table; only a changed class is stored."""
    at = _sign_in(app)
    assert not at.exception
    ni = at.number_input(key="set_defconf_crazing")
    shipped = ni.value
    ni.set_value(0.5)
    at.number_input(key="set_tile_mm").set_value(300.0)
    _button(at, "Save defect analysis").click()
    at.run()
    assert not at.exception
    s = _db(at).load_settings()
    assert s.models.defect_class_confidence == {"crazing": 0.5} and shipped != 0.5
    assert s.models.defect_tile_mm == 300.0


def test_a_station_fit_for_older_cues_is_shown_as_not_used(app):
    """A teach-mode fit saved before the counting rule gained cues (12 weights, the rule now
    has more inputs) is ignored by the engine; the Teach tab says so instead of claiming
    it is in use."""
    from core.counting.cues import FEATURE_NAMES
    at = _sign_in(app)
    db = _db(at)
    s = db.load_settings()
    s.counting.cue_model = {"weights": [0.5] * 12, "bias": -1.0, "threshold": 0.5}
    db.save_settings(s, who="test")
    at.run()
    caps = " ".join(_texts(at.caption))
    assert len(FEATURE_NAMES) != 12
    assert "made for an older set of cues and is not used" in caps and "In use: this station's fit." not in caps
    s.counting.cue_model = {"weights": [0.5] * len(FEATURE_NAMES), "bias": -1.0, "threshold": 0.5}
    db.save_settings(s, who="test")
    at.run()
    caps = " ".join(_texts(at.caption))
    assert "In use: this station's fit." in caps and "older set of cues" not in caps
