"""CSV export: one row per session, plant local time as ISO 8601."""
from __future__ import annotations

import csv
import io
from typing import Any

from core.platform.log import get

log = get("reports")


CSV_COLUMNS = ("session_id", "session_name", "target", "count", "status", "started_at", "finished_at",
               "capture_index", "captured_at", "file", "review", "defects", "defect_types", "length_mm", "width_mm")


def render_csv(logs: list[dict[str, Any]]) -> bytes:
    """One row per captured sheet (a session without captures still gets one row).
    Machine-readable: decimal point, ISO 8601 with offset, English column keys."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for lg in logs:
        head = [lg["session_id"], lg["name"], lg["target"], lg["count"], lg["status"], lg["started_at"],
                lg["finished_at"] or ""]
        if not lg["captures"]:
            w.writerow(head + [""] * 8)
        for c in lg["captures"]:
            w.writerow(head + [c["index"], c["captured_at"], c["file"], c["review"], c["defects"],
                               ";".join(c["defect_types"]), "" if c["length_mm"] is None else c["length_mm"],
                               "" if c["width_mm"] is None else c["width_mm"]])
    return buf.getvalue().encode("utf-8")
