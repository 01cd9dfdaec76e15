"""What every part of the product stands on: storage (SQLAlchemy), the one typed settings
object, paths, sign-in, audited engineering changes, health, background jobs, translations,
logging, user-facing errors and the offline set-up of Ultralytics.

Modules: ``storage``, ``settings``, ``paths``, ``auth``, ``engineering``, ``health``, ``jobs``,
``i18n``, ``log``, ``errors``, ``offline``.
"""
from __future__ import annotations

_EXPORTS = {
    "Database": ".storage",
    "Settings": ".settings",
    "CountingSettings": ".settings",
    "Paths": ".paths",
    "UserError": ".errors",
}

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
