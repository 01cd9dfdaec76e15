"""Production recap for the dashboard: sessions in a period, sheets per day and shift, target vs actual."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Optional

from sqlalchemy import func, select

from core.platform import i18n
from core.platform.log import get
from core.platform.storage import (
    CaptureRow,
    CountEventRow,
    Database,
    DefectRow,
    SessionRow,
)
from core.reports.common import ReportError, _settings_tz

log = get("reports")


# Shifts: 3 x 8 h starting 06:00 plant time (A 06-14, B 14-22, C 22-06). A night-shift
# sheet counted at 02:00 belongs to the production day on which shift C started.
SHIFT_START_HOUR = 6


SHIFT_HOURS = 8


SHIFT_NAMES = ("A", "B", "C")


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
