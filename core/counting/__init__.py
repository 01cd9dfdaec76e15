"""The counting engine: pure, frames in, events out.

No sources, no database, no translations: :class:`CountingEngine` takes frames with their
index and time and returns a :class:`CountEvent` when a new sheet lies on the stack.

Modules: ``engine`` (state machine and verifiers).
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use
__all__ = sorted(_EXPORTS)
