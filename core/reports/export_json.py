"""JSON export: the session logs of a period in one document."""
from __future__ import annotations

from typing import Any, Optional

from core.platform.log import get
from core.platform.storage import (
    utcnow,
)
from core.reports.common import Period, _iso, _json_bytes
from core.reports.sessionlog import SCHEMA_VERSION

log = get("reports")


def render_json(logs: list[dict[str, Any]], period: Optional[Period], tz: str) -> bytes:
    """One session → its log; a date range → ``{from, to, sessions: [log, …]}``."""
    if period is None and len(logs) == 1:
        return _json_bytes(logs[0])
    return _json_bytes({"schema_version": SCHEMA_VERSION, "timezone": tz, "generated_at": _iso(utcnow(), tz),
                        "from": period.date_from.isoformat() if period and period.date_from else None,
                        "to": period.date_to.isoformat() if period and period.date_to else None,
                        "sessions": logs})
