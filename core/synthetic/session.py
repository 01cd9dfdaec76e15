"""TODO docstring."""
from __future__ import annotations

from datetime import datetime, timedelta

from core.platform import i18n
from core.platform.paths import Paths
from core.platform.storage import CaptureRow, CountEventRow, Database, DefectRow, MeasurementRow, SessionRow, utcnow
from core.reports.common import DEFECT_TYPES, _settings_tz, session_dir


def make_synthetic_session(db: Database, paths: Paths, n_captures: int = 20, *, name: str = "Synthetic",
                           session_id: str | None = None, target: int | None = None,
                           started_at: datetime | None = None, interval_s: float = 20.0,
                           defect_every: int = 4, reject_every: int = 10, image_size: tuple[int, int] = (160, 120),
                           status: str = "finished", seed: int = 0) -> str:
    """A finished session with real small images on disk and realistic rows: one auto count
    event and capture per sheet, a manual correction, defects with crops, measurements.

    Example:
        >>> # sid = make_synthetic_session(db, paths, 1000)   # the export benchmark's session
    """
    import cv2
    import numpy as np

    from core.platform.paths import new_session_id
    rng = np.random.default_rng(seed)
    sid = session_id or new_session_id(name)
    t0 = started_at or (utcnow() - timedelta(seconds=interval_s * (n_captures + 2)))
    folder = f"{t0.astimezone(i18n.zone(_settings_tz(db))).date().isoformat()}/{sid}"
    root = session_dir(paths, folder)
    (root / "captures").mkdir(parents=True, exist_ok=True)
    (root / "crops").mkdir(parents=True, exist_ok=True)
    (root / "overlays").mkdir(parents=True, exist_ok=True)
    w, h = image_size
    base = (120 + rng.normal(0, 12, (h, w))).clip(0, 255).astype(np.uint8)
    with db.session() as s:
        srow = SessionRow(id=sid, name=name, target=target if target is not None else n_captures,
                          count=0, status=status, folder=folder, started_at=t0, source="synthetic",
                          station="bench", created_by="bench")
        s.add(srow)
        s.flush()
        for i in range(1, n_captures + 1):
            t = t0 + timedelta(seconds=interval_s * i)
            img = cv2.cvtColor(np.roll(base, i * 3, axis=1), cv2.COLOR_GRAY2BGR)
            cv2.putText(img, f"#{i}", (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
            rel = f"captures/sheet_{i:04d}.jpg"
            has_defect = defect_every > 0 and i % defect_every == 0
            boxes = []
            if has_defect:
                x1, y1 = int(rng.integers(10, w // 2)), int(rng.integers(25, h // 2))
                x2, y2 = x1 + int(rng.integers(15, w // 3)), y1 + int(rng.integers(10, h // 3))
                cv2.line(img, (x1 + 2, y1 + 2), (x2 - 2, y2 - 2), (40, 40, 40), 2)
                boxes.append((x1, y1, x2, y2))
            cv2.imwrite(str(root / rel), img, [cv2.IMWRITE_JPEG_QUALITY, 85])
            ann = img.copy()
            for (x1, y1, x2, y2) in boxes:
                cv2.rectangle(ann, (x1, y1), (x2, y2), (0, 0, 255), 2)
            ann_rel = f"overlays/sheet_{i:04d}.jpg"
            cv2.imwrite(str(root / ann_rel), ann, [cv2.IMWRITE_JPEG_QUALITY, 85])
            review = "rejected" if reject_every > 0 and i % reject_every == 0 else (
                "approved" if i % 3 else "pending")
            cap = CaptureRow(session_id=sid, index=i, path=f"{folder}/{rel}", annotated_path=f"{folder}/{ann_rel}",
                             width=w, height=h, frame=i * 30, created_at=t, review=review,
                             reviewed_by="qa" if review != "pending" else "",
                             reviewed_at=t + timedelta(minutes=30) if review != "pending" else None,
                             analysed_at=t + timedelta(minutes=20) if has_defect else None)
            s.add(cap)
            s.flush()
            for k, (x1, y1, x2, y2) in enumerate(boxes):
                crop_rel = f"crops/sheet_{i:04d}_{k}.png"
                cv2.imwrite(str(root / crop_rel), img[y1:y2, x1:x2])
                s.add(DefectRow(capture_id=cap.id, type=DEFECT_TYPES[(i // max(defect_every, 1)) % len(DEFECT_TYPES)],
                                score=float(0.5 + rng.random() * 0.5), x1=x1, y1=y1, x2=x2, y2=y2,
                                crop_path=f"{folder}/{crop_rel}", area_px=float((x2 - x1) * (y2 - y1) * 0.3),
                                area_mm2=float((x2 - x1) * (y2 - y1) * 0.3 * 0.25), segmenter="synthetic",
                                model_version="synthetic", created_at=t + timedelta(minutes=20)))
            s.add(MeasurementRow(capture_id=cap.id, length_px=w * 0.9, width_px=h * 0.8, angle_deg=float(rng.normal(0, 1)),
                                 mm_per_px=0.5, length_mm=w * 0.9 * 0.5 + float(rng.normal(0, 0.3)),
                                 width_mm=h * 0.8 * 0.5 + float(rng.normal(0, 0.3)), created_at=t + timedelta(minutes=21)))
            s.add(CountEventRow(session_id=sid, kind="auto", delta=1, count_after=i, frame=i * 30,
                                video_t=i * interval_s, wall_time=t, confidence=float(0.8 + rng.random() * 0.2),
                                capture_id=cap.id))
        count = n_captures
        if n_captures >= 3:  # one miscount corrected by hand, as operators do
            count -= 1
            s.add(CountEventRow(session_id=sid, kind="manual", delta=-1, count_after=count, frame=None,
                                wall_time=t0 + timedelta(seconds=interval_s * (n_captures + 1)),
                                reason="double count: arm paused in view", user="operator"))
        srow.count = count
        if status == "finished":
            srow.finished_at = t0 + timedelta(seconds=interval_s * (n_captures + 2))
            srow.finish_alert = "ok" if count == srow.target else ("under" if count < srow.target else "over")
    return sid
