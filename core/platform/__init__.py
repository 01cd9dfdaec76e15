"""What every part of the product stands on: storage (SQLAlchemy), the one typed settings
object, paths, sign-in, audited engineering changes, health, background jobs, translations,
logging, user-facing errors and the offline set-up of Ultralytics.

Modules: ``storage``, ``settings``, ``paths``, ``auth``, ``engineering``, ``health``, ``jobs``,
``i18n``, ``log``, ``errors``, ``offline``.
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

_EXPORTS = {
    "Database": ".storage",
    "Settings": ".settings",
    "CountingSettings": ".settings",
    "Paths": ".paths",
    "UserError": ".errors",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use
__all__ = sorted(_EXPORTS)
