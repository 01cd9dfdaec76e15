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
