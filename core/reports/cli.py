"""``python -m core export`` and ``python -m core archive``: one clear line on bad input."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths
from core.platform.storage import (
    Database,
)
from core.reports.archive import import_archive
from core.reports.common import FORMATS, ReportError
from core.reports.export import (
    _check_out,
    export_sessions,
    resolve_sessions,
    write_archive,
)

log = get("reports")


# =====================================================================================
# Command line: export, archive, bench export
# =====================================================================================
class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + exiting, so bad input is one line."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ReportError(message)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _open_db() -> tuple[Database, Paths]:
    paths = Paths.from_env().ensure()
    return Database(), paths


def cli_export(argv: list[str]) -> int:
    """``python -m core export --session ID --format pdf --out report.pdf`` (or ``--from/--to``)."""
    p = _Parser(prog="python -m core export", description="Export a session (or a date range) as a report.")
    p.add_argument("--session", help="session id")
    p.add_argument("--from", dest="date_from", help="first local day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="last local day, YYYY-MM-DD (inclusive)")
    p.add_argument("--status", action="append", choices=["active", "paused", "finished"],
                   help="only sessions with this status (repeatable; date range only)")
    p.add_argument("--format", required=True, help="json | csv | xlsx | pdf | zip")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--lang", default=None, help="report language: id | en (default: settings)")
    p.add_argument("--tz", default=None, help="time zone (default: settings ui.timezone)")
    try:
        a = p.parse_args(argv)
        fmt = a.format.lower()
        if fmt not in FORMATS:
            raise ReportError(f"unknown format: {a.format!r} (use one of {', '.join(FORMATS)})")
        if a.session and (a.date_from or a.date_to):
            raise ReportError("give either --session or --from/--to, not both")
        out = _check_out(a.out)
        db, paths = _open_db()
        settings = db.load_settings()
        tz = a.tz or settings.ui.timezone
        if a.tz and i18n.zone(a.tz).key != a.tz:
            raise ReportError(f"unknown time zone: {a.tz}")
        lang = a.lang or settings.ui.language
        if lang not in i18n.LANGUAGES:
            raise ReportError(f"unknown language: {lang} (use id or en)")
        ids, period = resolve_sessions(db, a.session, a.date_from, a.date_to, tz, a.status)
        res = export_sessions(db, paths, ids, fmt, out, period=period, lang=lang, tz=tz)
    except SystemExit as e:   # --help
        return int(e.code or 0)
    except ReportError as e:
        return _fail(str(e))
    print(json.dumps(res.to_json()))
    return 0


def cli_archive(argv: list[str]) -> int:
    """``python -m core archive --session ID --out X.zip`` or ``python -m core archive --import X.zip``."""
    p = _Parser(prog="python -m core archive", description="Back up sessions as a .zip, or import such a backup.")
    p.add_argument("--session", action="append", help="session id (repeatable)")
    p.add_argument("--from", dest="date_from", help="first local day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="last local day, YYYY-MM-DD (inclusive)")
    p.add_argument("--out", help="archive to write")
    p.add_argument("--import", dest="import_", metavar="ZIP", help="archive to import")
    try:
        a = p.parse_args(argv)
        db, paths = _open_db()
        if a.import_:
            if a.session or a.out:
                raise ReportError("--import takes no --session/--out")
            res_i = import_archive(db, paths, a.import_)
            print(json.dumps(res_i.to_json()))
            return 0
        if not a.out:
            raise ReportError("give --out X.zip (or --import X.zip)")
        out = _check_out(a.out)
        if a.session:
            ids = []
            for sid in a.session:
                ids += resolve_sessions(db, sid)[0]
        else:
            ids = resolve_sessions(db, None, a.date_from, a.date_to)[0]
        res = write_archive(db, paths, ids, out)
    except SystemExit as e:
        return int(e.code or 0)
    except ReportError as e:
        return _fail(str(e))
    print(json.dumps(res.to_json()))
    return 0
