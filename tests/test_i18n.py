"""Bahasa Indonesia and English: catalogues complete, no untranslated string on any page,
local time with the zone, language-specific numbers in the UI only."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from core.platform import i18n

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
# Modules whose strings reach users (report headings, alerts, user-facing messages).
CORE_UI_FILES = [p for p in (ROOT / "core").glob("*.py") if "_(" in p.read_text(encoding="utf-8")]
EXTRA_IDS = {"Language"}  # used through i18n.translator(...)(...) in app.py, not `_()`


def _used_msgids() -> dict[str, list[str]]:
    # i18n.used_msgids() = every `_("…")` in pages/app/core, plus the msgids core raises in
    # translatable errors (SessionError("…")), friendly_error(…, "…") and the dynamic ones
    used = i18n.used_msgids()
    simple = i18n.extract_messages(UI_FILES + CORE_UI_FILES)
    assert set(simple) | EXTRA_IDS <= set(used), "the tool must see at least every _() call"
    return used


def test_every_msgid_is_in_both_catalogues():
    used = _used_msgids()
    assert len(used) > 100, "pages should route their strings through _()"
    ind = i18n.catalog_messages("id")
    en = i18n.catalog_messages("en")
    missing_id = sorted(m for m in used if not ind.get(m))
    missing_en = sorted(m for m in used if m not in en)
    assert not missing_id, f"{len(missing_id)} msgids lack an Indonesian translation, e.g. {missing_id[:8]}"
    assert not missing_en, f"{len(missing_en)} msgids missing from the English catalogue, e.g. {missing_en[:8]}"


def test_translations_keep_their_placeholders():
    # a translation naming other {fields} would raise KeyError in .format() only in Indonesian
    assert not i18n.placeholder_mismatches("id"), i18n.placeholder_mismatches("id")[:5]
    assert i18n.placeholder_mismatches(messages={"{n} sheets": "{jumlah} lembar"}) == ["{n} sheets"]


def test_check_tool_finds_missing_keys_and_bare_literals(tmp_path):
    """``python -m core i18n check`` on a tiny app: a new message, a translatable error and a
    bare literal are all reported (so the check can fail)."""
    (tmp_path / "pages").mkdir()
    (tmp_path / "core").mkdir()
    (tmp_path / "app.py").write_text("")
    (tmp_path / "pages" / "p.py").write_text(
        'import streamlit as st\n_ = str\nst.button(_("A brand-new button"))\nst.caption("Bare words")\n'
        'friendly_error(c, e, "Brand-new failure")\n')
    (tmp_path / "core" / "m.py").write_text(
        'class NewError(ValueError):\n    def __init__(self, msgid, **a):\n        super().__init__(msgid)\n'
        'class SubError(NewError):\n    pass\n'
        'def f():\n    raise NewError("A brand-new error {x}.", x=1)\n'
        'def g():\n    raise SubError("A brand-new sub-error.")\n')
    r = i18n.check_catalogues(tmp_path)
    assert not r.ok
    assert {"A brand-new button", "Brand-new failure", "A brand-new error {x}.",
            "A brand-new sub-error."} <= set(r.missing_id)
    assert {"A brand-new button", "Brand-new failure", "A brand-new error {x}."} <= set(r.missing_en)
    assert len(r.bare_literals) == 1 and "Bare words" in r.bare_literals[0]


def test_check_cli_passes_on_the_repository():
    import json
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "core", "i18n", "check"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    out = json.loads(p.stdout)
    assert p.returncode == 0 and out["ok"], out
    assert out["used"] > 400 and out["missing_id"] == [] and out["bare_literals"] == []
    bad = subprocess.run([sys.executable, "-m", "core", "i18n", "frobnicate"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_no_bare_literals_on_pages():
    problems = i18n.untranslated_literals(UI_FILES)
    assert not problems, "strings shown untranslated:\n" + "\n".join(problems)


def test_untranslated_literal_detector_catches_one(tmp_path):
    # the detector itself must be able to fail
    f = tmp_path / "page.py"
    f.write_text('import streamlit as st\n_ = str\nst.button("Start session")\nst.button(_("Finish"))\n'
                 'st.selectbox(":material/language:", ["id"])\nst.markdown("<div class=x>{n}</div>")\n')
    assert len(i18n.untranslated_literals([f])) == 1


def test_prd_terms():
    _ = i18n.translator("id")
    assert _("Start session") == "Mulai Sesi"
    assert _("Calibration") == "Kalibrasi"
    assert i18n.translator("en")("Start session") == "Start session"


def test_numbers_follow_language():
    assert i18n.fmt_number(1234.56, "id", 2) == "1.234,56"
    assert i18n.fmt_number(1234.56, "en", 2) == "1,234.56"
    assert i18n.fmt_number(None, "id") == "–"


def test_local_time_with_zone():
    utc = datetime(2026, 11, 21, 17, 30, tzinfo=timezone.utc)
    assert i18n.fmt_dt(utc, "Asia/Jakarta") == "2026-11-22 00:30:00 WIB"
    assert i18n.iso_local(utc, "Asia/Jakarta") == "2026-11-22T00:30:00+07:00"
    assert i18n.fmt_dt(utc, "Asia/Makassar").endswith("WITA")


@pytest.fixture
def no_webrtc(tmp_path, monkeypatch):
    """Mocked: ``streamlit_webrtc.webrtc_streamer`` only (as in test_live_page.py) — it cannot
    run under AppTest (no browser session manager); the live page then shows its polling
    image. Everything else is real: the worker counts a small generated clip, real DB."""
    from types import SimpleNamespace

    import streamlit as st
    import streamlit_webrtc

    from live_clips import sheets_clip
    clip = tmp_path / "i18n.mp4"
    sheets_clip(clip, n_sheets=1, hand=False, gap_s=0.5, tail_s=1.0, fps=5)
    monkeypatch.setenv("MSM_SOURCE", str(clip))
    fake = SimpleNamespace(state=SimpleNamespace(playing=False))
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", lambda *a, **k: fake)
    monkeypatch.setattr(streamlit_webrtc, "create_video_source_track", lambda *a, **k: object())
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()      # on_release stops and joins the worker thread


PAGES = ["pages/live.py", "pages/defects.py", "pages/calibration.py", "pages/dashboard.py",
         "pages/models.py", "pages/settings.py"]


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_renders_without_missing_keys(lang, data_dir, db, paths, no_webrtc, monkeypatch):
    """AppTest renders each page (with a finished session in the database, signed in as
    engineer where a page asks); in Indonesian no visible text may be an English msgid
    that has a different Indonesian translation (i.e. a string that escaped `_()`)."""
    from streamlit.testing.v1 import AppTest

    from core.synthetic.session import make_synthetic_session
    monkeypatch.setenv("MSM_ENGINEER_PIN", "i18n-4321")
    make_synthetic_session(db, paths, n_captures=4, name="Shift-A")
    ind = i18n.catalog_messages("id")
    english_only = {k for k, v in ind.items() if v and v != k and len(k) > 3}
    translations = {v for v in ind.values() if v and "{" in v}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["lang"] = lang
    at.run()
    rendered = {}
    for page in PAGES:
        at.switch_page(page)
        at.run()
        assert not at.exception, f"{page} ({lang}) raised: {at.exception}"
        gate = [t for t in at.text_input if t.key == "engineer_pin"]
        if gate:   # the engineer gate itself is checked too, then the page behind it
            _check_shown(at, page + " (gate)", lang, english_only, translations)
            at.text_input(key="engineer_name").input("Budi")
            gate[0].input("i18n-4321")
            next(b for b in at.button if b.label == i18n.translator(lang)("Sign in")).click()
            at.run()
            assert not at.exception, f"{page} ({lang}) raised after sign-in: {at.exception}"
            assert not [t for t in at.text_input if t.key == "engineer_pin"], f"{page}: sign-in failed"
        rendered[page] = _check_shown(at, page, lang, english_only, translations)
    # the live page while a session runs (status, buttons, corrections, log feed), then the
    # finished panel: the states operators look at all shift
    _ = i18n.translator(lang)
    at.switch_page("pages/live.py")
    at.run()
    at.text_input(key="live_name").set_value("Batch-A")
    at.text_input(key="live_target").set_value("1")
    next(b for b in at.button if b.label == _("START SESSION")).click()
    at.run()
    at.text_input(key="live_reason").set_value("uji")
    at.button(key="live_plus").click()
    at.run()
    assert not at.exception, f"live ({lang}) raised while running: {at.exception}"
    running = _check_shown(at, "pages/live.py (running)", lang, english_only, translations)
    assert _("FINISH SESSION") in running
    at.button(key="live_finish").click()
    at.run()
    at.button(key="live_finish_yes").click()
    at.run()
    assert not at.exception, f"live ({lang}) raised after finish: {at.exception}"
    _check_shown(at, "pages/live.py (finished)", lang, english_only, translations)
    # the selector is honoured: the page titles are in the chosen language
    cal = " ".join(rendered["pages/calibration.py"])
    assert ("Kalibrasi" in cal) == (lang == "id"), cal[:300]


def _check_shown(at, where, lang, english_only, translations) -> set[str]:
    shown = _visible_texts(at)
    assert shown, f"{where} ({lang}) rendered nothing"
    if os.environ.get("MSM_I18N_DUMP"):   # for a human review of the wording
        print(f"\n=== {where} ({lang})\n" + "\n".join(sorted(shown)))
    if lang == "id":
        leaked = sorted(t for t in shown if t in english_only)
        assert not leaked, f"{where} shows English in Bahasa Indonesia: {leaked[:5]}"
    else:   # and no Indonesian leaks into English
        indonesian = {v for k, v in i18n.catalog_messages("id").items() if v and v != k and len(v) > 3}
        leaked = sorted(t for t in shown if t in indonesian and t not in english_only)
        assert not leaked, f"{where} shows Bahasa Indonesia in English: {leaked[:5]}"
    # a message whose {fields} were not filled in would show its braces
    raw = sorted(t for t in shown if t in translations or (t in english_only and "{" in t))
    assert not raw, f"{where} shows an unformatted message: {raw[:3]}"
    return shown


def _visible_texts(at) -> set[str]:
    """Text a user reads: element bodies, widget labels and help, and the *shown* options
    of choice widgets (their ``value`` is the internal key, e.g. ``"live"``)."""
    texts: set[str] = set()
    body_kinds = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error",
                  "success", "exception")
    widget_kinds = ("button", "text_input", "text_area", "number_input", "selectbox", "multiselect",
                    "checkbox", "toggle", "slider", "select_slider", "radio", "metric", "expander", "tabs",
                    "date_input", "time_input")

    def add(v):
        if isinstance(v, str) and v.strip():
            texts.add(v.strip())
    for kind in body_kinds + widget_kinds:
        try:
            elems = getattr(at, kind)
        except Exception:
            continue
        for e in elems:
            attrs = ("value", "body") if kind in body_kinds else ("label", "help", "placeholder")
            for attr in attrs:
                add(getattr(e, attr, None))
            if kind == "metric":
                add(getattr(e, "value", None))
            for o in (getattr(e, "options", None) or []) if kind not in ("metric",) else []:
                add(o)
    return texts


@pytest.mark.slow
def test_language_default_comes_from_settings(data_dir, db, no_webrtc):
    """A new browser session starts in ``ui.language`` (switching in the sidebar, one browser
    session only, is checked in a real browser: tests/test_i18n_browser.py)."""
    from streamlit.testing.v1 import AppTest
    for lang, title in (("en", "Live Monitoring"), ("id", "Pemantauan Langsung")):
        s = db.load_settings()
        s.ui.language = lang
        db.save_settings(s, "test")
        a = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        a.run()
        assert not a.exception, a.exception
        assert a.selectbox(key="lang").value == lang
        assert title in {t.value for t in a.title}


@pytest.mark.slow
def test_settings_retention_table_in_local_time_and_language(data_dir, db, paths, no_webrtc, monkeypatch):
    """The retention preview lists old sessions with their finish time in plant time (with
    the zone) and sizes with a decimal comma in Bahasa Indonesia."""
    from datetime import timedelta

    from streamlit.testing.v1 import AppTest

    from core.synthetic.session import make_synthetic_session
    monkeypatch.setenv("MSM_ENGINEER_PIN", "i18n-4321")
    old = datetime.now(timezone.utc) - timedelta(days=400)
    make_synthetic_session(db, paths, 2, name="Lama", started_at=old, image_size=(640, 480))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["lang"] = "id"
    at.run()
    at.switch_page("pages/settings.py")
    at.run()
    at.text_input(key="engineer_name").input("Budi")
    at.text_input(key="engineer_pin").input("i18n-4321")
    next(b for b in at.button if b.label == "Masuk").click()
    at.run()
    at.checkbox(key="ret_force").check()
    at.button(key="ret_preview").click()
    at.run()
    assert not at.exception, at.exception
    df = next(d.value for d in at.dataframe if "Selesai" in d.value.columns)
    assert df["Selesai"].iloc[0].endswith(" WIB") and df["Sesi"].iloc[0] == "Lama"
    assert "," in df["MB"].iloc[0] and df["Hasil"].iloc[0] == "akan dihapus"
