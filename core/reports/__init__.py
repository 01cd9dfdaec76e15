"""Supervisor reports: the session log (JSON schema), recaps, exports and session archives.

Stages, each a plain function of the database (no Streamlit here):

1. **Log** (``sessionlog``) — :func:`build_session_log` turns one session's rows into the PRD's
   JSON log; :func:`write_session_log` stores it as ``session_log.json`` in the session folder.
2. **Recap** (``recap``) — :func:`list_sessions` and :func:`production_recap` feed the dashboard.
3. **Export** (``export``, one module per format: ``export_json``, ``export_csv``,
   ``export_xlsx``, ``export_pdf``) — :func:`export_sessions` writes one session or a date range.
4. **Archive** (``archive``) — :func:`write_archive` / :func:`import_archive` back a session up
   as one .zip and restore it on another station.

``cli`` holds ``python -m core export`` and ``python -m core archive``; ``common`` the shared
types (:class:`Period`, :class:`ExportResult`, :class:`ReportError`).

Example:
    >>> from core.platform.storage import Database, SessionRow
    >>> from core.reports import build_session_log
    >>> db = Database("sqlite://")
    >>> with db.session() as s:
    ...     s.add(SessionRow(id="a1", name="Batch-A", target=50, count=50, folder="2026-11-21/a1"))
    >>> log = build_session_log(db, "a1", "Asia/Jakarta")
    >>> log["session_id"], log["count"], log["defects_found"]
    ('a1', 50, [])
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

_EXPORTS = {
    "build_session_log": ".sessionlog",
    "write_session_log": ".sessionlog",
    "load_schema": ".sessionlog",
    "LOG_NAME": ".sessionlog",
    "SCHEMA_VERSION": ".sessionlog",
    "export_sessions": ".export",
    "render_export": ".export",
    "resolve_sessions": ".export",
    "report_job": ".export",
    "export_filename": ".export",
    "write_archive": ".export",
    "import_archive": ".archive",
    "archive_bytes": ".archive",
    "ImportResult": ".archive",
    "ARCHIVE_FORMAT": ".archive",
    "production_recap": ".recap",
    "list_sessions": ".recap",
    "count_timeline": ".recap",
    "shift_of": ".recap",
    "SHIFT_NAMES": ".recap",
    "Recap": ".recap",
    "SessionSummary": ".recap",
    "local_day_bounds": ".recap",
    "ReportError": ".common",
    "Period": ".common",
    "ExportResult": ".common",
    "FORMATS": ".common",
    "CSV_COLUMNS": ".export_csv",
    "DEFECT_TYPES": ".common",
    "session_dir": ".common",
    "render_json": ".export_json",
    "render_csv": ".export_csv",
    "render_xlsx": ".export_xlsx",
    "render_pdf": ".export_pdf",
}

__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use


__all__ = sorted(_EXPORTS)
