"""Session logs, production recap, exports (JSON / CSV / Excel / PDF) and session archives.

Stages, each a plain function of the database (no Streamlit here):

1. **Log** — :func:`build_session_log` turns one session's rows into the PRD's JSON log
   (``session_id``, ``timestamp``, ``count``, ``defects_found``) plus the richer fields;
   :func:`write_session_log` stores it as ``session_log.json`` in the session folder.
2. **Recap** — :func:`list_sessions` and :func:`production_recap` feed the dashboard
   (sheets per day and shift, target vs actual, defect types, review rates).
3. **Export** — :func:`export_sessions` writes JSON, CSV, XLSX or PDF for one session or
   a date range and marks the sessions ``exported_at``.
4. **Archive** — :func:`write_archive` / :func:`import_archive` back a session up as one
   .zip (files + a manifest of its database rows) and restore it on another station,
   idempotently and refusing any member that would land outside its folder.

The database keeps UTC; logs and CSV carry the plant's local time as ISO 8601 with its
offset and a decimal point, so machines can read them in any locale.

Example:
    >>> from core.platform.storage import Database, SessionRow
    >>> db = Database("sqlite://")
    >>> with db.session() as s:
    ...     s.add(SessionRow(id="a1", name="Batch-A", target=50, count=50, folder="2026-11-21/a1"))
    >>> log = build_session_log(db, "a1", "Asia/Jakarta")
    >>> log["session_id"], log["count"], log["defects_found"]
    ('a1', 50, [])
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import stat
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, safe_join
from core.platform.storage import (TZ, CaptureRow, CountEventRow, Database, DefectRow, MeasurementRow, SessionRow,
                      utcnow)

log = get("reports")

SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "session_log.schema.json"
LOG_NAME = "session_log.json"
SCHEMA_VERSION = 1
FORMATS = ("json", "csv", "xlsx", "pdf", "zip")

# Shifts: 3 x 8 h starting 06:00 plant time (A 06-14, B 14-22, C 22-06). A night-shift
# sheet counted at 02:00 belongs to the production day on which shift C started.
SHIFT_START_HOUR = 6
SHIFT_HOURS = 8
SHIFT_NAMES = ("A", "B", "C")

Progress = Callable[[float, str], None]


class ReportError(ValueError):
    """Bad input for a report (unknown session, bad format, unwritable path): one clear line."""


def _noop(_f: float, _m: str = "") -> None:
    pass


# =====================================================================================
# 1. Session log
# =====================================================================================
def _iso(dt: Optional[datetime], tz: str) -> Optional[str]:
    return i18n.iso_local(dt, tz)


def _rel(folder: str, stored: str) -> str:
    """A stored path (relative to ``media/sessions``) as a path inside the session folder,
    so the log reads ``crop_01.png``-style names that stay valid when the folder moves."""
    if not stored:
        return ""
    p = stored.replace("\\", "/")
    prefix = folder.rstrip("/") + "/"
    if folder and p.startswith(prefix):
        return p[len(prefix):]
    if os.path.isabs(p):
        parts = PurePosixPath(p).parts
        fparts = PurePosixPath(folder).parts
        for i in range(len(parts) - len(fparts) + 1):  # …/sessions/<folder>/x.png → x.png
            if fparts and tuple(parts[i:i + len(fparts)]) == fparts:
                return "/".join(parts[i + len(fparts):])
    return p


def _r(x: Optional[float], nd: int = 3) -> Optional[float]:
    return None if x is None else round(float(x), nd)


def _settings_tz(db: Database) -> str:
    try:
        return db.load_settings().ui.timezone
    except Exception:  # a broken settings row must not stop a report
        return i18n.DEFAULT_TZ


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


def session_dir(paths: Paths, folder: str) -> Path:
    """The session's folder on disk (refuses a stored folder that escapes ``sessions``)."""
    return safe_join(paths.sessions, folder)


def write_session_log(db: Database, paths: Paths, session_id: str, tz: str | None = None) -> Path:
    """Write ``session_log.json`` into the session folder atomically; returns its path.

    Example:
        >>> # on Finish: write_session_log(db, paths, session_id)
    """
    data = build_session_log(db, session_id, tz)
    target = session_dir(paths, data["folder"] or session_id) / LOG_NAME
    return atomic_write_bytes(target, _json_bytes(data))


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# =====================================================================================
# Synthetic sessions (benchmark, tests, demo data)
# =====================================================================================
DEFECT_TYPES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")


# =====================================================================================
# 2. Sessions table and production recap
# =====================================================================================
@dataclass
class SessionSummary:
    """One row of the dashboard's sessions table."""
    id: str
    name: str
    target: int
    count: int
    status: str
    started_at: datetime
    finished_at: Optional[datetime]
    captures: int = 0
    defects: int = 0
    rejects: int = 0
    approved: int = 0
    exported_at: Optional[datetime] = None
    archived_at: Optional[datetime] = None


def _parse_day(value: Any, what: str) -> Optional[date]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ReportError(f"bad {what} date: {value!r} (use YYYY-MM-DD)") from None


def local_day_bounds(date_from: Any, date_to: Any, tz: str) -> tuple[Optional[datetime], Optional[datetime]]:
    """UTC bounds [start, end) of plant-local days ``date_from``..``date_to`` inclusive."""
    d0, d1 = _parse_day(date_from, "from"), _parse_day(date_to, "to")
    if d0 and d1 and d1 < d0:
        raise ReportError(f"the date range ends before it starts: {d0} > {d1}")
    z = i18n.zone(tz)
    start = datetime(d0.year, d0.month, d0.day, tzinfo=z).astimezone(timezone.utc) if d0 else None
    end = (datetime(d1.year, d1.month, d1.day, tzinfo=z) + timedelta(days=1)).astimezone(timezone.utc) if d1 else None
    return start, end


def list_sessions(db: Database, date_from: Any = None, date_to: Any = None, status: Iterable[str] | None = None,
                  tz: str | None = None) -> list[SessionSummary]:
    """Sessions started within the plant-local date range (inclusive), newest first, with
    their capture, defect and reject counts (aggregated in SQL, so 1,000s of rows stay fast).

    Example:
        >>> db = Database("sqlite://")
        >>> list_sessions(db, "2026-11-01", "2026-11-30")
        []
    """
    tz = tz or _settings_tz(db)
    start, end = local_day_bounds(date_from, date_to, tz)
    q = select(SessionRow).order_by(SessionRow.started_at.desc())
    if start is not None:
        q = q.where(SessionRow.started_at >= start)
    if end is not None:
        q = q.where(SessionRow.started_at < end)
    statuses = [s for s in (status or []) if s]
    if statuses:
        q = q.where(SessionRow.status.in_(statuses))
    with db.session() as s:
        rows = list(s.scalars(q))
        ids = [r.id for r in rows]
        caps: dict[str, Counter[str]] = defaultdict(Counter)
        defects: dict[str, int] = {}
        if ids:
            for sid, review, n in s.execute(select(CaptureRow.session_id, CaptureRow.review, func.count())
                                            .where(CaptureRow.session_id.in_(ids))
                                            .group_by(CaptureRow.session_id, CaptureRow.review)):
                caps[sid][review] += n
            for sid, n in s.execute(select(CaptureRow.session_id, func.count(DefectRow.id))
                                    .join(DefectRow, DefectRow.capture_id == CaptureRow.id)
                                    .where(CaptureRow.session_id.in_(ids)).group_by(CaptureRow.session_id)):
                defects[sid] = n
    return [SessionSummary(id=r.id, name=r.name, target=r.target, count=r.count, status=r.status,
                           started_at=r.started_at, finished_at=r.finished_at,
                           captures=sum(caps[r.id].values()), defects=defects.get(r.id, 0),
                           rejects=caps[r.id].get("rejected", 0), approved=caps[r.id].get("approved", 0),
                           exported_at=r.exported_at, archived_at=r.archived_at) for r in rows]


def shift_of(local: datetime) -> tuple[date, str]:
    """(production day, shift name) of a plant-local time.

    >>> shift_of(datetime(2026, 11, 21, 2, 0))     # 02:00 is the night shift of the day before
    (datetime.date(2026, 11, 20), 'C')
    >>> shift_of(datetime(2026, 11, 21, 6, 0))
    (datetime.date(2026, 11, 21), 'A')
    """
    shifted = local - timedelta(hours=SHIFT_START_HOUR)
    return shifted.date(), SHIFT_NAMES[min(shifted.hour // SHIFT_HOURS, len(SHIFT_NAMES) - 1)]


@dataclass
class Recap:
    """Figures for the production recap charts (plain lists of dicts, easy to plot or test)."""
    per_day: list[dict[str, Any]] = field(default_factory=list)        # {day, sheets}
    per_shift: list[dict[str, Any]] = field(default_factory=list)      # {day, shift, sheets}
    target_vs_actual: list[dict[str, Any]] = field(default_factory=list)  # {session, name, target, count}
    defect_types: dict[str, int] = field(default_factory=dict)
    reviews: dict[str, int] = field(default_factory=dict)              # approved / rejected / pending
    total_sheets: int = 0

    @property
    def approve_rate(self) -> Optional[float]:
        done = self.reviews.get("approved", 0) + self.reviews.get("rejected", 0)
        return None if not done else self.reviews.get("approved", 0) / done

    @property
    def reject_rate(self) -> Optional[float]:
        r = self.approve_rate
        return None if r is None else 1.0 - r


def production_recap(db: Database, session_ids: list[str], tz: str | None = None) -> Recap:
    """Sheets per day and per shift (from count events, manual corrections included),
    target vs actual, defect types and review counts of the given sessions.

    Example:
        >>> production_recap(Database("sqlite://"), []).total_sheets
        0
    """
    tz = tz or _settings_tz(db)
    rec = Recap()
    if not session_ids:
        return rec
    day: Counter[date] = Counter()
    shift: Counter[tuple[date, str]] = Counter()
    with db.session() as s:
        for when, delta in s.execute(select(CountEventRow.wall_time, CountEventRow.delta)
                                     .where(CountEventRow.session_id.in_(session_ids))):
            d, sh = shift_of(i18n.to_local(when, tz))
            day[d] += delta
            shift[(d, sh)] += delta
        for r in s.scalars(select(SessionRow).where(SessionRow.id.in_(session_ids)).order_by(SessionRow.started_at)):
            rec.target_vs_actual.append({"session": r.id, "name": r.name, "target": r.target, "count": r.count,
                                         "started_at": r.started_at})
        for t, n in s.execute(select(DefectRow.type, func.count()).join(CaptureRow, DefectRow.capture_id == CaptureRow.id)
                              .where(CaptureRow.session_id.in_(session_ids)).group_by(DefectRow.type)):
            rec.defect_types[t] = n
        for rv, n in s.execute(select(CaptureRow.review, func.count()).where(CaptureRow.session_id.in_(session_ids))
                               .group_by(CaptureRow.review)):
            rec.reviews[rv] = n
    rec.per_day = [{"day": d.isoformat(), "sheets": n} for d, n in sorted(day.items())]
    rec.per_shift = [{"day": d.isoformat(), "shift": sh, "sheets": n} for (d, sh), n in sorted(shift.items())]
    rec.total_sheets = sum(day.values())
    rec.defect_types = dict(sorted(rec.defect_types.items(), key=lambda kv: -kv[1]))
    return rec


def count_timeline(db: Database, session_id: str, tz: str | None = None) -> list[dict[str, Any]]:
    """Count events of one session over time: ``{time (local), count, kind, reason}``."""
    tz = tz or _settings_tz(db)
    with db.session() as s:
        rows = list(s.scalars(select(CountEventRow).where(CountEventRow.session_id == session_id)
                              .order_by(CountEventRow.wall_time, CountEventRow.id)))
        return [{"time": i18n.to_local(e.wall_time, tz), "count": e.count_after, "kind": e.kind,
                 "delta": e.delta, "reason": e.reason} for e in rows]


# =====================================================================================
# 3. Exports
# =====================================================================================
@dataclass
class ExportResult:
    """What an export wrote."""
    path: Optional[Path]
    format: str
    sessions: list[str]
    seconds: float
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "format": self.format, "sessions": self.sessions,
                "seconds": round(self.seconds, 3), "bytes": self.bytes}


@dataclass
class Period:
    """A plant-local date range of a report (both ends inclusive)."""
    date_from: Optional[date] = None
    date_to: Optional[date] = None

    def label(self) -> str:
        a = self.date_from.isoformat() if self.date_from else "…"
        b = self.date_to.isoformat() if self.date_to else "…"
        return f"{a} – {b}"


def resolve_sessions(db: Database, session_id: str | None = None, date_from: Any = None, date_to: Any = None,
                     tz: str | None = None, status: Iterable[str] | None = None) -> tuple[list[str], Optional[Period]]:
    """The sessions a report covers: one id, or every session started in a local date range."""
    if session_id:
        with db.session() as s:
            if s.get(SessionRow, session_id) is None:
                raise ReportError(f"unknown session: {session_id}")
        return [session_id], None
    if date_from is None and date_to is None:
        raise ReportError("give a session (--session ID) or a date range (--from DATE --to DATE)")
    period = Period(_parse_day(date_from, "from"), _parse_day(date_to, "to"))
    rows = list_sessions(db, period.date_from, period.date_to, status, tz)
    if not rows:
        raise ReportError(f"no sessions between {period.label()}")
    return [r.id for r in reversed(rows)], period   # oldest first reads better in a report


def _logs(db: Database, session_ids: list[str], tz: str, progress: Progress, upto: float = 0.3) -> list[dict[str, Any]]:
    out = []
    for i, sid in enumerate(session_ids):
        out.append(build_session_log(db, sid, tz))
        progress(upto * (i + 1) / len(session_ids), sid)
    return out


def render_json(logs: list[dict[str, Any]], period: Optional[Period], tz: str) -> bytes:
    """One session → its log; a date range → ``{from, to, sessions: [log, …]}``."""
    if period is None and len(logs) == 1:
        return _json_bytes(logs[0])
    return _json_bytes({"schema_version": SCHEMA_VERSION, "timezone": tz, "generated_at": _iso(utcnow(), tz),
                        "from": period.date_from.isoformat() if period and period.date_from else None,
                        "to": period.date_to.isoformat() if period and period.date_to else None,
                        "sessions": logs})


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


def _local_naive(iso: Optional[str]) -> Optional[datetime]:
    """Excel has no zones: local wall time, the zone is named in the header."""
    return None if not iso else datetime.fromisoformat(iso).replace(tzinfo=None)


def _image_file(paths: Paths, lg: dict[str, Any], rel: str) -> Optional[Path]:
    if not rel:
        return None
    try:
        p = safe_join(session_dir(paths, lg["folder"]), rel)
    except ValueError:
        return None
    return p if p.is_file() else None


def _thumb(path: Optional[Path], max_side: int, fmt: str = ".png", boxes: list[list[float]] | None = None) -> Optional[bytes]:
    """A small encoded copy of an image (optionally with defect boxes drawn), or None."""
    if path is None:
        return None
    import cv2
    import numpy as np
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    for b in boxes or []:
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), max(1, img.shape[1] // 200))
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(fmt, img, [cv2.IMWRITE_JPEG_QUALITY, 80] if fmt == ".jpg" else [])
    return bytes(np.asarray(buf).tobytes()) if ok else None


def _sheet_name(text: str, used: set[str]) -> str:
    name = "".join(ch for ch in text if ch not in "[]:*?/\\")[:31] or "Sheet"
    base, k = name, 2
    while name.lower() in used:
        name = f"{base[:28]} {k}"
        k += 1
    used.add(name.lower())
    return name


def render_xlsx(paths: Paths, logs: list[dict[str, Any]], period: Optional[Period], lang: str, tz: str,
                progress: Progress = _noop, thumb_px: int = 48) -> bytes:
    """Excel workbook: summary (with native charts), count events (line chart), captures,
    defects with embedded thumbnails, measurements. Headings follow ``lang``."""
    import xlsxwriter
    _ = i18n.translator(lang)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_urls": False})
    bold = wb.add_format({"bold": True})
    title = wb.add_format({"bold": True, "font_size": 16})
    head = wb.add_format({"bold": True, "bg_color": "#DDE4EE", "border": 1, "text_wrap": True, "valign": "top"})
    dtf = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    pct = wb.add_format({"num_format": "0.0%"})
    num2 = wb.add_format({"num_format": "0.00"})
    used: set[str] = set()
    zone_note = _("Times: {zone}").format(zone=tz)

    def table(ws: Any, row: int, headers: list[str], widths: list[int]) -> None:
        for j, (h, wd) in enumerate(zip(headers, widths)):
            ws.write(row, j, h, head)
            ws.set_column(j, j, wd)

    # --- Summary ---------------------------------------------------------------
    ws = wb.add_worksheet(_sheet_name(_("Summary"), used))
    ws.write(0, 0, _("Production report"), title)
    ws.write(1, 0, _("Period") + ": " + (period.label() if period else logs[0]["name"]))
    ws.write(2, 0, _("Generated") + ": " + (_iso(utcnow(), tz) or ""))
    ws.write(3, 0, zone_note)
    hdr = [_("Session"), _("Name"), _("Started"), _("Finished"), _("Target"), _("Count"), _("Difference"),
           _("Status"), _("Captures"), _("Approved"), _("Rejected"), _("Pending"), _("Defects"),
           _("Manual corrections"), _("Approve rate")]
    table(ws, 5, hdr, [24, 18, 19, 19, 8, 8, 10, 10, 9, 9, 9, 9, 8, 11, 10])
    r = 6
    for lg in logs:
        sm = lg["summary"]
        ws.write(r, 0, lg["session_id"])
        ws.write(r, 1, lg["name"])
        for j, key in ((2, "started_at"), (3, "finished_at")):
            v = _local_naive(lg[key])
            ws.write_datetime(r, j, v, dtf) if v else ws.write_blank(r, j, None)
        for j, v in enumerate([lg["target"], lg["count"], sm["difference"]], start=4):
            ws.write_number(r, j, v)
        ws.write(r, 7, _(lg["status"]))
        for j, v in enumerate([sm["captures"], sm["approved"], sm["rejected"], sm["pending"], sm["defects"],
                               sm["manual_corrections"]], start=8):
            ws.write_number(r, j, v)
        ws.write_formula(r, 14, f"=IF(J{r + 1}+K{r + 1}=0,\"\",J{r + 1}/(J{r + 1}+K{r + 1}))", pct)
        r += 1
    last = r - 1
    ws.write(r, 0, _("Total"), bold)
    for j in (4, 5, 6, 8, 9, 10, 11, 12, 13):
        col = xlsxwriter.utility.xl_col_to_name(j)
        ws.write_formula(r, j, f"=SUM({col}7:{col}{r})", bold)
    sname = ws.get_name()
    # chart data block (defect types, reviews) to the right of the table
    types: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for lg in logs:
        types.update(lg["summary"]["defect_types"])
        for k in ("approved", "rejected", "pending"):
            reviews[k] += lg["summary"][k]
    dr = r + 3
    ws.write(dr, 0, _("Defect type"), head)
    ws.write(dr, 1, _("Defects"), head)
    for i, (t, n) in enumerate(sorted(types.items(), key=lambda kv: -kv[1])):
        ws.write(dr + 1 + i, 0, t)
        ws.write_number(dr + 1 + i, 1, n)
    rr = dr
    ws.write(rr, 3, _("Review"), head)
    ws.write(rr, 4, _("Captures"), head)
    for i, k in enumerate(("approved", "rejected", "pending")):
        ws.write(rr + 1 + i, 3, _(k))
        ws.write_number(rr + 1 + i, 4, reviews[k])

    ch = wb.add_chart({"type": "column"})
    ch.add_series({"name": _("Target"), "categories": [sname, 6, 1, last, 1], "values": [sname, 6, 4, last, 4]})
    ch.add_series({"name": _("Count"), "categories": [sname, 6, 1, last, 1], "values": [sname, 6, 5, last, 5]})
    ch.set_title({"name": _("Target vs actual")})
    ch.set_size({"width": 560, "height": 300})
    ws.insert_chart(dr + 10, 0, ch)
    if types:
        ct = wb.add_chart({"type": "bar"})
        ct.add_series({"name": _("Defects"), "categories": [sname, dr + 1, 0, dr + len(types), 0],
                       "values": [sname, dr + 1, 1, dr + len(types), 1]})
        ct.set_title({"name": _("Defect types")})
        ct.set_legend({"none": True})
        ct.set_size({"width": 480, "height": 300})
        ws.insert_chart(dr + 10, 6, ct)
    cp = wb.add_chart({"type": "pie"})
    cp.add_series({"name": _("Review"), "categories": [sname, rr + 1, 3, rr + 3, 3],
                   "values": [sname, rr + 1, 4, rr + 3, 4], "data_labels": {"percentage": True},
                   "points": [{"fill": {"color": "#2E9E44"}}, {"fill": {"color": "#D33F3F"}},
                              {"fill": {"color": "#A0A0A0"}}]})
    cp.set_title({"name": _("Approve / reject")})
    cp.set_size({"width": 400, "height": 300})
    ws.insert_chart(dr + 10, 13, cp)
    progress(0.4, "summary")

    # --- Count events + line chart -----------------------------------------------
    we = wb.add_worksheet(_sheet_name(_("Count events"), used))
    table(we, 0, [_("Session"), _("Time"), _("Kind"), _("Change"), _("Count"), _("Reason"), _("User"),
                  _("Sheet #"), _("Confidence"), _("Technical detail")], [24, 19, 9, 8, 8, 30, 12, 8, 10, 40])
    r = 1
    line = wb.add_chart({"type": "scatter", "subtype": "straight"})
    for lg in logs:
        first = r
        for e in lg["events"]:
            we.write(r, 0, lg["session_id"])
            v = _local_naive(e["time"])
            we.write_datetime(r, 1, v, dtf) if v else None
            we.write(r, 2, _(e["kind"]))
            we.write_number(r, 3, e["delta"])
            we.write_number(r, 4, e["count_after"])
            # an automatic count's reason is the engine's own English ("texture NCC -0.02"): the
            # reader gets words in their language, the internals go to the last column
            if e["kind"] == "auto":
                we.write(r, 5, _("Sheet detected by the camera"))
                we.write(r, 9, e["reason"] or "")
            else:
                we.write(r, 5, e["reason"])
            we.write(r, 6, e["user"])
            if e["capture_index"] is not None:
                we.write_number(r, 7, e["capture_index"])
            if e["confidence"] is not None:
                we.write_number(r, 8, e["confidence"], num2)
            r += 1
        if r > first and len(line.series) < 8:   # a readable chart: at most 8 sessions
            line.add_series({"name": lg["name"], "categories": [we.get_name(), first, 1, r - 1, 1],
                             "values": [we.get_name(), first, 4, r - 1, 4], "marker": {"type": "none"}})
    line.set_title({"name": _("Count over time")})
    line.set_x_axis({"name": _("Time") + f" ({tz})", "date_axis": True, "num_format": "hh:mm"})
    line.set_y_axis({"name": _("Count")})
    line.set_size({"width": 640, "height": 320})
    if line.series:
        we.insert_chart(1, 10, line)
    we.freeze_panes(1, 0)
    progress(0.5, "events")

    # --- Captures ------------------------------------------------------------------
    wc = wb.add_worksheet(_sheet_name(_("Captures"), used))
    table(wc, 0, [_("Session"), _("Sheet #"), _("Captured"), _("File"), _("Review"), _("Reviewed by"),
                  _("Defects"), _("Defect types"), _("Length (mm)"), _("Width (mm)")],
          [24, 8, 19, 28, 10, 12, 8, 24, 11, 11])
    r = 1
    for lg in logs:
        for c in lg["captures"]:
            wc.write(r, 0, lg["session_id"])
            wc.write_number(r, 1, c["index"])
            v = _local_naive(c["captured_at"])
            wc.write_datetime(r, 2, v, dtf) if v else None
            wc.write(r, 3, c["file"])
            wc.write(r, 4, _(c["review"]))
            wc.write(r, 5, c["reviewed_by"])
            wc.write_number(r, 6, c["defects"])
            wc.write(r, 7, ", ".join(c["defect_types"]))
            if c["length_mm"] is not None:
                wc.write_number(r, 8, c["length_mm"], num2)
            if c["width_mm"] is not None:
                wc.write_number(r, 9, c["width_mm"], num2)
            r += 1
    if r > 1:
        wc.autofilter(0, 0, r - 1, 9)
    wc.freeze_panes(1, 0)
    progress(0.6, "captures")

    # --- Defects with thumbnails ---------------------------------------------------------
    wd = wb.add_worksheet(_sheet_name(_("Defects"), used))
    table(wd, 0, [_("Thumbnail"), _("Session"), _("Sheet #"), _("Type"), _("Score"), "x1", "y1", "x2", "y2",
                  _("Area (px)"), _("Area (mm²)"), _("Crop file"), _("Mask file"), _("Model")],
          [int(thumb_px / 6) + 2, 24, 8, 16, 7, 6, 6, 6, 6, 9, 9, 28, 28, 14])
    r = 1
    n_def = sum(len(lg["defects_found"]) for lg in logs) or 1
    done = 0
    for lg in logs:
        for d in lg["defects_found"]:
            wd.set_row(r, thumb_px * 0.75 + 4)   # points; the thumbnail fits inside the row
            src = _image_file(paths, lg, d["crop"])
            data = _thumb(src, thumb_px) if src else None
            if data is None:  # no crop on disk: cut the box out of the capture instead
                cap = _image_file(paths, lg, d["capture_file"])
                data = _crop_thumb(cap, d["bbox"], thumb_px) if cap else None
            if data:
                wd.insert_image(r, 0, "thumb.png", {"image_data": io.BytesIO(data), "x_offset": 2, "y_offset": 2,
                                                     "object_position": 1})
            wd.write(r, 1, lg["session_id"])
            wd.write_number(r, 2, d["capture_index"])
            wd.write(r, 3, d["type"])
            wd.write_number(r, 4, d["score"], num2)
            for j, v in enumerate(d["bbox"], start=5):
                wd.write_number(r, j, v)
            if d.get("area_px") is not None:
                wd.write_number(r, 9, d["area_px"])
            if d.get("area_mm2") is not None:
                wd.write_number(r, 10, d["area_mm2"], num2)
            wd.write(r, 11, d["crop"])
            wd.write(r, 12, d["mask"])
            wd.write(r, 13, d["model_version"])
            r += 1
            done += 1
            if done % 50 == 0:
                progress(0.6 + 0.3 * done / n_def, "defects")
    wd.freeze_panes(1, 0)

    # --- Measurements ------------------------------------------------------------------
    wm = wb.add_worksheet(_sheet_name(_("Measurements"), used))
    table(wm, 0, [_("Session"), _("Sheet #"), _("Length (mm)"), _("Width (mm)"), _("Length (px)"), _("Width (px)"),
                  _("Angle (°)"), _("mm per px"), _("Stack height (mm)"), _("Parallax compensated"), _("Measured")],
          [24, 8, 11, 11, 11, 11, 9, 10, 12, 12, 19])
    r = 1
    for lg in logs:
        for m in lg["measurements"]:
            wm.write(r, 0, lg["session_id"])
            wm.write_number(r, 1, m["capture_index"])
            for j, k in enumerate(("length_mm", "width_mm", "length_px", "width_px", "angle_deg", "mm_per_px",
                                   "stack_height_mm"), start=2):
                if m.get(k) is not None:
                    wm.write_number(r, j, m[k], num2 if k != "mm_per_px" else None)
            wm.write(r, 9, _("yes") if m["parallax_compensated"] else _("no"))
            v = _local_naive(m.get("measured_at"))
            wm.write_datetime(r, 10, v, dtf) if v else None
            r += 1
    wm.freeze_panes(1, 0)
    wb.close()
    progress(0.95, "xlsx")
    return buf.getvalue()


def _crop_thumb(path: Path, bbox: list[float], max_side: int) -> Optional[bytes]:
    import cv2
    import numpy as np
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    x1, y1, x2, y2 = (int(round(v)) for v in bbox)
    h, w = img.shape[:2]
    crop = img[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
    if crop.size == 0:
        return None
    s = min(1.0, max_side / max(crop.shape[:2]))
    if s < 1.0:
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))))
    ok, buf = cv2.imencode(".png", crop)
    return bytes(np.asarray(buf).tobytes()) if ok else None


# --- PDF ---------------------------------------------------------------------------------
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path(__file__).resolve().parents[2] / ".yolo")
MAX_FLAGGED = 300          # flagged captures printed in one report (the rest are counted)


def _chart_png(logs: list[dict[str, Any]], lang: str, tz: str) -> bytes:
    """The report's four charts as one PNG (matplotlib, no browser in the export path)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    _ = i18n.translator(lang)
    fig = Figure(figsize=(10, 6.6), dpi=100)
    (a1, a2), (a3, a4) = fig.subplots(2, 2)
    names = [lg["name"][:14] for lg in logs][:20]
    xs = range(len(names))
    a1.bar([x - 0.2 for x in xs], [lg["target"] for lg in logs][:20], 0.4, label=_("Target"), color="#9DB4D3")
    a1.bar([x + 0.2 for x in xs], [lg["count"] for lg in logs][:20], 0.4, label=_("Count"), color="#2F5D9B")
    a1.set_xticks(list(xs))
    a1.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
    a1.set_title(_("Target vs actual"), fontsize=10)
    a1.legend(fontsize=7)
    types: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for lg in logs:
        types.update(lg["summary"]["defect_types"])
        for k in ("approved", "rejected", "pending"):
            reviews[k] += lg["summary"][k]
    if types:
        items = sorted(types.items(), key=lambda kv: kv[1])
        a2.barh([t for t, _n in items], [n for _t, n in items], color="#C8553D")
        a2.tick_params(labelsize=7)
    else:
        a2.text(0.5, 0.5, _("No defects"), ha="center", va="center")
        a2.set_axis_off()
    a2.set_title(_("Defect types"), fontsize=10)
    vals = [reviews[k] for k in ("approved", "rejected", "pending")]
    if sum(vals):
        a3.pie(vals, labels=[_("approved"), _("rejected"), _("pending")], autopct="%1.0f%%",
               colors=["#2E9E44", "#D33F3F", "#A0A0A0"], textprops={"fontsize": 7})
    else:
        a3.text(0.5, 0.5, _("No captures"), ha="center", va="center")
        a3.set_axis_off()
    a3.set_title(_("Approve / reject"), fontsize=10)
    if len(logs) == 1:   # one session: its count over time; a range: sheets per day and shift
        ev = [e for e in logs[0]["events"] if e["time"]]
        if ev:
            a4.step([datetime.fromisoformat(e["time"]).replace(tzinfo=None) for e in ev],
                    [e["count_after"] for e in ev], where="post", color="#2F5D9B")
            a4.axhline(logs[0]["target"], ls=":", color="#888")
        a4.set_title(_("Count over time") + f" ({tz})", fontsize=10)
        for lab in a4.get_xticklabels():
            lab.set_rotation(30)
    else:
        per: dict[str, Counter[str]] = defaultdict(Counter)
        for lg in logs:
            for e in lg["events"]:
                d, sh = shift_of(datetime.fromisoformat(e["time"]).replace(tzinfo=None))
                per[d.isoformat()][sh] += e["delta"]
        days = sorted(per)
        bottom = [0] * len(days)
        for sh, col in zip(SHIFT_NAMES, ("#2F5D9B", "#9DB4D3", "#C8553D")):
            vals = [per[d][sh] for d in days]
            a4.bar([d[5:] for d in days], vals, bottom=bottom, color=col, label=_("Shift") + f" {sh}")
            bottom = [b + v for b, v in zip(bottom, vals)]
        a4.legend(fontsize=6)
        a4.set_title(_("Sheets per day and shift"), fontsize=10)
    a4.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _overlay_jpeg(paths: Paths, lg: dict[str, Any], cap: dict[str, Any], defects: list[dict[str, Any]],
                  max_side: int = 520) -> Optional[bytes]:
    """The capture with its defect masks tinted and boxes drawn (falls back to the annotated copy)."""
    import cv2
    import numpy as np
    src = _image_file(paths, lg, cap["file"]) or _image_file(paths, lg, cap["annotated"])
    if src is None:
        return None
    # big captures: let the JPEG decoder scale down (much faster than decode + resize)
    red = 4 if max(cap["width"], cap["height"]) >= 4 * max_side else (
        2 if max(cap["width"], cap["height"]) >= 2 * max_side else 1)
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[red]
    img = cv2.imread(str(src), flag)
    if img is None:
        return None
    h, w = img.shape[:2]
    lw = max(1, round(max(h, w) / 250))
    for d in defects:
        x1, y1, x2, y2 = (int(round(v / red)) for v in d["bbox"])
        mp = _image_file(paths, lg, d.get("mask", ""))
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) if mp else None
        if m is not None:
            full = np.zeros((h, w), np.uint8)
            if m.shape == (h, w):
                full = m
            elif 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h:
                full[y1:y2, x1:x2] = cv2.resize(m, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
            sel = full > 127
            img[sel] = (0.5 * img[sel] + 0.5 * np.array([0, 0, 255])).astype(np.uint8)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), lw)
        cv2.putText(img, d["type"], (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * lw, (0, 0, 255), lw)
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(buf.tobytes()) if ok else None


def _pdf_font(pdf: Any) -> tuple[str, Callable[[str], str]]:
    """DejaVu (Unicode: session names as typed, °, mm²) when installed, else Helvetica."""
    for d in FONT_DIRS:
        reg, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if reg.is_file():
            pdf.add_font("dejavu", "", str(reg))
            pdf.add_font("dejavu", "B", str(bold if bold.is_file() else reg))
            return "dejavu", lambda s: s
    return "helvetica", lambda s: s.encode("latin-1", "replace").decode("latin-1")


def render_pdf(paths: Paths, logs: list[dict[str, Any]], period: Optional[Period], lang: str, tz: str,
               progress: Progress = _noop, max_flagged: int = MAX_FLAGGED) -> bytes:
    """PDF report: summary table, charts, then pages of flagged captures (rejected or with
    defects) with their defect overlays. Headings follow ``lang``."""
    from fpdf import FPDF
    _ = i18n.translator(lang)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=14)
    font, clean = _pdf_font(pdf)
    generated = i18n.fmt_dt(utcnow(), tz)
    pdf.set_title(clean(_("Production report")))
    pdf.set_creator("Metal Sheet Monitor")

    def footer_text() -> str:
        return clean(_("Metal Sheet Monitor") + " · " + _("Generated") + " " + generated)

    pdf.footer = lambda: (pdf.set_y(-10), pdf.set_font(font, "", 7), pdf.set_text_color(120),  # type: ignore[method-assign]
                          pdf.cell(0, 5, footer_text() + f"   {pdf.page_no()}", align="R"),
                          pdf.set_text_color(0))
    pdf.add_page()
    pdf.set_font(font, "B", 18)
    pdf.cell(0, 10, clean(_("Production report")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 10)
    what = period.label() if period else f'{logs[0]["name"]} ({logs[0]["session_id"]})'
    pdf.cell(0, 6, clean(_("Period") + ": " + what), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, clean(_("Times: {zone}").format(zone=tz)), new_x="LMARGIN", new_y="NEXT")
    tot = {k: sum(lg["summary"][k] for lg in logs) for k in ("captures", "approved", "rejected", "pending", "defects")}
    count, target = sum(lg["count"] for lg in logs), sum(lg["target"] for lg in logs)
    pdf.ln(2)
    pdf.set_font(font, "B", 11)
    pdf.cell(0, 7, clean(_("Summary")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 10)
    lines = [(_("Sessions"), str(len(logs))), (_("Sheets counted / target"), f"{count} / {target}"),
             (_("Captures"), str(tot["captures"])),
             (_("Approved / rejected / pending"), f'{tot["approved"]} / {tot["rejected"]} / {tot["pending"]}'),
             (_("Defects"), str(tot["defects"]))]
    for k, v in lines:
        pdf.cell(70, 6, clean(k))
        pdf.cell(0, 6, clean(v), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    cols = [(_("Name"), 38), (_("Started"), 34), (_("Finished"), 34), (_("Target"), 14), (_("Count"), 14),
            (_("Status"), 18), (_("Rejected"), 17), (_("Defects"), 17)]

    def header_row() -> None:
        pdf.set_font(font, "B", 8)
        pdf.set_fill_color(221, 228, 238)
        for h, wd in cols:
            pdf.cell(wd, 6, clean(h), border=1, fill=True)
        pdf.ln()
        pdf.set_font(font, "", 8)

    header_row()
    for lg in logs:
        if pdf.get_y() > 275:
            pdf.add_page()
            header_row()
        sm = lg["summary"]
        row = [lg["name"][:24], _short(lg["started_at"]), _short(lg["finished_at"]), str(lg["target"]),
               str(lg["count"]), _(lg["status"]), str(sm["rejected"]), str(sm["defects"])]
        over = lg["count"] != lg["target"]
        for (h, wd), v in zip(cols, row):
            if over and h == _("Count"):
                pdf.set_text_color(200, 30, 30)   # miscount stands out
            pdf.cell(wd, 5.5, clean(v), border=1)
            pdf.set_text_color(0)
        pdf.ln()
    progress(0.4, "summary")
    # charts
    png = _chart_png(logs, lang, tz)
    if pdf.get_y() > 150:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(font, "B", 11)
    pdf.cell(0, 7, clean(_("Charts")), new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(png), x=10, w=190)
    progress(0.5, "charts")
    # flagged captures, 2 x 3 per page
    flagged = [(lg, c) for lg in logs for c in lg["captures"] if c["review"] == "rejected" or c["defects"]]
    shown = flagged[:max_flagged]
    by_cap: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for lg in logs:
        for d in lg["defects_found"]:
            by_cap[(lg["session_id"], d["capture_index"])].append(d)
    cell_w, cell_h, img_h = 93.0, 86.0, 70.0
    for i, (lg, c) in enumerate(shown):
        k = i % 6
        if k == 0:
            pdf.add_page()
            pdf.set_font(font, "B", 12)
            title = _("Flagged captures") + f" ({i + 1}–{min(i + 6, len(shown))} / {len(flagged)})"
            pdf.cell(0, 8, clean(title), new_x="LMARGIN", new_y="NEXT")
        x = 10 + (k % 2) * (cell_w + 4)
        y = 22 + (k // 2) * cell_h
        defects = by_cap.get((lg["session_id"], c["index"]), [])
        jpg = _overlay_jpeg(paths, lg, c, defects)
        if jpg:
            pdf.image(io.BytesIO(jpg), x=x, y=y, w=cell_w, h=img_h, keep_aspect_ratio=True)
        else:
            pdf.set_xy(x, y + img_h / 2)
            pdf.set_font(font, "", 8)
            pdf.cell(cell_w, 5, clean(_("image missing")), align="C")
        pdf.set_xy(x, y + img_h + 1)
        pdf.set_font(font, "B", 8)
        colour = (200, 30, 30) if c["review"] == "rejected" else (0, 0, 0)
        pdf.set_text_color(*colour)
        cap_line = f'{lg["name"]} · #{c["index"]} · {_(c["review"])}'
        # every line is fitted to the cell's width: text never runs past the page edge
        pdf.cell(cell_w, 4.5, _fit_lines(pdf, clean(cap_line), cell_w)[0], new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.set_font(font, "", 7.5)
        num = i18n.fmt_number   # the reader's language: 1.234,5 in Bahasa Indonesia
        size = (f' · {num(c["length_mm"], lang, 1)} × {num(c["width_mm"], lang, 1)} mm'
                if c["length_mm"] is not None and c["width_mm"] is not None else "")
        kinds = ", ".join(f'{i18n.defect_label(d["type"], lang)} {num(d["score"], lang, 2)}' for d in defects) or _("no defects")
        pdf.cell(cell_w, 4, _fit_lines(pdf, clean(_short(c["captured_at"]) + size), cell_w)[0],
                 new_x="LEFT", new_y="NEXT")
        for line in _fit_lines(pdf, clean(kinds), cell_w, max_lines=2):
            pdf.cell(cell_w, 3.6, line, new_x="LEFT", new_y="NEXT")
        if i % 20 == 0:
            progress(0.5 + 0.45 * (i + 1) / max(1, len(shown)), "flagged")
    if len(flagged) > len(shown):
        pdf.add_page()
        pdf.set_font(font, "", 10)
        pdf.cell(0, 8, clean(_("{n} more flagged captures are in the Excel and JSON exports.")
                             .format(n=len(flagged) - len(shown))))
    progress(0.97, "pdf")
    return bytes(pdf.output())


def _fit_lines(pdf: Any, text: str, width: float, max_lines: int = 1) -> list[str]:
    """``text`` wrapped at spaces into at most ``max_lines`` lines no wider than ``width`` in
    the current font; what does not fit ends in "…".

    >>> from fpdf import FPDF
    >>> p = FPDF(); p.add_page(); p.set_font("helvetica", "", 8)
    >>> _fit_lines(p, "scratches 0.91, pitted 0.80, inclusion 0.75", 30, 2)
    ['scratches 0.91, pitted', '0.80, inclusion 0.75']
    >>> _fit_lines(p, "a very long session name that cannot fit", 20)
    ['a very long...']
    """
    ell = "…" if pdf.font_family != "helvetica" else "..."
    words, lines, cur = text.split(" "), [], ""
    while words:
        w = words[0]
        cand = (cur + " " + w) if cur else w
        if pdf.get_string_width(cand) <= width:
            cur = cand
            words.pop(0)
            continue
        if not cur:                                   # one word wider than the cell
            cur = w
            words.pop(0)
        lines.append(cur)
        cur = ""
        if len(lines) == max_lines:
            break
    if cur and len(lines) < max_lines:
        lines.append(cur)
    if words or (lines and pdf.get_string_width(lines[-1]) > width):
        last = lines[-1] if lines else ""
        while last and pdf.get_string_width(last + ell) > width:
            last = last[:-1]
        lines[-1:] = [last.rstrip(" ,") + ell]
    return lines


def _short(iso: Optional[str]) -> str:
    """``2026-11-21T14:00:01+07:00`` → ``2026-11-21 14:00``."""
    return "–" if not iso else iso[:16].replace("T", " ")


# --- export entry points -------------------------------------------------------------------
def render_export(db: Database, paths: Paths, session_ids: list[str], fmt: str, *, period: Optional[Period] = None,
                  lang: str = "en", tz: str | None = None, progress: Progress | None = None) -> bytes:
    """The bytes of one export (``json``, ``csv``, ``xlsx``, ``pdf`` or ``zip`` archive).

    Example:
        >>> # data = render_export(db, paths, [sid], "xlsx", lang="id")
    """
    fmt = (fmt or "").lower().lstrip(".")
    if fmt not in FORMATS:
        raise ReportError(f"unknown format: {fmt!r} (use one of {', '.join(FORMATS)})")
    if not session_ids:
        raise ReportError("no sessions to export")
    progress = progress or _noop
    tz = tz or _settings_tz(db)
    if fmt == "zip":
        return archive_bytes(db, paths, session_ids, tz=tz, progress=progress)
    logs = _logs(db, session_ids, tz, progress)
    if fmt == "json":
        data = render_json(logs, period, tz)
    elif fmt == "csv":
        data = render_csv(logs)
    elif fmt == "xlsx":
        data = render_xlsx(paths, logs, period, lang, tz, progress)
    else:
        data = render_pdf(paths, logs, period, lang, tz, progress)
    progress(1.0, "done")
    return data


def mark(db: Database, session_ids: list[str], column: str) -> None:
    """Stamp ``exported_at`` or ``archived_at`` of the sessions with now."""
    assert column in ("exported_at", "archived_at")
    now = utcnow()
    with db.session() as s:
        for sid in session_ids:
            row = s.get(SessionRow, sid)
            if row is not None:
                setattr(row, column, now)


def _check_out(out: Path | str) -> Path:
    out = Path(out).expanduser()
    if out.is_dir():
        raise ReportError(f"output is a folder, give a file name: {out}")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ReportError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ReportError(f"cannot write to {out}: permission denied")
    return out


def export_sessions(db: Database, paths: Paths, session_ids: list[str], fmt: str, out: Path | str, *,
                    period: Optional[Period] = None, lang: str = "en", tz: str | None = None,
                    progress: Progress | None = None) -> ExportResult:
    """Render and write an export atomically to ``out``; marks the sessions exported
    (archived for ``zip``). Raises :class:`ReportError` on bad input.

    Example:
        >>> # export_sessions(db, paths, [sid], "pdf", "report.pdf", lang="id")
    """
    out = _check_out(out)
    t0 = time.perf_counter()
    fmt = (fmt or "").lower().lstrip(".")
    if fmt == "zip":   # archives stream to a temp file next to the target, then rename (atomic)
        if not session_ids:
            raise ReportError("no sessions to export")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            write_archive_to(tmp, db, paths, session_ids, tz, progress)
            os.replace(tmp, out)
        except OSError as e:
            raise ReportError(f"cannot write {out}: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)
        size = out.stat().st_size
    else:
        data = render_export(db, paths, session_ids, fmt, period=period, lang=lang, tz=tz, progress=progress)
        try:
            atomic_write_bytes(out, data)
        except OSError as e:
            raise ReportError(f"cannot write {out}: {e.strerror or e}") from None
        size = len(data)
    mark(db, session_ids, "archived_at" if fmt == "zip" else "exported_at")
    return ExportResult(out.resolve(), fmt, list(session_ids), time.perf_counter() - t0, size)


def export_filename(session_ids: list[str], fmt: str, period: Optional[Period] = None) -> str:
    """A download name: ``<session>.pdf`` or ``report_<from>_<to>.xlsx``."""
    ext = "zip" if fmt == "zip" else fmt
    if period is None and len(session_ids) == 1:
        return f"{session_ids[0]}{'_log' if fmt in ('json', 'csv') else ''}.{ext}"
    a = period.date_from.isoformat() if period and period.date_from else "start"
    b = period.date_to.isoformat() if period and period.date_to else "now"
    return f"report_{a}_{b}.{ext}"


def report_job(ctx: Any, session_ids: list[str], formats: list[str], date_from: str | None = None,
               date_to: str | None = None, lang: str = "en", tz: str | None = None) -> dict[str, Any]:
    """A :class:`core.platform.jobs.JobRunner` job: write the chosen formats into ``data/exports`` with
    progress, so [Generate Report] never blocks the page and a reloaded page finds the files.

    Example:
        >>> # jid = runner.submit("report", report_job, session_ids=[sid], formats=["pdf", "xlsx"])
    """
    paths = Paths.from_env().ensure()
    period = Period(_parse_day(date_from, "from"), _parse_day(date_to, "to")) if (date_from or date_to) else None
    files = []
    stamp = i18n.local_stamp("%Y%m%d-%H%M%S", tz or _settings_tz(ctx.db))   # plant local, like the report
    for k, fmt in enumerate(formats):
        name = export_filename(session_ids, fmt, period)
        stem, ext = name.rsplit(".", 1)
        out = paths.exports / f"{stem}_{stamp}.{ext}"

        def prog(f: float, msg: str, k: int = k, fmt: str = fmt) -> None:
            ctx.progress((k + min(f, 0.99)) / len(formats), f"{fmt}: {msg}")
        r = export_sessions(ctx.db, paths, session_ids, fmt, out, period=period, lang=lang, tz=tz, progress=prog)
        files.append({"format": fmt, "path": str(r.path), "name": name, "bytes": r.bytes,
                      "seconds": round(r.seconds, 2)})
    return {"files": files, "sessions": session_ids}


# =====================================================================================
# 4. Session archive (backup) and import
# =====================================================================================
ARCHIVE_FORMAT = "msm-session-archive"
ARCHIVE_VERSION = 1
MANIFEST = "manifest.json"
MEDIA_PREFIX = "media/"     # members: media/<session folder>/<file>, relative to data/media/sessions


def _row_dict(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in row.__table__.columns:
        if col.key in skip:
            continue
        v = getattr(row, col.key)
        out[col.key] = v.astimezone(timezone.utc).isoformat() if isinstance(v, datetime) else v
    return out


def _manifest_entry(row: SessionRow) -> dict[str, Any]:
    return {
        "session": _row_dict(row),
        "events": [_row_dict(e) for e in row.events],
        "captures": [{**_row_dict(c), "defects": [_row_dict(d) for d in c.defects],
                      "measurements": [_row_dict(m) for m in c.measurements]} for c in row.captures],
    }


def archive_bytes(db: Database, paths: Paths, session_ids: list[str], tz: str | None = None,
                  progress: Progress | None = None) -> bytes:
    """One .zip with every file of the sessions' folders (captures, crops, overlays, masks,
    logs), each session's fresh ``session_log.json`` and a manifest of their database rows."""
    buf = io.BytesIO()
    write_archive_to(buf, db, paths, session_ids, tz, progress)
    return buf.getvalue()


def write_archive_to(target: Any, db: Database, paths: Paths, session_ids: list[str], tz: str | None = None,
                     progress: Progress | None = None) -> None:
    """Stream the archive into ``target`` (a path or a binary file object): a 1,000-sheet
    session of full-size captures never has to fit in memory."""
    progress = progress or _noop
    tz = tz or _settings_tz(db)
    entries = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, sid in enumerate(session_ids):
            with db.session() as s:
                row = _load_session(s, sid)
                entry = _manifest_entry(row)
                log_doc = _log_from_row(row, tz)
            entries.append(entry)
            folder = row.folder or sid
            root = session_dir(paths, folder)
            files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()) if root.is_dir() else []
            for k, p in enumerate(files):
                rel = p.relative_to(root).as_posix()
                if rel == LOG_NAME or p.name.endswith(".tmp"):
                    continue
                # images are already compressed: store them, deflate only text
                ctype = zipfile.ZIP_STORED if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".mp4") else zipfile.ZIP_DEFLATED
                zf.write(p, f"{MEDIA_PREFIX}{folder}/{rel}", compress_type=ctype)
                if k % 100 == 0:
                    progress((i + k / max(1, len(files))) / len(session_ids) * 0.95, sid)
            zf.writestr(f"{MEDIA_PREFIX}{folder}/{LOG_NAME}", _json_bytes(log_doc))
        zf.writestr(MANIFEST, _json_bytes({"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION,
                                           "created_at": utcnow().isoformat(), "sessions": entries}))
    progress(1.0, "archive")


def write_archive(db: Database, paths: Paths, session_ids: list[str], out: Path | str,
                  progress: Progress | None = None) -> ExportResult:
    """Write the sessions' archive to ``out`` and mark them ``archived_at``.

    Example:
        >>> # write_archive(db, paths, [sid], "backup.zip"); import_archive(db2, paths2, "backup.zip")
    """
    return export_sessions(db, paths, session_ids, "zip", out, progress=progress)


@dataclass
class ImportResult:
    """What an archive import did; importing the same archive again creates nothing."""
    created: list[str] = field(default_factory=list)     # sessions added to the database
    existing: list[str] = field(default_factory=list)    # sessions already there (rows untouched)
    files_written: int = 0
    files_skipped: int = 0                                # already on disk

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing, "files_written": self.files_written,
                "files_skipped": self.files_skipped}


def _unsafe_member(info: zipfile.ZipInfo) -> Optional[str]:
    """Why a zip member may not be extracted (zip-slip), or None when it is safe."""
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if any(part in ("..", "") for part in name.rstrip("/").split("/")) or name.startswith("./"):
        return "leaves its folder (..)"
    if name != MANIFEST and not name.startswith(MEDIA_PREFIX):
        return "is outside media/"
    return None


def _parse_dt(v: Any) -> Any:
    return datetime.fromisoformat(v) if isinstance(v, str) and v else v


def _mk(model: type, data: dict[str, Any], skip: tuple[str, ...] = ()) -> Any:
    cols = {c.key: c for c in model.__table__.columns}
    kwargs = {}
    for k, v in data.items():
        if k not in cols or k in skip:
            continue
        kwargs[k] = _parse_dt(v) if isinstance(cols[k].type, TZ) else v
    return model(**kwargs)


def import_archive(db: Database, paths: Paths, archive: Path | str | bytes,
                   progress: Progress | None = None) -> ImportResult:
    """Restore sessions from an archive (another station's backup). Idempotent: sessions
    already in the database keep their rows, files already on disk are not rewritten.
    Refuses the whole archive, before writing anything, when any member is a symlink,
    absolute, climbs out with ``..``, or the manifest names a folder outside ``sessions``.
    """
    progress = progress or _noop
    src: Any = io.BytesIO(archive) if isinstance(archive, (bytes, bytearray)) else Path(archive)
    if isinstance(src, Path) and not src.is_file():
        raise ReportError(f"archive not found: {src}")
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise ReportError(f"not a session archive (bad zip): {e}") from None
    res = ImportResult()
    with zf:
        infos = zf.infolist()
        for info in infos:
            why = _unsafe_member(info)
            if why:
                raise ReportError(f"refused archive: member {info.filename!r} {why}")
        try:
            manifest = json.loads(zf.read(MANIFEST))
        except KeyError:
            raise ReportError("not a session archive: manifest.json is missing") from None
        except ValueError:
            raise ReportError("not a session archive: manifest.json is not valid JSON") from None
        if manifest.get("format") != ARCHIVE_FORMAT or not isinstance(manifest.get("sessions"), list):
            raise ReportError("not a session archive: unknown manifest format")
        folders: dict[str, str] = {}
        for entry in manifest["sessions"]:
            srow = entry.get("session") or {}
            sid, folder = str(srow.get("id") or ""), str(srow.get("folder") or "")
            if not sid or not folder:
                raise ReportError("refused archive: a session in the manifest has no id or folder")
            try:
                session_dir(paths, folder)
            except ValueError:
                raise ReportError(f"refused archive: session folder {folder!r} leaves the sessions folder") from None
            if _unsafe_member(zipfile.ZipInfo(f"{MEDIA_PREFIX}{folder}/x")):
                raise ReportError(f"refused archive: session folder {folder!r} is not a plain relative path")
            folders[folder] = sid
        # every media member must belong to a session folder of the manifest
        for info in infos:
            if info.filename == MANIFEST or info.is_dir():
                continue
            rel = info.filename[len(MEDIA_PREFIX):]
            if not any(rel.startswith(f + "/") for f in folders):
                raise ReportError(f"refused archive: member {info.filename!r} is outside the archived sessions")
        # files first (a crash leaves files without rows, never rows without files)
        members = [i for i in infos if i.filename != MANIFEST and not i.is_dir()]
        for k, info in enumerate(members):
            dest = safe_join(paths.sessions, info.filename[len(MEDIA_PREFIX):])
            if dest.exists():
                res.files_skipped += 1
            else:
                atomic_write_bytes(dest, zf.read(info))
                res.files_written += 1
            if k % 100 == 0:
                progress(0.8 * (k + 1) / max(1, len(members)), "files")
    for entry in manifest["sessions"]:
        sid = entry["session"]["id"]
        with db.session() as s:
            if s.get(SessionRow, sid) is not None:
                res.existing.append(sid)
                continue
            s.add(_mk(SessionRow, entry["session"]))
            s.flush()
            cap_ids: dict[int, int] = {}
            for c in entry.get("captures", []):
                row = _mk(CaptureRow, c, skip=("id",))
                s.add(row)
                s.flush()
                cap_ids[int(c["id"])] = row.id
                for d in c.get("defects", []):
                    s.add(_mk(DefectRow, {**d, "capture_id": row.id}, skip=("id",)))
                for m in c.get("measurements", []):
                    s.add(_mk(MeasurementRow, {**m, "capture_id": row.id}, skip=("id",)))
            for e in entry.get("events", []):
                old = e.get("capture_id")
                s.add(_mk(CountEventRow, {**e, "capture_id": cap_ids.get(int(old)) if old is not None else None},
                          skip=("id",)))
            res.created.append(sid)
    progress(1.0, "import")
    return res


# =====================================================================================
# Command line: export, archive, bench export
# =====================================================================================
class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage + exiting, so bad input is one line."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ReportError(message)


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _open_db() -> tuple[Database, Paths]:
    paths = Paths.from_env().ensure()
    return Database(), paths


def cli_export(argv: list[str]) -> int:
    """``python -m core export --session ID --format pdf --out report.pdf`` (or ``--from/--to``)."""
    p = _Parser(prog="python -m core export", description="Export a session (or a date range) as a report.")
    p.add_argument("--session", help="session id")
    p.add_argument("--from", dest="date_from", help="first local day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="last local day, YYYY-MM-DD (inclusive)")
    p.add_argument("--status", action="append", choices=["active", "paused", "finished"],
                   help="only sessions with this status (repeatable; date range only)")
    p.add_argument("--format", required=True, help="json | csv | xlsx | pdf | zip")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--lang", default=None, help="report language: id | en (default: settings)")
    p.add_argument("--tz", default=None, help="time zone (default: settings ui.timezone)")
    try:
        a = p.parse_args(argv)
        fmt = a.format.lower()
        if fmt not in FORMATS:
            raise ReportError(f"unknown format: {a.format!r} (use one of {', '.join(FORMATS)})")
        if a.session and (a.date_from or a.date_to):
            raise ReportError("give either --session or --from/--to, not both")
        out = _check_out(a.out)
        db, paths = _open_db()
        settings = db.load_settings()
        tz = a.tz or settings.ui.timezone
        if a.tz and i18n.zone(a.tz).key != a.tz:
            raise ReportError(f"unknown time zone: {a.tz}")
        lang = a.lang or settings.ui.language
        if lang not in i18n.LANGUAGES:
            raise ReportError(f"unknown language: {lang} (use id or en)")
        ids, period = resolve_sessions(db, a.session, a.date_from, a.date_to, tz, a.status)
        res = export_sessions(db, paths, ids, fmt, out, period=period, lang=lang, tz=tz)
    except SystemExit as e:   # --help
        return int(e.code or 0)
    except ReportError as e:
        return _fail(str(e))
    print(json.dumps(res.to_json()))
    return 0


def cli_archive(argv: list[str]) -> int:
    """``python -m core archive --session ID --out X.zip`` or ``python -m core archive --import X.zip``."""
    p = _Parser(prog="python -m core archive", description="Back up sessions as a .zip, or import such a backup.")
    p.add_argument("--session", action="append", help="session id (repeatable)")
    p.add_argument("--from", dest="date_from", help="first local day, YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", help="last local day, YYYY-MM-DD (inclusive)")
    p.add_argument("--out", help="archive to write")
    p.add_argument("--import", dest="import_", metavar="ZIP", help="archive to import")
    try:
        a = p.parse_args(argv)
        db, paths = _open_db()
        if a.import_:
            if a.session or a.out:
                raise ReportError("--import takes no --session/--out")
            res_i = import_archive(db, paths, a.import_)
            print(json.dumps(res_i.to_json()))
            return 0
        if not a.out:
            raise ReportError("give --out X.zip (or --import X.zip)")
        out = _check_out(a.out)
        if a.session:
            ids = []
            for sid in a.session:
                ids += resolve_sessions(db, sid)[0]
        else:
            ids = resolve_sessions(db, None, a.date_from, a.date_to)[0]
        res = write_archive(db, paths, ids, out)
    except SystemExit as e:
        return int(e.code or 0)
    except ReportError as e:
        return _fail(str(e))
    print(json.dumps(res.to_json()))
    return 0
