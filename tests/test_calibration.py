"""Calibration: reference line, checkerboard lens model (from rendered checkerboard
frames with a known lens), 4-point plane homography (a rendered tilted camera), save /
history / roll back in a real database, and bad inputs that leave the previous
calibration active."""
from __future__ import annotations

import numpy as np
import pytest

from core.qa.calibration import (
    CalibrationError,
    Corrector,
    active_calibration,
    calibration_history,
    checkerboard_calibration,
    line_calibration,
    plane_calibration,
    rollback,
    save_calibration,
    validate_length_mm,
)
from core.qa.measure import measure_sheet, measure_with_settings
from core.synthetic.stills import Camera, SheetScene, Style, render, render_checkerboard


def test_line_calibration():
    c = line_calibration((100, 100), (500, 400), 1000)
    assert c.length_px == pytest.approx(500)
    assert c.mm_per_px == pytest.approx(2.0)


@pytest.mark.parametrize("p1,p2,length,words", [
    ((10, 10), (10, 10), 100, "too short"),            # zero-length line
    ((10, 10), (12, 11), 100, "too short"),
    ((0, 0), (100, 0), 0, "greater than 0"),
    ((0, 0), (100, 0), -5, "greater than 0"),
    ((0, 0), (100, 0), float("nan"), "greater than 0"),
    ((0, 0), (100, 0), "abc", "number"),
    ((0, 0), (100, 0), 1e9, "not plausible"),         # absurd length
    ((0, 0), (1000, 0), 0.5, "not plausible"),        # K = 0.0005 mm/px: absurd
    ((0, 0), (None, 0), 100, "points"),
])
def test_line_calibration_bad_inputs(p1, p2, length, words):
    with pytest.raises(CalibrationError, match=words):
        line_calibration(p1, p2, length)


def test_save_history_rollback_and_bad_input_keeps_previous(db):
    first = save_calibration(db, "line", line_calibration((0, 0), (400, 0), 200).mm_per_px,
                             {"line": {"p1": [0, 0], "p2": [400, 0], "length_mm": 200}}, who="eng")
    assert db.load_settings().calibration.mm_per_px == pytest.approx(0.5)
    second = save_calibration(db, "line", 0.8, who="eng")
    assert active_calibration(db).id == second
    assert db.load_settings().calibration.mm_per_px == pytest.approx(0.8)
    hist = calibration_history(db)
    assert [h.id for h in hist] == [second, first] and hist[0].created_at.tzinfo is not None
    # a bad calibration is refused before anything is written
    with pytest.raises(CalibrationError):
        save_calibration(db, "line", 0.0)
    with pytest.raises(CalibrationError):
        save_calibration(db, "line", 1e6)
    assert active_calibration(db).id == second and len(calibration_history(db)) == 2
    # roll back
    row = rollback(db, first, who="eng")
    assert row.id == first and row.active
    assert db.load_settings().calibration.mm_per_px == pytest.approx(0.5)
    assert sum(h.active for h in calibration_history(db)) == 1
    with pytest.raises(CalibrationError):
        rollback(db, 12345)
    assert active_calibration(db).id == first


# --- checkerboard ----------------------------------------------------------------------------
LENS = Camera(width=640, height=480, focal_px=520, height_mm=1000, dist=(-0.28, 0.09, 0.0, 0.0, 0.0))
POSES = [((0.25, 0.0, 0.0), (-150, 80, 300)), ((-0.2, 0.15, 0.0), (150, -80, 300)),
         ((0.0, -0.3, 0.0), (120, 90, 250)), ((0.3, 0.2, 0.3), (-120, -90, 250)),
         ((0.0, 0.0, 0.0), (0, 0, 0)), ((-0.3, -0.2, -0.2), (0, 0, 350))]


@pytest.fixture(scope="module")
def board_frames():
    return [render_checkerboard(LENS, (9, 6), 45.0, rv, c, seed=i, supersample=2) for i, (rv, c) in enumerate(POSES)]


def test_checkerboard_recovers_the_lens_and_k(board_frames):
    lc = checkerboard_calibration(board_frames, (9, 6), 45.0, plane_frame=4)
    assert lc.rms_px < 0.5
    assert lc.frames_used == list(range(6)) and lc.frames_without_board == []
    assert lc.dist[0] == pytest.approx(-0.28, abs=0.03)
    mtx = np.array(lc.camera_matrix)
    assert mtx[0, 0] == pytest.approx(520, rel=0.01) and mtx[1, 1] == pytest.approx(520, rel=0.01)
    # the 5th board lies on the floor: K at the floor = C / f
    assert lc.mm_per_px == pytest.approx(LENS.mm_per_px_at(0.0), rel=0.005)


def test_lens_model_is_applied_before_measuring(board_frames, db):
    lc = checkerboard_calibration(board_frames, (9, 6), 45.0, plane_frame=4)
    save_calibration(db, "checkerboard", lc.mm_per_px, {"lens": lc.to_details()})
    # a sheet near the frame's edge, where barrel distortion shrinks it most
    r = render(SheetScene(length_mm=500, width_mm=300, angle_deg=8, center_mm=(250, 150), stack_height_mm=0.0,
                          thickness_mm=1.0), LENS, Style(noise=1.5), seed=6)
    k = LENS.mm_per_px_at(0.0)
    raw = measure_sheet(r.image, k)
    fixed = measure_with_settings(r.image, db.load_settings(), db)
    assert fixed.corrected == ["lens"]
    err_raw = abs(raw.length_mm - 500) / 500
    err_fixed = abs(fixed.length_mm - 500) / 500
    assert err_raw > 0.02                  # uncorrected, the lens costs several per cent
    assert err_fixed < 0.006, (fixed.length_mm, fixed.width_mm)
    assert abs(fixed.width_mm - 300) / 300 < 0.008
    # the outline maps back onto the distorted source image
    src = np.array(fixed.corners_src_px)
    for c in r.truth.top_corners_px:
        assert np.min(np.linalg.norm(src - c, axis=1)) < 1.5
    # a later line calibration keeps the lens model
    save_calibration(db, "line", 1.9)
    assert "lens" in active_calibration(db).details


def test_checkerboard_not_found_keeps_previous(db):
    save_calibration(db, "manual", 0.7)
    blank = [np.full((240, 320, 3), 120, np.uint8) for _ in range(3)]
    with pytest.raises(CalibrationError, match="not found"):
        checkerboard_calibration(blank, (9, 6), 25.0)
    with pytest.raises(CalibrationError, match="at least 3"):
        cam = Camera(width=480, height=360, focal_px=420, height_mm=1000)
        other = [np.full((360, 480, 3), 120, np.uint8)]
        checkerboard_calibration([render_checkerboard(cam, (7, 5), 40.0, supersample=1)] + other, (7, 5), 40.0)
    with pytest.raises(CalibrationError):
        checkerboard_calibration(blank, (9, 6), -1)
    assert active_calibration(db).mm_per_px == pytest.approx(0.7)
    assert db.load_settings().calibration.mm_per_px == pytest.approx(0.7)


# --- plane -----------------------------------------------------------------------------------------
def test_plane_homography_for_a_tilted_camera(db):
    cam = Camera(width=800, height=600, focal_px=420, height_mm=2500, tilt_deg=(9.0, -6.0))
    # four floor markers of a 1600 × 1000 mm rectangle, clicked with ±0.3 px hand error
    rect = np.array([[-800, 500, 0], [800, 500, 0], [800, -500, 0], [-800, -500, 0]], dtype=float)
    clicks = cam.project(rect) + np.random.default_rng(0).uniform(-0.3, 0.3, (4, 2))
    pc = plane_calibration(clicks, 1600, 1000, (800, 600))
    save_calibration(db, "plane", pc.mm_per_px, {"plane": pc.to_details()})
    r = render(SheetScene(length_mm=1500, width_mm=900, angle_deg=25, center_mm=(100, -60), stack_height_mm=1.0,
                          thickness_mm=1.0), cam, Style(noise=2.0), seed=8)
    m = measure_with_settings(r.image, db.load_settings(), db)
    assert m.corrected == ["plane"]
    assert abs(m.length_mm - 1500) / 1500 < 0.005, m.length_mm
    assert abs(m.width_mm - 900) / 900 < 0.005, m.width_mm
    # without the plane the tilt distorts the shape: one K cannot get both sides right
    k_mid = 2500 / 420
    plain = measure_sheet(r.image, k_mid)
    assert max(abs(plain.length_mm - 1500) / 1500, abs(plain.width_mm - 900) / 900) > 0.01


def test_plane_bad_inputs():
    with pytest.raises(CalibrationError, match="convex"):
        plane_calibration([[0, 0], [100, 0], [200, 0], [300, 0]], 100, 100, (640, 480))
    with pytest.raises(CalibrationError, match="4 points"):
        plane_calibration([[0, 0], [100, 0], [100, 100]], 100, 100, (640, 480))
    with pytest.raises(CalibrationError, match="greater than 0"):
        plane_calibration([[0, 0], [100, 0], [100, 100], [0, 100]], 0, 100, (640, 480))
    with pytest.raises(CalibrationError):     # crossed order: not a convex quadrilateral
        plane_calibration([[0, 0], [100, 100], [100, 0], [0, 100]], 100, 100, (640, 480))
    assert validate_length_mm("250") == 250.0


def test_corrector_without_calibration_is_identity():
    img = np.zeros((20, 30, 3), np.uint8)
    c = Corrector.from_details({})
    out, k = c.apply(img)
    assert out is img and k is None and not c.applied_possible


def test_snap_to_edge_finds_a_sub_pixel_edge_and_moves_across_it_only():
    """A bar whose ends lie between pixels (drawn 8× larger, then averaged down): a click a few
    pixels off each end lands on the end to 0.1 px; a click on flat ground stays put."""
    import cv2
    import numpy as np

    from core.qa.calibration import line_calibration, snap_to_edge
    big = np.full((500 * 8, 800 * 8), 40, np.uint8)
    cv2.rectangle(big, (int(100.3 * 8), 200 * 8), (int(700.6 * 8) - 1, 260 * 8 - 1), 200, -1)
    img = cv2.resize(big, (800, 500), interpolation=cv2.INTER_AREA)
    left, right = 100.3 - 0.5, 700.6 - 0.5             # edge positions with pixel centres at integers
    a = snap_to_edge(img, (103.0, 230.0))
    b = snap_to_edge(img, (697.5, 231.0))
    assert abs(a[0] - left) < 0.1 and a[1] == 230.0
    assert abs(b[0] - right) < 0.1 and b[1] == 231.0
    k = line_calibration(a, b, 1000).mm_per_px
    assert abs(k - 1000 / (right - left)) / k < 0.001
    assert snap_to_edge(img, (400.0, 100.0)) == (400.0, 100.0)        # no edge within reach
