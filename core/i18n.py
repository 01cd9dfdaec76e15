"""Languages (Bahasa Indonesia, English) and local time.

Strings are gettext messages: code writes ``_("English text")``; the Indonesian
catalogue ``core/locales/id/LC_MESSAGES/messages.po`` holds the translations (English is
the msgid itself, and ``en/…/messages.po`` exists so both languages have one catalogue).
The ``.po`` files are compiled in memory with Babel, so there is no ``.mo`` to forget.

Numbers follow the language (decimal comma for Indonesian) in the UI only; JSON and CSV
exports stay machine-readable. The database stores UTC; :func:`fmt_dt` shows the plant's
local time with its zone.

Example:
    >>> _ = translator("id")
    >>> _("Start session")
    'Mulai Sesi'
    >>> fmt_number(1234.5, "id", 1), fmt_number(1234.5, "en", 1)
    ('1.234,5', '1,234.5')
"""
from __future__ import annotations

import gettext
import io
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

LOCALES = Path(__file__).resolve().parent / "locales"
LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT_TZ = "Asia/Jakarta"


@lru_cache(maxsize=None)
def _catalog(lang: str) -> gettext.NullTranslations:
    po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    with open(po, "rb") as f:
        cat = read_po(f, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, cat)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translator(lang: str) -> Callable[[str], str]:
    """The ``_`` function for a language; unknown languages fall back to English."""
    return _catalog(lang if lang in LANGUAGES else "en").gettext


def catalog_messages(lang: str) -> dict[str, str]:
    """msgid → msgstr of a language's catalogue (for tests and tooling)."""
    from babel.messages.pofile import read_po
    po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    with open(po, "rb") as f:
        cat = read_po(f, locale=lang)
    return {m.id: m.string for m in cat if m.id and isinstance(m.id, str)}


def reload_catalogs() -> None:
    _catalog.cache_clear()


# --- numbers -----------------------------------------------------------------------
def fmt_number(x: float | int | None, lang: str, decimals: int = 0) -> str:
    """Thousands and decimal separators of the language (UI only)."""
    if x is None:
        return "–"
    s = f"{x:,.{decimals}f}"
    if lang == "id":
        s = s.replace(",", "\x00").replace(".", ",").replace("\x00", ".")
    return s


# --- time --------------------------------------------------------------------------
def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or DEFAULT_TZ)
    except Exception:
        return ZoneInfo(DEFAULT_TZ)


def to_local(dt: datetime, tz: str | None) -> datetime:
    if dt.tzinfo is None:  # everything stored is UTC; a naive value is a programming slip
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(zone(tz))


def fmt_dt(dt: datetime | None, tz: str | None, with_date: bool = True, with_zone: bool = True) -> str:
    """Local time with the zone stated, e.g. ``2026-11-21 14:00:01 WIB``."""
    if dt is None:
        return "–"
    loc = to_local(dt, tz)
    s = loc.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{s} {loc.tzname()}" if with_zone else s


def iso_local(dt: datetime | None, tz: str | None) -> str | None:
    """ISO 8601 with the local offset, for JSON/CSV (``2026-11-21T14:00:01+07:00``)."""
    return None if dt is None else to_local(dt, tz).isoformat(timespec="seconds")


# --- catalogue tooling (used by tests and `python -m core i18n`) ----------------------
# Streamlit calls whose first argument / label-like keywords are shown to the user.
UI_CALLS = {
    "title", "header", "subheader", "markdown", "caption", "text", "write", "info", "warning", "error",
    "success", "toast", "button", "download_button", "form_submit_button", "link_button", "page_link",
    "text_input", "text_area", "number_input", "selectbox", "multiselect", "radio", "checkbox", "toggle",
    "slider", "select_slider", "date_input", "time_input", "file_uploader", "camera_input", "color_picker",
    "metric", "expander", "spinner", "progress", "tabs", "popover", "status", "Page",
}
UI_KEYWORDS = {"label", "help", "caption", "text", "body", "title"}
_NOT_UI_RECEIVERS = {"log", "logger", "logging", "LOG", "os", "json", "re", "warnings"}


def extract_messages(files: list[Path]) -> dict[str, list[str]]:
    """msgid → places, for every ``_("literal")`` call in ``files``."""
    import ast
    found: dict[str, list[str]] = {}
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _is_gettext(node.func) and node.args:
                a = node.args[0]
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    found.setdefault(a.value, []).append(f"{f.name}:{node.lineno}")
    return found


def untranslated_literals(files: list[Path]) -> list[str]:
    """Places where a page passes a bare English string literal to a Streamlit call
    instead of ``_("…")`` — each one would show untranslated in Bahasa Indonesia."""
    import ast
    import re
    wordy = re.compile(r"[A-Za-z]{2,}")
    problems: list[str] = []
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in UI_CALLS):
                continue
            recv = node.func.value
            if isinstance(recv, ast.Name) and recv.id in _NOT_UI_RECEIVERS:
                continue
            if isinstance(recv, ast.Call) and getattr(recv.func, "attr", "") == "getLogger":
                continue
            cands = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in UI_KEYWORDS]
            for a in cands:
                texts = []
                if isinstance(a, ast.Constant) and isinstance(a.value, str):
                    texts = [a.value]
                elif isinstance(a, ast.JoinedStr):
                    texts = [v.value for v in a.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
                for t in texts:
                    if t.lstrip().startswith("<") or t.endswith(".py"):  # HTML scaffolding, page paths
                        continue
                    # markdown/HTML scaffolding, emoji and icons carry no words to translate
                    stripped = re.sub(r"<[^>]+>|:[a-z_]+:|\{[^}]*\}|https?://\S+", "", t)
                    if wordy.search(stripped):
                        problems.append(f"{f.name}:{node.lineno}: {t[:60]!r}")
    return problems


def _is_gettext(func: object) -> bool:
    import ast
    return (isinstance(func, ast.Name) and func.id == "_") or (isinstance(func, ast.Attribute) and func.attr == "_")


def merge_fragments(lang: str = "id") -> int:
    """Fold ``locales/_fragments/*.po`` into the language's one catalogue; returns how many
    messages were added. Existing translations in the catalogue win over fragments."""
    from babel.messages.pofile import read_po, write_po
    po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
    with open(po, "rb") as f:
        cat = read_po(f, locale=lang)
    added = 0
    for frag in sorted((LOCALES / "_fragments").glob("*.po")):
        with open(frag, "rb") as f:
            fcat = read_po(f, locale=lang)
        for m in fcat:
            if m.id and m.id not in cat:
                cat.add(m.id, m.string)
                added += 1
            elif m.id and not cat[m.id].string and m.string:
                cat[m.id].string = m.string
    with open(po, "wb") as f:
        write_po(f, cat, width=0, omit_header=False, sort_output=True)
    reload_catalogs()
    return added
