"""Languages (Bahasa Indonesia, English) and local time.

Strings are gettext messages: code writes ``_("English text")``; the Indonesian
catalogue ``core/platform/locales/id/LC_MESSAGES/messages.po`` holds the translations (English is
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
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
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


def fmt_date(d: date | str, lang: str) -> str:
    """A day as the reader writes it (Babel's medium date), for chart axes and headings.

    >>> fmt_date("2026-11-29", "id"), fmt_date("2026-11-29", "en")
    ('29 Nov 2026', 'Nov 29, 2026')
    """
    from babel.dates import format_date
    day = date.fromisoformat(d) if isinstance(d, str) else d
    return format_date(day, format="medium", locale=lang if lang in LANGUAGES else "en")


# --- defect classes ----------------------------------------------------------------
# The models name classes in English (NEU-DET); readers see them in their language.
_MSG_DEFECT_CRAZING = "Crazing"
_MSG_DEFECT_INCLUSION = "Inclusion"
_MSG_DEFECT_PATCHES = "Patches"
_MSG_DEFECT_PITTED = "Pitted surface"
_MSG_DEFECT_ROLLED = "Rolled-in scale"
_MSG_DEFECT_SCRATCHES = "Scratches"
DEFECT_TYPE_MSGIDS = {"crazing": _MSG_DEFECT_CRAZING, "inclusion": _MSG_DEFECT_INCLUSION,
                      "patches": _MSG_DEFECT_PATCHES, "pitted_surface": _MSG_DEFECT_PITTED,
                      "rolled-in_scale": _MSG_DEFECT_ROLLED, "scratches": _MSG_DEFECT_SCRATCHES}


def defect_label(kind: str, lang: str) -> str:
    """A defect class as the reader names it; a class the catalogue does not know stays as is.

    >>> defect_label("scratches", "id"), defect_label("rolled-in_scale", "en"), defect_label("dent", "id")
    ('Goresan', 'Rolled-in scale', 'dent')
    """
    msg = DEFECT_TYPE_MSGIDS.get(str(kind))
    return translator(lang)(msg) if msg else str(kind)


def plant_tz(db: object | None = None) -> str:
    """The plant's time zone from the settings in the database (default Asia/Jakarta) —
    for code that has no Settings at hand (CLI, background jobs, log lines)."""
    own = None
    try:
        if db is None:
            import os

            from core.platform.paths import Paths
            from core.platform.storage import Database
            if not os.environ.get("DATABASE_URL") and not (Paths.from_env().db_dir / "msm.sqlite3").exists():
                return DEFAULT_TZ     # no database yet: do not create one just to read a zone
            db = own = Database()
        return zone(db.load_settings().ui.timezone).key  # type: ignore[attr-defined]
    except Exception:   # database trouble: the default zone, never a crash over a time stamp
        return DEFAULT_TZ
    finally:
        if own is not None:
            own.engine.dispose()


def local_now(tz: str | None = None) -> datetime:
    """Now in the plant's zone (aware); ``tz=None`` reads it from the settings."""
    return datetime.now(timezone.utc).astimezone(zone(tz or plant_tz()))


def local_stamp(fmt: str = "%Y%m%d-%H%M%S", tz: str | None = None) -> str:
    """A date stamp for file and version names, in plant local time (never the server's
    zone, never UTC): a run at 06:30 WIB is named for the plant's day.

    Example:
        >>> len(local_stamp("%Y%m%d", "Asia/Jakarta"))
        8
    """
    return local_now(tz).strftime(fmt)


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


# Functions that translate one of their literal arguments themselves (name → arg index):
# ``friendly_error(c, exc, "Saving failed")`` shows ``c._("Saving failed")``.
TRANSLATING_CALLS = {"friendly_error": 2}


def msgid_classes(files: list[Path]) -> set[str]:
    """Exception classes built as ``XError("msgid {v}", v=…)`` (``__init__(self, msgid, …)``):
    pages show ``e.translated(_)``, so their literal first argument is a message too."""
    import ast
    names: set[str] = set()
    bases: dict[str, set[str]] = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"), filename=str(f))):
            if isinstance(node, ast.ClassDef):
                bases.setdefault(node.name, set()).update(_call_name(b) for b in node.bases)
                for item in node.body:
                    if (isinstance(item, ast.FunctionDef) and item.name == "__init__"
                            and len(item.args.args) > 1 and item.args.args[1].arg == "msgid"):
                        names.add(node.name)
    # subclasses inherit the msgid constructor (SessionError(UserError) …)
    grown = True
    while grown:
        more = {c for c, bs in bases.items() if c not in names and bs & names}
        names |= more
        grown = bool(more)
    return names


def extract_messages(files: list[Path], msgid_calls: set[str] | frozenset[str] = frozenset()
                     ) -> dict[str, list[str]]:
    """msgid → places, for every ``_("literal")`` call in ``files``, the literal argument of
    :data:`TRANSLATING_CALLS` (they call ``_`` on it at run time), the first literal of calls
    to ``msgid_calls`` (see :func:`msgid_classes`) and ``_MSG_… = "literal"`` constants."""
    import ast
    found: dict[str, list[str]] = {}
    for f in files:
        tree = ast.parse(f.read_text(encoding="utf-8"), filename=str(f))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.startswith("_MSG_") and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                found.setdefault(node.value.value, []).append(f"{f.name}:{node.lineno}")
            if not isinstance(node, ast.Call):
                continue
            name = _call_name(node.func)
            idx = 0 if (_is_gettext(node.func) or name in msgid_calls) else TRANSLATING_CALLS.get(name, -1)
            if idx < 0 or len(node.args) <= idx:
                continue
            a = node.args[idx]
            if isinstance(a, ast.Constant) and isinstance(a.value, str):
                found.setdefault(a.value, []).append(f"{f.name}:{node.lineno}")
    return found


def _call_name(func: object) -> str:
    import ast
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


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
                    stripped = re.sub(r"<[^>]+>|:[a-z_]+(?:/[a-z_]+)?:|\{[^}]*\}|https?://\S+", "", t)   # :material/x:
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


# --- one catalogue per language: sync and check (``python -m core i18n check|sync``) ---
ROOT = Path(__file__).resolve().parents[2]
# msgids that code translates through a variable (``_(active.method)``, defect class names,
# ``i18n.translator(lang)("Language")`` in app.py); the AST scan cannot see them.
DYNAMIC_MSGIDS: tuple[str, ...] = (
    "Language",
    "active", "paused", "finished",                   # session status
    "approved", "rejected", "pending",                # capture review
    "auto", "manual",                                 # count event kind
    "manual", "line", "checkerboard", "plane", "lens",  # calibration method / corrections
    "trained", "uploaded", "bundled",                 # model source
    "Start session", "Finish session",                # the PRD's reference terms
)


def ui_files(root: Path = ROOT) -> list[Path]:
    """Files whose strings reach users: every page, app.py, and the core modules that
    call ``_`` (report headings, alerts, user-facing messages)."""
    core_files = [p for p in sorted((root / "core").rglob("*.py")) if "_(" in p.read_text(encoding="utf-8")
                  or "msgid" in p.read_text(encoding="utf-8") or "Error(" in p.read_text(encoding="utf-8")]
    return sorted((root / "pages").glob("*.py")) + [root / "app.py"] + core_files


def page_files(root: Path = ROOT) -> list[Path]:
    """Streamlit files (pages and app.py): where bare literals would show untranslated."""
    return sorted((root / "pages").glob("*.py")) + [root / "app.py"]


def used_msgids(root: Path = ROOT) -> dict[str, list[str]]:
    """msgid → places for every message the code shows (static scan + dynamic ones)."""
    files = ui_files(root)
    used = extract_messages(files, msgid_calls=msgid_classes(files))
    for m in DYNAMIC_MSGIDS:
        used.setdefault(m, ["(dynamic)"])
    return used


@dataclass
class CatalogueCheck:
    """What ``python -m core i18n check`` reports; ``ok`` when nothing is missing."""
    used: int
    missing_id: list[str]
    missing_en: list[str]
    bare_literals: list[str]
    unused: list[str]
    bad_placeholders: list[str] = field(default_factory=list)   # msgstr {fields} ≠ msgid {fields}

    @property
    def ok(self) -> bool:
        return not (self.missing_id or self.missing_en or self.bare_literals or self.bad_placeholders)


def placeholder_mismatches(lang: str = "id", messages: dict[str, str] | None = None) -> list[str]:
    """msgids whose translation names other ``{fields}`` than the English: ``.format()``
    would raise KeyError (or drop a value) only in that language.

    Example:
        >>> placeholder_mismatches(messages={"{n} sheets": "{jumlah} lembar", "OK": "OK"})
        ['{n} sheets']
    """
    import string
    def fields(t: str) -> set[str]:
        try:
            return {f for _t, f, _s, _c in string.Formatter().parse(t) if f is not None}
        except ValueError:   # unbalanced braces: the English has none to keep
            return {"<unbalanced>"}
    msgs = catalog_messages(lang) if messages is None else messages
    return sorted(k for k, v in msgs.items() if v and fields(k) != fields(v))


def check_catalogues(root: Path = ROOT) -> CatalogueCheck:
    """Compare the code's messages with both catalogues.

    Example:
        >>> r = check_catalogues()
        >>> r.ok, r.missing_id[:3]
        (True, [])
    """
    used = used_msgids(root)
    ind, en = catalog_messages("id"), catalog_messages("en")
    return CatalogueCheck(
        used=len(used),
        missing_id=sorted(m for m in used if not ind.get(m)),
        missing_en=sorted(m for m in used if m not in en),
        bare_literals=untranslated_literals(page_files(root)),
        unused=sorted(m for m in ind if m not in used),
        bad_placeholders=placeholder_mismatches("id") + placeholder_mismatches("en"),
    )


def sync_catalogues(root: Path = ROOT, prune: bool = False) -> dict[str, int]:
    """Merge fragments into the Indonesian catalogue, add every used msgid to both
    catalogues (Indonesian with an empty msgstr = still to translate) and rewrite the
    English one as exactly the used msgids. ``prune`` drops Indonesian entries no code uses."""
    from babel.messages.pofile import read_po, write_po
    added = merge_fragments("id") if (LOCALES / "_fragments").is_dir() else 0
    used = used_msgids(root)
    counts = {"merged": added}
    for lang in ("id", "en"):
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        with open(po, "rb") as f:
            cat = read_po(f, locale=lang)
        for m in used:
            if m not in cat:
                cat.add(m, "")
        stale = [m.id for m in cat if m.id and m.id not in used]
        if lang == "en" or prune:
            for mid in stale:
                del cat[mid]
        with open(po, "wb") as f:
            write_po(f, cat, width=0, omit_header=False, sort_output=True, ignore_obsolete=True)
        counts[lang] = sum(1 for m in cat if m.id)
    reload_catalogs()
    return counts


def cli_i18n(argv: list[str]) -> int:
    """``python -m core i18n check|sync`` — JSON on stdout; ``check`` exits 1 when a key is
    missing from either catalogue or a page passes a bare English literal to Streamlit."""
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m core i18n", description=cli_i18n.__doc__)
    ap.add_argument("action", choices=["check", "sync"])
    ap.add_argument("--prune", action="store_true", help="sync: drop Indonesian entries no code uses")
    a = ap.parse_args(argv)
    if a.action == "sync":
        print(json.dumps(sync_catalogues(prune=a.prune)))
        return 0
    r = check_catalogues()
    print(json.dumps({"ok": r.ok, "used": r.used, "missing_id": r.missing_id, "missing_en": r.missing_en,
                      "bare_literals": r.bare_literals,
                      "bad_placeholders": r.bad_placeholders, "unused_in_id": len(r.unused)},
                     ensure_ascii=False, indent=1))
    return 0 if r.ok else 1
