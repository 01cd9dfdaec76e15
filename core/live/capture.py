"""Auto-capture: store each counted sheet (clean frame + annotated copy) and its count
event, crash-safely.

Order of work for one count, inside one database transaction:

1. read the session row and pick the next capture number;
2. write ``sheet_NNNN.jpg`` and ``sheet_NNNN_annotated.jpg`` atomically (temp file +
   rename) under ``data/media/sessions/{YYYY-MM-DD}/{session_id}/``;
3. insert the capture and the ``auto`` count event, bump the session's count and store the
   source position — then commit.

Only after the commit does the worker publish the new count, so the UI never shows a count
the database does not hold. A kill -9 before the commit leaves at most an orphan image
that the next count of the same number overwrites; the unique constraint
``uq_event_frame`` (session, kind, frame) makes a replayed frame a no-op, so nothing is
ever counted twice.

Example:
    >>> import numpy as np
    >>> from core.platform.storage import Database
    >>> from core.platform.paths import Paths
    >>> from core.live.sessions import start_session
    >>> db, paths = Database("sqlite://"), Paths.from_env()
    >>> s = start_session(db, paths, "Batch-A", 10)
    >>> ev = CountInput(frame=120, image=np.zeros((48, 64, 3), np.uint8), box=(5, 5, 40, 30))
    >>> record_count(db, paths, s.id, ev).count
    1
    >>> record_count(db, paths, s.id, ev) is None      # same frame again: not counted twice
    True
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, safe_join
from core.platform.storage import CaptureRow, CountEventRow, Database, SessionRow, utcnow

log = get("capture")

JPEG_QUALITY = 92
GREEN = (40, 200, 40)


@dataclass
class CountInput:
    """What a count needs; any object with these attributes works (e.g. the engine's
    ``CountEvent``: ``index``/``frame``, ``image``, ``box``, ``confidence``, ``t``)."""
    frame: int
    image: np.ndarray
    box: Optional[Sequence[float]] = None
    confidence: Optional[float] = None
    outline: Optional[Sequence[Sequence[float]]] = None     # the sheet's corners, when found
    t: Optional[float] = None
    wall_time: Optional[datetime] = None
    reason: str = ""


@dataclass
class CaptureResult:
    session_id: str
    count: int                      # the session's count after this sheet
    capture_id: int
    capture_index: int
    frame: int
    path: str                       # relative to data/media/sessions
    annotated_path: str
    at: datetime


def _field(ev: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        v = getattr(ev, n, None)
        if v is not None:
            return v
    return default


OUTLINE_WIDTH = 640    # the outline is found on a copy this wide: ~30 ms, inside the counting loop


def sheet_outline(image: np.ndarray, hint: Optional[Sequence[float]] = None) -> Optional[list[list[float]]]:
    """The counted (top) sheet's four corners in ``image`` pixels, or ``None``.

    The engine's box is where the scene CHANGED (arm shadows and swept floor included), not
    the sheet, so the capture and the live view draw the top sheet's outline as the
    measuring code finds it (:func:`core.qa.measure.measure_pixels`) on a small copy. An
    outline whose centre is outside the engine's box (``hint``, xyxy) is another object:
    then ``None`` and the box is drawn.

    Example:
        >>> img = np.full((300, 400, 3), 60, np.uint8)
        >>> _ = cv2.rectangle(img, (100, 80), (300, 220), (200, 200, 200), -1)
        >>> [[round(v) for v in p] for p in sorted(sheet_outline(img, (90, 70, 310, 230)))]
        [[100, 80], [100, 220], [300, 80], [300, 220]]
        >>> sheet_outline(img, (0, 0, 50, 50)) is None          # not where the change was
        True
    """
    from core.qa.measure import measure_pixels
    h, w = image.shape[:2]
    f = min(1.0, OUTLINE_WIDTH / float(w))
    small = cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA) if f < 1 else image
    try:
        m = measure_pixels(small)
    except Exception as e:      # no clear sheet (or a degenerate frame): the box is drawn instead
        log.debug("no sheet outline: %s", e)
        return None
    pts = [[float(x) / f, float(y) / f] for x, y in (m.corners_src_px or m.corners_px)]
    if hint is not None and len(hint) == 4:
        cx = sum(p[0] for p in pts) / 4
        cy = sum(p[1] for p in pts) / 4
        x1, y1, x2, y2 = (float(v) for v in hint)
        if not (x1 <= cx <= x2 and y1 <= cy <= y2):
            return None
    return pts


def draw_outline(out: np.ndarray, outline: Sequence[Sequence[float]], thick: int) -> None:
    """Draw the sheet's outline (a rotated quadrilateral) in place."""
    pts = np.round(np.asarray(outline, np.float32)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(out, [pts], True, GREEN, thick, cv2.LINE_AA)


def annotate(image: np.ndarray, box: Optional[Sequence[float]], label: str,
             outline: Optional[Sequence[Sequence[float]]] = None) -> np.ndarray:
    """A copy of ``image`` with the sheet (its outline, else the box) and a label drawn on it."""
    out = image.copy()
    if out.ndim == 2:
        out = cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)
    h, w = out.shape[:2]
    thick = max(2, round(min(h, w) / 240))
    if outline is not None and len(outline) == 4:
        draw_outline(out, outline, thick)
        x1, y1 = (int(round(min(p[i] for p in outline))) for i in (0, 1))
        org = (max(0, x1), max(14, y1 - 6))
    elif box is not None and len(box) == 4:
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(out, (x1, y1), (x2, y2), GREEN, thick)
        org = (max(0, x1), max(14, y1 - 6))
    else:
        org = (8, 22)
    scale = max(0.45, min(h, w) / 700)
    cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(out, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, GREEN, thick, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the frame as JPEG")
    return buf.tobytes()


def record_count(db: Database, paths: Paths, session_id: str, event: Any,
                 outline: Optional[Sequence[Sequence[float]]] = None) -> Optional[CaptureResult]:
    """Store one counted sheet; ``None`` when this frame was already counted (replay after
    a crash) or the session is not active any more. ``outline``: the sheet's corners for
    the annotated copy (:func:`sheet_outline`), else the event's box is drawn."""
    frame = int(_field(event, "frame", "index"))
    image = _field(event, "image")
    if image is None:
        raise ValueError("a count event needs the frame image")
    box = _field(event, "box")
    outline = outline if outline is not None else _field(event, "outline")
    conf = _field(event, "confidence")
    t = _field(event, "t")
    at = _field(event, "wall_time") or utcnow()
    if isinstance(at, (int, float)):
        from datetime import timezone
        at = datetime.fromtimestamp(float(at), timezone.utc)
    try:
        with db.session() as s:
            # The UPDATE takes the write lock first (SQLite: whole DB; PostgreSQL: the row),
            # so the count and capture number below cannot race a manual correction.
            s.execute(update(SessionRow).where(SessionRow.id == session_id).values(count=SessionRow.count))
            row = s.get(SessionRow, session_id)
            if row is None or row.status != "active":
                return None
            dup = s.scalar(select(CountEventRow.id).where(CountEventRow.session_id == session_id,
                                                          CountEventRow.kind == "auto",
                                                          CountEventRow.frame == frame))
            if dup is not None:
                return None
            idx = (s.scalar(select(func.max(CaptureRow.index)).where(CaptureRow.session_id == session_id)) or 0) + 1
            count = row.count + 1
            folder = safe_join(paths.sessions, *row.folder.split("/"))
            clean_name, ann_name = f"sheet_{idx:04d}.jpg", f"sheet_{idx:04d}_annotated.jpg"
            label = f"#{count}" + (f" {float(conf):.2f}" if conf is not None else "")
            atomic_write_bytes(folder / clean_name, encode_jpeg(image))
            atomic_write_bytes(folder / ann_name, encode_jpeg(annotate(image, box, label, outline)))
            h, w = image.shape[:2]
            cap = CaptureRow(session_id=session_id, index=idx, path=f"{row.folder}/{clean_name}",
                             annotated_path=f"{row.folder}/{ann_name}", width=w, height=h, frame=frame,
                             created_at=at)
            s.add(cap)
            s.flush()
            s.add(CountEventRow(session_id=session_id, kind="auto", delta=1, count_after=count, frame=frame,
                                video_t=None if t is None else float(t), wall_time=at,
                                confidence=None if conf is None else float(conf),
                                reason=str(_field(event, "reason", default="") or ""), capture_id=cap.id))
            row.count = count
            row.source_position = max(row.source_position, frame)
            result = CaptureResult(session_id=session_id, count=count, capture_id=cap.id, capture_index=idx,
                                   frame=frame, path=cap.path, annotated_path=cap.annotated_path, at=at)
    except IntegrityError:
        # another writer stored the same frame between our check and commit
        log.info("frame %d of %s already counted", frame, session_id)
        return None
    log.info("session %s: sheet #%d at frame %d", session_id, result.count, frame)
    return result


def save_position(db: Database, session_id: str, position: int) -> None:
    """Remember how far the source was processed, so a restart resumes there."""
    with db.session() as s:
        s.execute(update(SessionRow).where(SessionRow.id == session_id, SessionRow.source_position < position)
                  .values(source_position=position))
