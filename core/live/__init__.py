"""The live station: sources, the counting worker, captures, sessions, alerts.

Modules: ``sources`` (files and streams with reconnect), ``worker`` (the counting loop of a
station), ``capture`` (atomic capture files), ``sessions`` (start/pause/finish/correct),
``alerts`` (sounds), ``count`` (count a whole file or stream: ``python -m core count``).
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use
__all__ = sorted(_EXPORTS)
