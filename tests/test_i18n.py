"""Bahasa Indonesia and English: catalogues complete, no untranslated string on any page,
local time with the zone, language-specific numbers in the UI only."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from core import i18n

ROOT = Path(__file__).resolve().parent.parent
UI_FILES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]
# Modules whose strings reach users (report headings, alerts, user-facing messages).
CORE_UI_FILES = [p for p in (ROOT / "core").glob("*.py") if "_(" in p.read_text(encoding="utf-8")]
EXTRA_IDS = {"Language"}  # used through i18n.translator(...)(...) in app.py, not `_()`


def _used_msgids() -> dict[str, list[str]]:
    used = i18n.extract_messages(UI_FILES + CORE_UI_FILES)
    for m in EXTRA_IDS:
        used.setdefault(m, ["app.py"])
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


def test_no_bare_literals_on_pages():
    problems = i18n.untranslated_literals(UI_FILES)
    assert not problems, "strings shown untranslated:\n" + "\n".join(problems)


def test_untranslated_literal_detector_catches_one(tmp_path):
    # the detector itself must be able to fail
    f = tmp_path / "page.py"
    f.write_text('import streamlit as st\n_ = str\nst.button("Start session")\nst.button(_("Finish"))\n')
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


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["id", "en"])
def test_every_page_renders_without_missing_keys(lang, data_dir, monkeypatch):
    """AppTest renders each page; in Indonesian no visible text may be an English msgid
    that has a different Indonesian translation (i.e. a string that escaped `_()`)."""
    from streamlit.testing.v1 import AppTest
    ind = i18n.catalog_messages("id")
    english_only = {k for k, v in ind.items() if v and v != k and len(k) > 3}
    for page in ["pages/live.py", "pages/defects.py", "pages/calibration.py", "pages/dashboard.py",
                 "pages/models.py", "pages/settings.py"]:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["lang"] = lang
        at.run()
        at.switch_page(page)
        at.run()
        assert not at.exception, f"{page} ({lang}) raised: {at.exception}"
        if lang == "id":
            shown = _visible_texts(at)
            leaked = sorted(t for t in shown if t in english_only)
            assert not leaked, f"{page} shows English in Bahasa Indonesia: {leaked[:5]}"


def _visible_texts(at) -> set[str]:
    texts: set[str] = set()
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error",
                 "success", "button", "text_input", "number_input", "selectbox", "checkbox", "toggle",
                 "slider", "radio", "metric", "expander", "tabs"):
        try:
            elems = getattr(at, kind)
        except Exception:
            continue
        for e in elems:
            for attr in ("value", "label", "body"):
                v = getattr(e, attr, None)
                if isinstance(v, str):
                    texts.add(v.strip())
    return texts
