"""Exports: one session or a date range rendered as json|csv|xlsx|pdf|zip, written atomically and
marked ``exported_at`` / ``archived_at``; the background report job of the dashboard."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable, Optional

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes
from core.platform.storage import (
    Database,
    SessionRow,
    utcnow,
)
from core.reports.archive import archive_bytes, write_archive_to
from core.reports.common import (
    FORMATS,
    ExportResult,
    Period,
    Progress,
    ReportError,
    _noop,
    _settings_tz,
)
from core.reports.export_csv import render_csv
from core.reports.export_json import render_json
from core.reports.export_pdf import render_pdf
from core.reports.export_xlsx import render_xlsx
from core.reports.recap import _parse_day, list_sessions
from core.reports.sessionlog import build_session_log

log = get("reports")


def resolve_sessions(db: Database, session_id: str | None = None, date_from: Any = None, date_to: Any = None,
                     tz: str | None = None, status: Iterable[str] | None = None) -> tuple[list[str], Optional[Period]]:
    """The sessions a report covers: one id, or every session started in a local date range."""
    if session_id:
        with db.session() as s:
            if s.get(SessionRow, session_id) is None:
                raise ReportError(f"unknown session: {session_id}")
        return [session_id], None
    if date_from is None and date_to is None:
        raise ReportError("give a session (--session ID) or a date range (--from DATE --to DATE)")
    period = Period(_parse_day(date_from, "from"), _parse_day(date_to, "to"))
    rows = list_sessions(db, period.date_from, period.date_to, status, tz)
    if not rows:
        raise ReportError(f"no sessions between {period.label()}")
    return [r.id for r in reversed(rows)], period   # oldest first reads better in a report


def _logs(db: Database, session_ids: list[str], tz: str, progress: Progress, upto: float = 0.3) -> list[dict[str, Any]]:
    out = []
    for i, sid in enumerate(session_ids):
        out.append(build_session_log(db, sid, tz))
        progress(upto * (i + 1) / len(session_ids), sid)
    return out


# --- export entry points -------------------------------------------------------------------
def render_export(db: Database, paths: Paths, session_ids: list[str], fmt: str, *, period: Optional[Period] = None,
                  lang: str = "en", tz: str | None = None, progress: Progress | None = None) -> bytes:
    """The bytes of one export (``json``, ``csv``, ``xlsx``, ``pdf`` or ``zip`` archive).

    Example:
        >>> # data = render_export(db, paths, [sid], "xlsx", lang="id")
    """
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise ReportError(f"unknown format: {fmt!r} (use one of {', '.join(FORMATS)})")
    if not session_ids:
        raise ReportError("no sessions to export")
    progress = progress or _noop
    tz = tz or _settings_tz(db)
    if fmt == "zip":
        return archive_bytes(db, paths, session_ids, tz=tz, progress=progress)
    logs = _logs(db, session_ids, tz, progress)
    if fmt == "json":
        data = render_json(logs, period, tz)
    elif fmt == "csv":
        data = render_csv(logs)
    elif fmt == "xlsx":
        data = render_xlsx(paths, logs, period, lang, tz, progress)
    else:
        data = render_pdf(paths, logs, period, lang, tz, progress)
    progress(1.0, "done")
    return data


def mark(db: Database, session_ids: list[str], column: str) -> None:
    """Stamp ``exported_at`` or ``archived_at`` of the sessions with now."""
    assert column in ("exported_at", "archived_at")
    now = utcnow()
    with db.session() as s:
        for sid in session_ids:
            row = s.get(SessionRow, sid)
            if row is not None:
                setattr(row, column, now)


def _check_out(out: Path | str) -> Path:
    out = Path(out).expanduser()
    if out.is_dir():
        raise ReportError(f"output is a folder, give a file name: {out}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ReportError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ReportError(f"cannot write to {out}: permission denied")
    return out


def export_sessions(db: Database, paths: Paths, session_ids: list[str], fmt: str, out: Path | str, *,
                    period: Optional[Period] = None, lang: str = "en", tz: str | None = None,
                    progress: Progress | None = None) -> ExportResult:
    """Render and write an export atomically to ``out``; marks the sessions exported
    (archived for ``zip``). Raises :class:`ReportError` on bad input.

    Example:
        >>> # export_sessions(db, paths, [sid], "pdf", "report.pdf", lang="id")
    """
    out = _check_out(out)
    t0 = time.perf_counter()
    fmt = (fmt or "").lower().lstrip(".")
    if fmt == "zip":   # archives stream to a temp file next to the target, then rename (atomic)
        if not session_ids:
            raise ReportError("no sessions to export")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            write_archive_to(tmp, db, paths, session_ids, tz, progress)
            os.replace(tmp, out)
        except OSError as e:
            raise ReportError(f"cannot write {out}: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        size = out.stat().st_size
    else:
        data = render_export(db, paths, session_ids, fmt, period=period, lang=lang, tz=tz, progress=progress)
        try:
            atomic_write_bytes(out, data)
        except OSError as e:
            raise ReportError(f"cannot write {out}: {e.strerror or e}") from None
        size = len(data)
    mark(db, session_ids, "archived_at" if fmt == "zip" else "exported_at")
    return ExportResult(out.resolve(), fmt, list(session_ids), time.perf_counter() - t0, size)


def export_filename(session_ids: list[str], fmt: str, period: Optional[Period] = None) -> str:
    """A download name: ``<session>.pdf`` or ``report_<from>_<to>.xlsx``."""
    ext = "zip" if fmt == "zip" else fmt
    if period is None and len(session_ids) == 1:
        return f"{session_ids[0]}{'_log' if fmt in ('json', 'csv') else ''}.{ext}"
    a = period.date_from.isoformat() if period and period.date_from else "start"
    b = period.date_to.isoformat() if period and period.date_to else "now"
    return f"report_{a}_{b}.{ext}"


def report_job(ctx: Any, session_ids: list[str], formats: list[str], date_from: str | None = None,
               date_to: str | None = None, lang: str = "en", tz: str | None = None) -> dict[str, Any]:
    """A :class:`core.platform.jobs.JobRunner` job: write the chosen formats into ``data/exports`` with
    progress, so [Generate Report] never blocks the page and a reloaded page finds the files.

    Example:
        >>> # jid = runner.submit("report", report_job, session_ids=[sid], formats=["pdf", "xlsx"])
    """
    paths = Paths.from_env().ensure()
    period = Period(_parse_day(date_from, "from"), _parse_day(date_to, "to")) if (date_from or date_to) else None
    files = []
    stamp = i18n.local_stamp("%Y%m%d-%H%M%S", tz or _settings_tz(ctx.db))   # plant local, like the report
    for k, fmt in enumerate(formats):
        name = export_filename(session_ids, fmt, period)
        stem, ext = name.rsplit(".", 1)
        out = paths.exports / f"{stem}_{stamp}.{ext}"

        def prog(f: float, msg: str, k: int = k, fmt: str = fmt) -> None:
            ctx.progress((k + min(f, 0.99)) / len(formats), f"{fmt}: {msg}")
        r = export_sessions(ctx.db, paths, session_ids, fmt, out, period=period, lang=lang, tz=tz, progress=prog)
        files.append({"format": fmt, "path": str(r.path), "name": name, "bytes": r.bytes,
                      "seconds": round(r.seconds, 2)})
    return {"files": files, "sessions": session_ids}


def write_archive(db: Database, paths: Paths, session_ids: list[str], out: Path | str,
                  progress: Progress | None = None) -> ExportResult:
    """Write the sessions' archive to ``out`` and mark them ``archived_at``.

    Example:
        >>> # write_archive(db, paths, [sid], "backup.zip"); import_archive(db2, paths2, "backup.zip")
    """
    return export_sessions(db, paths, session_ids, "zip", out, progress=progress)
