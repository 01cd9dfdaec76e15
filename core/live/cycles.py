"""Counting cycles kept for teach mode: every decision's cues, and the truth when known.

The worker stores each engine decision (count or not) with its cues; an operator's ±1
correction labels the cycle it corrects (+1: the latest cycle that was NOT counted was a
sheet; −1: the latest counted cycle was not), and an engineer confirms cycles in Settings →
teach mode. :func:`examples` returns the labelled ones for :func:`core.counting.teach.fit`.

Example:
    >>> from core.platform.storage import Database
    >>> db = Database("sqlite://")
    >>> cid = record(db, "s-1", frame=10, t=1.0, accepted=False, probability=0.3, reason="r",
    ...              cues={"tex_area": 0.1})
    >>> label_from_correction(db, "s-1", +1) == cid
    True
    >>> examples(db)
    ([{'tex_area': 0.1}], [1])
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import delete, select

from core.platform.storage import CountingCycleRow, Database, utcnow

KEEP = 5000          # cycles kept (oldest unlabelled ones go first)


@dataclass
class Cycle:
    id: int
    session_id: Optional[str]
    frame: int
    video_t: float
    wall_time: datetime
    accepted: bool
    probability: float
    reason: str
    cues: dict[str, float]
    label: Optional[int]
    label_source: str


def _cycle(r: CountingCycleRow) -> Cycle:
    return Cycle(id=r.id, session_id=r.session_id, frame=r.frame, video_t=r.video_t, wall_time=r.wall_time,
                 accepted=bool(r.accepted), probability=float(r.probability), reason=r.reason, cues=dict(r.cues or {}),
                 label=r.label, label_source=r.label_source or "")


def record(db: Database, session_id: Optional[str], frame: int, t: float, accepted: bool, probability: float,
           reason: str, cues: Optional[dict[str, float]]) -> int:
    """Store one decision; returns its id."""
    with db.session() as s:
        row = CountingCycleRow(session_id=session_id, frame=int(frame), video_t=float(t), accepted=bool(accepted),
                               probability=float(probability), reason=reason[:500], cues=dict(cues or {}))
        s.add(row)
        s.flush()
        cid = int(row.id)
        n = s.scalar(select(CountingCycleRow.id).order_by(CountingCycleRow.id.desc()).offset(KEEP).limit(1))
        if n is not None:
            s.execute(delete(CountingCycleRow).where(CountingCycleRow.id <= n, CountingCycleRow.label.is_(None)))
    return cid


def record_decision(db: Database, session_id: Optional[str], decision: Any) -> int:
    """Store an engine :class:`~core.counting.engine.Decision`."""
    p = decision.confidence if decision.accept else 1.0 - decision.confidence
    return record(db, session_id, decision.frame, decision.t, decision.accept, p, decision.reason, decision.cues)


def set_label(db: Database, cycle_id: int, label: Optional[int], source: str = "engineer") -> None:
    if label not in (0, 1, None):
        raise ValueError("label must be 0, 1 or None")
    with db.session() as s:
        r = s.get(CountingCycleRow, cycle_id)
        if r is None:
            raise KeyError(cycle_id)
        r.label, r.label_source, r.labelled_at = label, (source if label is not None else ""), \
            (utcnow() if label is not None else None)


def label_from_correction(db: Database, session_id: str, delta: int) -> Optional[int]:
    """An operator's ±1 makes the latest matching cycle of the session a labelled example:
    +1 → the latest cycle that was not counted (and not yet labelled) was a sheet;
    −1 → the latest counted cycle was not. Returns the cycle id, or None."""
    want_accepted = delta < 0
    with db.session() as s:
        r = s.scalars(select(CountingCycleRow).where(CountingCycleRow.session_id == session_id,
                                                     CountingCycleRow.accepted.is_(want_accepted),
                                                     CountingCycleRow.label.is_(None))
                      .order_by(CountingCycleRow.id.desc()).limit(1)).first()
        if r is None:
            return None
        r.label, r.label_source, r.labelled_at = (0 if delta < 0 else 1), "operator", utcnow()
        return int(r.id)


def recent(db: Database, limit: int = 50, session_id: Optional[str] = None) -> list[Cycle]:
    """The newest cycles first."""
    with db.session() as s:
        q = select(CountingCycleRow).order_by(CountingCycleRow.id.desc()).limit(limit)
        if session_id is not None:
            q = q.where(CountingCycleRow.session_id == session_id)
        return [_cycle(r) for r in s.scalars(q)]


def examples(db: Database) -> tuple[list[dict[str, float]], list[int]]:
    """(cues, labels) of every labelled cycle, oldest first."""
    with db.session() as s:
        rows = list(s.scalars(select(CountingCycleRow).where(CountingCycleRow.label.is_not(None))
                              .order_by(CountingCycleRow.id)))
        return [dict(r.cues or {}) for r in rows], [int(r.label) for r in rows]


# --------------------------------------------------------------------------- teach mode
def fit_station(db: Database, cycle_ids: Optional[list[int]] = None) -> Any:
    """Fit the cue rule to the labelled cycles (all, or ``cycle_ids``), starting from the
    station's current model: a :class:`core.counting.teach.FitResult` with precision and
    recall before and after — nothing is saved. Raises ValueError without labelled cycles
    of both kinds."""
    from core.counting.cues import DEFAULT_MODEL
    from core.counting.engine import station_model
    from core.counting.teach import fit
    ex, y = examples(db) if cycle_ids is None else _examples_of(db, cycle_ids)
    if not ex or len(set(y)) < 2:
        raise ValueError("teach mode needs confirmed cycles with a sheet AND without one")
    prior = station_model(db.load_settings().counting) or DEFAULT_MODEL
    return fit(ex, y, prior=prior)


def _examples_of(db: Database, ids: list[int]) -> tuple[list[dict[str, float]], list[int]]:
    with db.session() as s:
        rows = list(s.scalars(select(CountingCycleRow).where(CountingCycleRow.id.in_(ids),
                                                             CountingCycleRow.label.is_not(None))
                              .order_by(CountingCycleRow.id)))
        return [dict(r.cues or {}) for r in rows], [int(r.label) for r in rows]


def save_fit(db: Database, model: Any, who: str, worker: Any = None) -> list[str]:
    """Make a fitted model the station's rule (audited per field, applied live)."""
    from dataclasses import replace as _replace

    from core.platform.engineering import apply_settings
    cur = db.load_settings()
    new = _replace(cur, counting=_replace(cur.counting, cue_model=model.to_dict()))
    return apply_settings(db, new, who=who, worker=worker).changed


def undo_fit(db: Database, who: str, worker: Any = None) -> Optional[dict]:
    """Restore the cue model in force before the last teach-mode save (None = the default
    rule); returns the restored value. Audited like any settings change."""
    from dataclasses import replace as _replace

    from core.platform.engineering import apply_settings, audit_trail
    trail = [e for e in audit_trail(db, limit=1000, key_prefix="counting.cue_model")]
    if not trail:
        raise ValueError("no teach-mode save to undo")
    prev = trail[0].old
    cur = db.load_settings()
    apply_settings(db, _replace(cur, counting=_replace(cur.counting, cue_model=prev)), who=who, worker=worker)
    return prev
