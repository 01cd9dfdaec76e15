"""The session log: one session's rows as the PRD's JSON (``session_log.json``), checked by its schema."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes
from core.platform.storage import (
    CaptureRow,
    Database,
    SessionRow,
    utcnow,
)
from core.reports.common import (
    ReportError,
    _iso,
    _json_bytes,
    _r,
    _rel,
    _settings_tz,
    session_dir,
)

log = get("reports")


SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "session_log.schema.json"


LOG_NAME = "session_log.json"


SCHEMA_VERSION = 1


def _load_session(s: Any, session_id: str) -> SessionRow:
    row = s.scalars(select(SessionRow).where(SessionRow.id == session_id).options(
        selectinload(SessionRow.events),
        selectinload(SessionRow.captures).selectinload(CaptureRow.defects),
        selectinload(SessionRow.captures).selectinload(CaptureRow.measurements),
    )).first()
    if row is None:
        raise ReportError(f"unknown session: {session_id}")
    return row


def _log_from_row(row: SessionRow, tz: str) -> dict[str, Any]:
    folder = row.folder or ""
    cap_index = {c.id: c.index for c in row.captures}
    captures, defects, measurements = [], [], []
    types: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for c in row.captures:
        reviews[c.review] += 1
        last_m = max(c.measurements, key=lambda m: (m.created_at, m.id)) if c.measurements else None
        for d in sorted(c.defects, key=lambda d: d.id):
            types[d.type] += 1
            crop = _rel(folder, d.crop_path)
            defects.append({
                "type": d.type, "file": crop or _rel(folder, c.path),
                "capture_index": c.index, "capture_file": _rel(folder, c.path),
                "bbox": [_r(d.x1, 1), _r(d.y1, 1), _r(d.x2, 1), _r(d.y2, 1)],
                "score": _r(d.score, 4), "mask": _rel(folder, d.mask_path), "crop": crop,
                "area_px": _r(d.area_px, 1), "area_mm2": _r(d.area_mm2, 2),
                "segmenter": d.segmenter, "model_version": d.model_version,
                "detected_at": _iso(d.created_at, tz),
            })
        for m in sorted(c.measurements, key=lambda m: m.id):
            measurements.append({
                "capture_index": c.index, "length_mm": _r(m.length_mm, 2), "width_mm": _r(m.width_mm, 2),
                "length_px": _r(m.length_px, 2), "width_px": _r(m.width_px, 2), "angle_deg": _r(m.angle_deg, 2),
                "mm_per_px": _r(m.mm_per_px, 6), "stack_height_mm": _r(m.stack_height_mm, 2),
                "parallax_compensated": bool(m.parallax_compensated), "measured_at": _iso(m.created_at, tz),
            })
        captures.append({
            "index": c.index, "file": _rel(folder, c.path), "annotated": _rel(folder, c.annotated_path),
            "width": c.width, "height": c.height, "frame": c.frame, "captured_at": _iso(c.created_at, tz),
            "review": c.review, "reviewed_by": c.reviewed_by, "reviewed_at": _iso(c.reviewed_at, tz),
            "analysed_at": _iso(c.analysed_at, tz), "defects": len(c.defects),
            "defect_types": sorted({d.type for d in c.defects}),
            "length_mm": _r(last_m.length_mm, 2) if last_m else None,
            "width_mm": _r(last_m.width_mm, 2) if last_m else None,
        })
    events = [{
        "kind": e.kind, "delta": e.delta, "count_after": e.count_after, "frame": e.frame,
        "video_t": _r(e.video_t, 3), "time": _iso(e.wall_time, tz), "confidence": _r(e.confidence, 4),
        "reason": e.reason, "user": e.user, "capture_index": cap_index.get(e.capture_id) if e.capture_id else None,
    } for e in row.events]
    manual = [e for e in row.events if e.kind != "auto"]
    stamp = row.finished_at or row.started_at
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": row.id,
        "timestamp": _iso(stamp, tz),
        "count": row.count,
        "defects_found": defects,
        "name": row.name,
        "target": row.target,
        "status": row.status,
        "finish_alert": row.finish_alert,
        "source": row.source,
        "station": row.station,
        "created_by": row.created_by,
        "folder": folder,
        "timezone": tz,
        "started_at": _iso(row.started_at, tz),
        "finished_at": _iso(row.finished_at, tz),
        "exported_at": _iso(row.exported_at, tz),
        "archived_at": _iso(row.archived_at, tz),
        "generated_at": _iso(utcnow(), tz),
        "summary": {
            "count": row.count, "target": row.target, "difference": row.count - row.target,
            "captures": len(captures), "approved": reviews.get("approved", 0),
            "rejected": reviews.get("rejected", 0), "pending": reviews.get("pending", 0),
            "defects": len(defects), "defect_types": dict(sorted(types.items())),
            "captures_with_defects": sum(1 for c in captures if c["defects"]),
            "manual_corrections": len(manual), "measured": sum(1 for c in captures if c["length_mm"] is not None),
        },
        "events": events,
        "captures": captures,
        "measurements": measurements,
    }


def build_session_log(db: Database, session_id: str, tz: str | None = None) -> dict[str, Any]:
    """The session's JSON log in the PRD's schema plus the richer fields.

    Times are plant-local ISO 8601 with offset (``tz`` defaults to the ``ui.timezone``
    setting); file names are relative to the session folder.

    Example:
        >>> db = Database("sqlite://")
        >>> with db.session() as s:
        ...     s.add(SessionRow(id="b1", name="B", target=2, count=1, folder="d/b1"))
        >>> build_session_log(db, "b1")["summary"]["difference"]
        -1

    Raises :class:`ReportError` for an unknown session.
    """
    tz = tz or _settings_tz(db)
    with db.session() as s:
        return _log_from_row(_load_session(s, session_id), tz)


def write_session_log(db: Database, paths: Paths, session_id: str, tz: str | None = None) -> Path:
    """Write ``session_log.json`` into the session folder atomically; returns its path.

    Example:
        >>> # on Finish: write_session_log(db, paths, session_id)
    """
    data = build_session_log(db, session_id, tz)
    target = session_dir(paths, data["folder"] or session_id) / LOG_NAME
    return atomic_write_bytes(target, _json_bytes(data))


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
