"""The live station: sources, the counting worker, captures, sessions, alerts.

Modules: ``sources`` (files and streams with reconnect), ``worker`` (the counting loop of a
station), ``capture`` (atomic capture files), ``sessions`` (start/pause/finish/correct),
``alerts`` (sounds), ``count`` (count a whole file or stream: ``python -m core count``).
"""
from __future__ import annotations

_EXPORTS = {
    "open_source": ".sources",
    "probe_video": ".sources",
    "is_stream_uri": ".sources",
    "SourceError": ".sources",
    "FrameSource": ".sources",
    "CountingWorker": ".worker",
    "WorkerStatus": ".worker",
    "count_video": ".count",
    "CountResult": ".count",
    "start_session": ".sessions",
    "pause_session": ".sessions",
    "resume_session": ".sessions",
    "finish_session": ".sessions",
    "correct_count": ".sessions",
    "open_session": ".sessions",
    "SessionStatus": ".sessions",
    "SessionError": ".sessions",
}

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
