"""Calibration: pixels → mm (K), lens distortion, and a tilted camera's plane.

Three ways to calibrate, each saved as a ``CalibrationRow`` with a timestamp; exactly
one row is active and its K is mirrored into ``settings.calibration.mm_per_px``:

* **line** — a line drawn on a reference object of known length: K = mm / px;
* **checkerboard** — several frames of a printed board: OpenCV's camera matrix and
  distortion coefficients, applied before measuring (and K, when the board lies on the
  calibration plane);
* **plane** — four points of a known rectangle on the calibration plane: a homography
  that rectifies a camera which is not perfectly perpendicular into a true top view.

A new calibration keeps the active lens model (lines and plane points are picked on the
lens-corrected frame). Bad input raises :class:`CalibrationError` before anything is
written, so the previous calibration stays active. :func:`rollback` re-activates any
earlier row.

Example:
    >>> c = line_calibration((100, 100), (500, 100), 1000)
    >>> c.mm_per_px
    2.5
    >>> line_calibration((5, 5), (5, 5), 100)
    Traceback (most recent call last):
    ...
    core.qa.calibration.CalibrationError: The line is too short (0.0 px): click two points on the reference object.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Optional, Sequence

import cv2
import numpy as np
from sqlalchemy import select, update

from core.platform.errors import UserError
from core.platform.log import get

log = get("calibration")

K_MIN, K_MAX = 0.005, 100.0          # mm per px a real camera set-up can have
MIN_LINE_PX = 5.0                    # shorter lines give K no better than ±20 %
MAX_LENGTH_MM = 20_000.0             # a reference object longer than 20 m is a typo
MIN_FRAMES = 3                       # checkerboard views OpenCV needs for a stable lens model


class CalibrationError(UserError):
    """Bad calibration input; ``str(e)`` is the message, ``translated(_)`` the UI's."""


def _check_k(k: float) -> float:
    if not math.isfinite(k) or not K_MIN <= k <= K_MAX:
        raise CalibrationError("K = {k} mm/px is not plausible (expected {lo}–{hi}); check the line and the length.",
                               k=round(k, 4) if math.isfinite(k) else k, lo=K_MIN, hi=K_MAX)
    return float(k)


def validate_length_mm(length_mm: Any) -> float:
    """A real length in mm: a number, > 0, not absurd."""
    try:
        v = float(length_mm)
    except (TypeError, ValueError):
        raise CalibrationError("The length must be a number of mm.") from None
    if not math.isfinite(v) or v <= 0:
        raise CalibrationError("The length must be greater than 0 mm.")
    if v > MAX_LENGTH_MM:
        raise CalibrationError("A length of {v} mm is not plausible (at most {m} mm).", v=v, m=int(MAX_LENGTH_MM))
    return v


# --- line ---------------------------------------------------------------------------------
@dataclass
class LineCalibration:
    p1: tuple[float, float]
    p2: tuple[float, float]
    length_px: float
    length_mm: float
    mm_per_px: float


def line_calibration(p1: Sequence[float], p2: Sequence[float], length_mm: Any) -> LineCalibration:
    """K from a line between two image points on a reference object of ``length_mm``.

    >>> round(line_calibration((0, 0), (300, 400), 250).mm_per_px, 3)
    0.5
    """
    length = validate_length_mm(length_mm)
    try:
        a, b = (float(p1[0]), float(p1[1])), (float(p2[0]), float(p2[1]))
    except (TypeError, ValueError, IndexError):
        raise CalibrationError("Both ends of the line must be points (x, y).") from None
    px = math.hypot(b[0] - a[0], b[1] - a[1])
    if not math.isfinite(px) or px < MIN_LINE_PX:
        raise CalibrationError("The line is too short ({px} px): click two points on the reference object.",
                               px=round(px, 1) if math.isfinite(px) else px)
    return LineCalibration(a, b, px, length, _check_k(length / px))


def snap_to_edge(image: np.ndarray, point: Sequence[float], radius: float = 8.0,
                 min_contrast: float = 12.0) -> tuple[float, float]:
    """The nearest point on a strong edge near ``point`` (pixel centres are integers), to a
    fraction of a pixel: a click on the end of a reference lands exactly on its edge.

    The strongest gradient near the click (weighted towards the click) gives the edge and its
    normal; a parabola through the gradient magnitude across the edge gives its sub-pixel
    position; the point moves along the normal only, so it stays where it was clicked along
    the edge. No edge with at least ``min_contrast`` grey levels nearby: ``point`` unchanged.

    >>> img = np.zeros((40, 60), np.uint8); img[:, 30:] = 200       # an edge between x=29 and x=30
    >>> x, y = snap_to_edge(img, (26.0, 12.0))
    >>> round(x, 2), y
    (29.5, 12.0)
    """
    x, y = float(point[0]), float(point[1])
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = gray.shape[:2]
    r = int(math.ceil(radius))
    m = r + 3
    x0, y0 = max(0, int(round(x)) - m), max(0, int(round(y)) - m)
    x1, y1 = min(w, int(round(x)) + m + 1), min(h, int(round(y)) + m + 1)
    if x1 - x0 < 5 or y1 - y0 < 5:
        return x, y
    win = cv2.GaussianBlur(gray[y0:y1, x0:x1].astype(np.float32), (0, 0), 0.8)
    gx = cv2.Sobel(win, cv2.CV_32F, 1, 0, ksize=3) / 8.0      # grey levels per pixel
    gy = cv2.Sobel(win, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.hypot(gx, gy)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d2 = (xx - x) ** 2 + (yy - y) ** 2
    inside = d2 <= radius ** 2
    inside[:1, :] = inside[-1:, :] = False                  # Sobel's border rows/cols are not real
    inside[:, :1] = inside[:, -1:] = False
    score = np.where(inside, mag * np.exp(-d2 / (2 * (radius / 2) ** 2)), 0)
    iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
    if mag[iy, ix] * 2 < min_contrast:                      # a step of C grey levels peaks near C/2 per px
        return x, y
    n = np.array([gx[iy, ix], gy[iy, ix]], np.float64)
    n /= np.linalg.norm(n)
    px, py = ix + x0, iy + y0

    def at(t: float) -> float:
        patch = cv2.getRectSubPix(mag, (1, 1), (float(ix + t * n[0]), float(iy + t * n[1])))
        return float(patch[0, 0])
    a, b, c2 = at(-1.0), float(mag[iy, ix]), at(1.0)
    den = a - 2 * b + c2
    t = 0.5 * (a - c2) / den if den < 0 else 0.0
    t = max(-1.0, min(1.0, t))
    ex, ey = px + t * n[0], py + t * n[1]                     # a point on the edge
    along = (ex - x) * n[0] + (ey - y) * n[1]                 # move across the edge only
    return float(x + along * n[0]), float(y + along * n[1])


# --- checkerboard (lens) ---------------------------------------------------------------------
@dataclass
class LensCalibration:
    camera_matrix: list[list[float]]
    dist: list[float]
    image_size: tuple[int, int]              # width, height
    rms_px: float                            # reprojection error
    frames_used: list[int]
    frames_without_board: list[int]
    mm_per_px: Optional[float] = None        # from the board when it lies on the calibration plane

    def to_details(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_size"] = list(self.image_size)
        return d


def find_checkerboard(image: np.ndarray, pattern: tuple[int, int]) -> Optional[np.ndarray]:
    """Inner corners (N×2, sub-pixel) of a ``pattern`` = (cols, rows) board, or None."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    ok, corners = cv2.findChessboardCornersSB(gray, pattern, flags=cv2.CALIB_CB_NORMALIZE_IMAGE)
    if ok:
        return corners.reshape(-1, 2).astype(np.float64)
    ok, corners = cv2.findChessboardCorners(gray, pattern, flags=cv2.CALIB_CB_ADAPTIVE_THRESH
                                            + cv2.CALIB_CB_NORMALIZE_IMAGE)
    if not ok:
        return None
    corners = cv2.cornerSubPix(gray, corners, (5, 5), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 40, 0.01))
    return corners.reshape(-1, 2).astype(np.float64)


def checkerboard_calibration(images: Sequence[np.ndarray], pattern: tuple[int, int], square_mm: float,
                             plane_frame: Optional[int] = None) -> LensCalibration:
    """Camera matrix and distortion from several frames of a checkerboard.

    Args:
        pattern: inner corners (cols, rows), e.g. (9, 6) for a 10 × 7 squares board.
        square_mm: the printed square's side.
        plane_frame: index of a frame in which the board lies flat on the calibration
            plane; K is then taken from it (after undistortion).
    """
    try:
        cols, rows = int(pattern[0]), int(pattern[1])
    except (TypeError, ValueError, IndexError):
        raise CalibrationError("The pattern must be inner corners as columns × rows, e.g. 9 × 6.") from None
    if cols < 3 or rows < 3:
        raise CalibrationError("The pattern must have at least 3 × 3 inner corners.")
    square = validate_length_mm(square_mm)
    if not images:
        raise CalibrationError("Add frames that show the checkerboard.")
    sizes = {im.shape[:2] for im in images}
    if len(sizes) != 1:
        raise CalibrationError("All checkerboard frames must have the same size.")
    h, w = images[0].shape[:2]
    obj = np.zeros((cols * rows, 3), np.float32)
    obj[:, :2] = np.mgrid[0:cols, 0:rows].T.reshape(-1, 2) * square
    found, used, missing = [], [], []
    for i, im in enumerate(images):
        c = find_checkerboard(im, (cols, rows))
        if c is None:
            missing.append(i)
        else:
            found.append(c.astype(np.float32))
            used.append(i)
    if not found:
        raise CalibrationError("Checkerboard not found in any frame: check the pattern size ({c} × {r} inner corners), "
                               "focus and lighting.", c=cols, r=rows)
    if len(found) < MIN_FRAMES:
        raise CalibrationError("The checkerboard was found in {n} of {m} frames; at least {k} are needed.",
                               n=len(found), m=len(images), k=MIN_FRAMES)
    rms, mtx, dist, _, _ = cv2.calibrateCamera([obj] * len(found), found, (w, h), None, None)
    if not math.isfinite(rms) or rms > 2.0:
        raise CalibrationError("The lens calibration is unreliable (reprojection error {e} px); "
                               "use sharper frames with the board in different positions.", e=round(float(rms), 2))
    k = None
    if plane_frame is not None and plane_frame in used:
        c = found[used.index(plane_frame)].reshape(-1, 1, 2)
        und = cv2.undistortPoints(c, mtx, dist, P=mtx).reshape(rows, cols, 2)
        steps = np.concatenate([np.linalg.norm(np.diff(und, axis=1), axis=2).ravel(),
                                np.linalg.norm(np.diff(und, axis=0), axis=2).ravel()])
        k = _check_k(square / float(np.mean(steps)))
    return LensCalibration(camera_matrix=mtx.tolist(), dist=dist.ravel().tolist(), image_size=(w, h),
                           rms_px=float(rms), frames_used=used, frames_without_board=missing, mm_per_px=k)


# --- plane (homography) ------------------------------------------------------------------------
@dataclass
class PlaneCalibration:
    image_points: list[list[float]]          # 4 clicks, px (lens-corrected frame)
    plane_points_mm: list[list[float]]       # the same 4 points on the plane, mm
    matrix: list[list[float]]                # image px → rectified px (top view)
    out_size: tuple[int, int]                # rectified image width, height
    mm_per_px: float                         # K of the rectified image

    def to_details(self) -> dict[str, Any]:
        d = asdict(self)
        d["out_size"] = list(self.out_size)
        return d


def plane_calibration(image_points: Sequence[Sequence[float]], width_mm: Any, height_mm: Any,
                      image_size: tuple[int, int], max_pixels: int = 16_000_000) -> PlaneCalibration:
    """A homography from 4 image points of a ``width_mm`` × ``height_mm`` rectangle on the
    calibration plane (clicked in order around it, starting anywhere) to a true top view.

    The top view keeps about the source's resolution at the rectangle; its K is returned.
    """
    wmm, hmm = validate_length_mm(width_mm), validate_length_mm(height_mm)
    try:
        src = np.array(image_points, dtype=np.float64).reshape(4, 2)
    except (TypeError, ValueError):
        raise CalibrationError("The plane needs exactly 4 points (x, y).") from None
    if not np.isfinite(src).all():
        raise CalibrationError("The plane needs exactly 4 points (x, y).")
    area = abs(cv2.contourArea(src.astype(np.float32)))
    if area < 100 or not cv2.isContourConvex(src.astype(np.float32).reshape(-1, 1, 2)):
        raise CalibrationError("The 4 points must go around the rectangle (a convex shape, not a line).")
    dst = np.array([[0, 0], [wmm, 0], [wmm, hmm], [0, hmm]], dtype=np.float64)
    h_mm = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32))
    # resolution: K at the rectangle from its sides' mm / px
    side_px = [np.linalg.norm(src[(i + 1) % 4] - src[i]) for i in range(4)]
    side_mm = [wmm, hmm, wmm, hmm]
    k = _check_k(float(np.sum(side_mm) / np.sum(side_px)))
    w, h = int(image_size[0]), int(image_size[1])
    corners = cv2.perspectiveTransform(np.array([[[0, 0]], [[w - 1, 0]], [[w - 1, h - 1]], [[0, h - 1]]],
                                                dtype=np.float64), h_mm).reshape(-1, 2)
    lo, hi = corners.min(0), corners.max(0)
    ow, oh = int(math.ceil((hi[0] - lo[0]) / k)) + 1, int(math.ceil((hi[1] - lo[1]) / k)) + 1
    if ow * oh > max_pixels or ow <= 0 or oh <= 0:
        raise CalibrationError("These 4 points describe a camera tilted too far to rectify; check the order of the "
                               "points and the rectangle's size.")
    s = np.array([[1 / k, 0, -lo[0] / k], [0, 1 / k, -lo[1] / k], [0, 0, 1]])
    return PlaneCalibration(image_points=src.tolist(), plane_points_mm=dst.tolist(), matrix=(s @ h_mm).tolist(),
                            out_size=(ow, oh), mm_per_px=k)


# --- applying a calibration ------------------------------------------------------------------
@dataclass
class Corrector:
    """Applies the active lens model and plane rectification to an image, and maps
    points back to the source image for drawing.

    Example:
        >>> import numpy as np
        >>> c = Corrector.from_details({})
        >>> img, k = c.apply(np.zeros((10, 10, 3), np.uint8))
        >>> c.applied, k
        ([], None)
    """
    lens: Optional[dict[str, Any]] = None
    plane: Optional[dict[str, Any]] = None
    applied: list[str] = field(default_factory=list)
    _maps: Any = None

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> "Corrector":
        return cls(lens=details.get("lens"), plane=details.get("plane"))

    @property
    def applied_possible(self) -> bool:
        return bool(self.lens or self.plane)

    def _lens_ok(self, shape: tuple[int, ...]) -> bool:
        if not self.lens:
            return False
        w, h = self.lens["image_size"]
        if (shape[1], shape[0]) != (w, h):
            log.warning("lens model is for %dx%d, image is %dx%d: not applied", w, h, shape[1], shape[0])
            return False
        return True

    def undistort(self, image: np.ndarray) -> np.ndarray:
        """The lens-corrected image (same camera matrix, so K is unchanged)."""
        if not self._lens_ok(image.shape):
            return image
        if self._maps is None:
            mtx, dist = np.array(self.lens["camera_matrix"]), np.array(self.lens["dist"])
            w, h = self.lens["image_size"]
            self._maps = cv2.initUndistortRectifyMap(mtx, dist, None, mtx, (w, h), cv2.CV_32FC1)
        return cv2.remap(image, self._maps[0], self._maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def apply(self, image: np.ndarray) -> tuple[np.ndarray, Optional[float]]:
        """(corrected image, K of the rectified image or None when no plane is set)."""
        self.applied = []
        out = image
        if self._lens_ok(image.shape):
            out = self.undistort(image)
            self.applied.append("lens")
        k = None
        if self.plane:
            m = np.array(self.plane["matrix"], dtype=np.float64)
            ow, oh = self.plane["out_size"]
            out = cv2.warpPerspective(out, m, (int(ow), int(oh)), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            self.applied.append("plane")
            k = float(self.plane["mm_per_px"])
        return out, k

    def to_source(self, pts: np.ndarray) -> np.ndarray:
        """Points of the corrected image → the original image (for drawing)."""
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if "plane" in self.applied:
            m = np.linalg.inv(np.array(self.plane["matrix"], dtype=np.float64))
            p = cv2.perspectiveTransform(p.reshape(-1, 1, 2), m).reshape(-1, 2)
        if "lens" in self.applied:
            mtx, dist = np.array(self.lens["camera_matrix"]), np.array(self.lens["dist"])
            norm = (p - mtx[:2, 2]) / np.array([mtx[0, 0], mtx[1, 1]])
            obj = np.column_stack([norm, np.ones(len(norm))])
            p, _ = cv2.projectPoints(obj, np.zeros(3), np.zeros(3), mtx, dist)
            p = p.reshape(-1, 2)
        return p


# --- storage: save, history, roll back ------------------------------------------------------------
def active_calibration(db: Any) -> Any:
    """The active ``CalibrationRow`` or None."""
    from core.platform.storage import CalibrationRow
    with db.session() as s:
        return s.scalars(select(CalibrationRow).where(CalibrationRow.active.is_(True))
                         .order_by(CalibrationRow.id.desc())).first()


def calibration_history(db: Any, limit: int = 50) -> list[Any]:
    """Calibrations, newest first."""
    from core.platform.storage import CalibrationRow
    with db.session() as s:
        return list(s.scalars(select(CalibrationRow).order_by(CalibrationRow.id.desc()).limit(limit)))


def _activate(db: Any, row_id: int, k: float, who: str) -> None:
    from core.platform.storage import CalibrationRow
    with db.session() as s:
        s.execute(update(CalibrationRow).where(CalibrationRow.id != row_id).values(active=False))
        s.execute(update(CalibrationRow).where(CalibrationRow.id == row_id).values(active=True))
    settings = db.load_settings()
    if settings.calibration.mm_per_px != k:
        settings.calibration.mm_per_px = k
        db.save_settings(settings, who=who or "calibration")


def save_calibration(db: Any, method: str, mm_per_px: float, details: Optional[dict[str, Any]] = None,
                     who: str = "", keep_lens: bool = True) -> int:
    """Store a calibration as the active one and mirror K into the settings.

    The active lens model is carried over unless ``details`` brings its own (or
    ``keep_lens`` is False). Returns the new row's id.
    """
    from core.platform.storage import CalibrationRow
    if method not in ("manual", "line", "checkerboard", "plane"):
        raise CalibrationError("Unknown calibration method {m}.", m=method)
    k = _check_k(float(mm_per_px))
    details = dict(details or {})
    prev = active_calibration(db)
    if keep_lens and "lens" not in details and prev is not None and (prev.details or {}).get("lens"):
        details["lens"] = prev.details["lens"]
    with db.session() as s:
        row = CalibrationRow(method=method, mm_per_px=k, details=details, active=False, created_by=who)
        s.add(row)
        s.flush()
        rid = row.id
    _activate(db, rid, k, who)
    db.log(f"Calibration saved ({method}): K = {k:.4f} mm/px")
    log.info("calibration %d saved (%s): K=%.5f", rid, method, k)
    return rid


def rollback(db: Any, calibration_id: int, who: str = "") -> Any:
    """Re-activate an earlier calibration (its K, lens model and plane)."""
    from core.platform.storage import CalibrationRow
    with db.session() as s:
        row = s.get(CalibrationRow, int(calibration_id))
        if row is None:
            raise CalibrationError("Calibration {id} does not exist.", id=calibration_id)
        k = row.mm_per_px
    _activate(db, int(calibration_id), k, who)
    db.log(f"Calibration rolled back to #{calibration_id}: K = {k:.4f} mm/px")
    return active_calibration(db)
