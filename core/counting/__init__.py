"""The counting engine: pure, frames in, events out.

No sources, no database, no translations: :class:`CountingEngine` takes frames with their
index and time and returns a :class:`CountEvent` when a new sheet lies on the stack.

Modules: ``engine`` (state machine and verifiers).
"""
from __future__ import annotations

_EXPORTS = {
    "CountingEngine": ".engine",
    "CountEvent": ".engine",
    "EngineState": ".engine",
    "EngineStatus": ".engine",
    "Verdict": ".engine",
    "Verifier": ".engine",
    "ModelFreeVerifier": ".engine",
    "DetectorVerifier": ".engine",
    "make_verifier": ".engine",
    "load_mask": ".engine",
    "DetectFn": ".engine",
    "Change": ".engine",
}

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
