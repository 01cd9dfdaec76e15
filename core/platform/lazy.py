"""Package exports that load on first use (PEP 562), so importing a package stays cheap and
no package drags in what it does not need.

Example:
    >>> ga = lazy_exports("core.platform", {"Paths": ".paths"})
    >>> ga("Paths").__name__
    'Paths'
    >>> ga("nope")
    Traceback (most recent call last):
    ...
    AttributeError: module 'core.platform' has no attribute 'nope'
"""
from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to the
    submodule (relative, e.g. ``".engine"``) that defines it."""
    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return __getattr__
