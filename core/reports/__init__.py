"""Supervisor reports: the session log (JSON schema), recaps, exports (JSON, CSV, XLSX,
PDF) and session archives.

Modules: ``reports``.
"""
from __future__ import annotations

_EXPORTS = {
    "build_session_log": ".reports",
    "write_session_log": ".reports",
    "production_recap": ".reports",
    "export_sessions": ".reports",
    "render_export": ".reports",
    "write_archive": ".reports",
    "import_archive": ".reports",
    "list_sessions": ".reports",
    "ReportError": ".reports",
}

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
