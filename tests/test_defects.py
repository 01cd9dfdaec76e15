"""Defect analysis: tiling and box merging, bad inputs, outputs on disk and in the database,
the batch job, gallery helpers and the CLI.

The locator tests use the real trained NEU-DET model ``weights/defect_yolo11n.pt``
(``MSM_TEST_DEFECT_MODEL`` may point at another file); they are skipped only when no
model file exists at all.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.models.manager import Box
from core.qa import defects as D
from core.qa.segment import ModelFreeSegmenter
from core.synthetic.defects import sheet_texture

from needs import neu_dir

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("MSM_TEST_DEFECT_MODEL") or ROOT / "weights" / "defect_yolo11n.pt")


@pytest.fixture
def NEU():
    """NEU-DET (skip with the variable to set, or fail under CI); the shipped model must exist."""
    assert MODEL.exists(), f"shipped defect model missing: {MODEL}"
    return neu_dir()


def neu_boxes(stem: str) -> list[tuple[str, list[float]]]:
    root = ET.parse(neu_dir() / "annotations" / f"{stem}.xml").getroot()
    out = []
    for o in root.iter("object"):
        bb = o.find("bndbox")
        out.append((o.findtext("name"), [float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]))
    return out


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


# --- tiling and merging ------------------------------------------------------------------------
def test_tile_grid_covers_the_region_inside_it():
    tiles = D.tile_grid(100, 50, 1380, 770, 200, 0.2)
    cover = np.zeros((770, 1380), bool)
    for x1, y1, x2, y2 in tiles:
        assert 100 <= x1 < x2 <= 1380 and 50 <= y1 < y2 <= 770 and x2 - x1 == 200 and y2 - y1 == 200
        cover[y1:y2, x1:x2] = True
    assert cover[50:770, 100:1380].all()
    assert D.tile_grid(0, 0, 150, 120, 200, 0.2) == [(0, 0, 150, 120)]   # small image: one tile


def test_merge_boxes_dedups_and_fuses_pieces_cut_at_tile_seams():
    b = [Box(100, 10, 200, 20, 0.9, 5, "scratches"),     # piece cut by the right tile edge (x=200)
         Box(198, 11, 320, 19, 0.6, 5, "scratches"),     # continuation in the next tile
         Box(101, 10, 199, 20, 0.5, 5, "scratches"),     # same piece seen again by an overlapping tile
         Box(150, 100, 170, 120, 0.8, 1, "inclusion"),   # other class nearby: kept apart
         Box(500, 500, 510, 510, 0.7, 5, "scratches")]   # far away: untouched
    merged = D.merge_boxes(b, cut=[True, True, False, False, False])
    scr = sorted([m for m in merged if m.name == "scratches"], key=lambda m: m.x1)
    assert len(scr) == 2 and scr[0].xyxy == [100, 10, 320, 20] and scr[0].conf == pytest.approx(0.9)
    assert [m.name for m in merged].count("inclusion") == 1 and len(merged) == 3


def test_merge_boxes_keeps_separate_uncut_neighbours():
    b = [Box(0, 0, 50, 50, 0.9, 0, "a"), Box(52, 0, 100, 50, 0.8, 0, "a")]
    assert len(D.merge_boxes(b, cut=[False, False])) == 2


class ScriptedDetector:
    """Stands in for YOLO only to check the tiling geometry: it 'detects' dark pixels in
    whatever crop it gets, the way a detector would, in crop coordinates."""
    names = {0: "spot"}
    imgsz = 224

    def __init__(self):
        self.calls = []

    def predict(self, img, conf=0.25, imgsz=None):
        self.calls.append(img.shape[:2])
        ys, xs = np.nonzero(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) < 40)
        if len(ys) == 0:
            return []
        # like a detector at a fixed input size: a spot under ~2 input pixels is invisible
        scale = imgsz_ratio = self.imgsz / max(img.shape[:2])
        if (xs.max() - xs.min() + 1) * scale < 2 or (ys.max() - ys.min() + 1) * imgsz_ratio < 2:
            return []
        return [Box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9, 0, "spot")]


def test_locator_maps_tile_boxes_back_to_capture_pixels_and_finds_small_spots():
    img = np.full((1080, 1920, 3), 150, np.uint8)
    img[700:704, 1500:1504] = 0                       # a 4-px spot: invisible at whole-image scale
    det = ScriptedDetector()
    loc = D.Locator(det, tile=200, overlap=0.2, use_sheet_region=False)
    boxes = loc.locate(img)
    assert loc.last_stats["tiles"] == 84 and all(max(s) <= 200 for s in det.calls[:-1])
    assert len(boxes) == 1 and boxes[0].xyxy == [1500, 700, 1504, 704]
    assert D.Locator(ScriptedDetector(), use_sheet_region=False).locate(img, tiled=False) == []


# --- the real locator --------------------------------------------------------------------------
@pytest.mark.slow
def test_real_locator_finds_thin_scratches_on_a_full_hd_capture_only_when_tiled(NEU):
    """NEU val scratches (boxes 11–25 px across, the line itself ≈10 px) pasted at native
    scale into 1920×1080 sheet captures, at places that straddle tile seams: the tiled
    locator finds them where they are; one whole-image pass (8.6× downscale) finds none."""
    loc = D.Locator.from_path(MODEL, conf=0.15)
    hits = whole_hits = 0
    cases = [("scratches_245", 1250, 610), ("scratches_266", 333, 150), ("scratches_281", 1500, 800),
             ("scratches_290", 700, 420)]
    for stem, ox, oy in cases:
        tile = cv2.imread(str(NEU / "images" / f"{stem}.jpg"))
        cap = sheet_texture(1080, 1920, np.random.default_rng(5), base=float(np.median(tile)))
        cap[oy:oy + 200, ox:ox + 200] = tile
        gts = [[b[0] + ox, b[1] + oy, b[2] + ox, b[3] + oy] for n, b in neu_boxes(stem) if n == "scratches"]
        found = [b for b in loc.locate(cap) if b.name == "scratches"]
        assert loc.last_stats["tiles"] == 84
        hits += any(iou(b.xyxy, g) > 0.3 for b in found for g in gts)
        whole = [b for b in loc.locate(cap, tiled=False) if b.name == "scratches"]
        whole_hits += any(iou(b.xyxy, g) > 0.3 for b in whole for g in gts)
    assert hits >= 3 and whole_hits == 0, (hits, whole_hits)


# --- bad inputs --------------------------------------------------------------------------------
def _jpeg(path: Path, img=None) -> Path:
    img = img if img is not None else sheet_texture(120, 160, np.random.default_rng(0))
    cv2.imwrite(str(path), img)
    return path


def test_load_image_bad_inputs_give_one_clear_message(tmp_path):
    good = _jpeg(tmp_path / "good.jpg")
    assert D.load_image(good).shape == (120, 160, 3)
    data = good.read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(D.BadImage, match="truncated"):
        D.load_image(tmp_path / "trunc.jpg")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(3000) + b"\xff\xd9")
    with pytest.raises(D.BadImage, match="corrupt|not a readable"):
        D.load_image(tmp_path / "corrupt.jpg")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(D.BadImage, match="empty"):
        D.load_image(tmp_path / "empty.jpg")
    with pytest.raises(D.BadImage, match="missing"):
        D.load_image(tmp_path / "gone.jpg")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(D.BadImage, match="not a readable image"):
        D.load_image(tmp_path / "notes.txt")


def test_gray_and_rgba_png_are_analysed_as_bgr(tmp_path):
    g = sheet_texture(100, 120, np.random.default_rng(1))[:, :, 0]
    cv2.imwrite(str(tmp_path / "g.png"), g)
    cv2.imwrite(str(tmp_path / "a.png"), np.dstack([g, g, g, np.full_like(g, 200)]))
    cv2.imwrite(str(tmp_path / "g16.png"), g.astype(np.uint16) * 257)
    for n in ("g.png", "a.png", "g16.png"):
        img = D.load_image(tmp_path / n)
        assert img.shape == (100, 120, 3) and img.dtype == np.uint8, n


def test_huge_image_is_refused_before_decoding(tmp_path):
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    p = tmp_path / "huge.png"
    Image.new("L", (12000, 12000), 128).save(p)          # a real 12000×12000 PNG (compresses to ~0.2 MB)
    with pytest.raises(D.BadImage, match="12000×12000"):
        D.load_image(p)


# --- outputs -------------------------------------------------------------------------------------
def _fixed_locator(boxes):
    class Fixed:
        names = {0: "patches", 1: "scratches"}
        path = Path("fixed.pt")

        def predict(self, img, conf=0.25, imgsz=None):
            return [Box(*b) for b in boxes]
    return D.Locator(Fixed(), tile=10_000, use_sheet_region=False, global_pass=False)


# --- only the sheet ----------------------------------------------------------------------------
def _stack_capture(angle=12.0, tilt=(4.0, -3.0), size=(1280, 960)):
    """A rendered stack (sheets beneath sticking out) under a slightly tilted camera, with the
    top sheet's true corners."""
    from core.synthetic.stills import Camera, SheetScene, render
    cam = Camera(width=size[0], height=size[1], focal_px=700, height_mm=2500, tilt_deg=tilt)
    scene = SheetScene(length_mm=2000, width_mm=1200, angle_deg=angle, stack_height_mm=100, thickness_mm=2,
                       beneath_offsets_px=[(7.0, -6.0), (-5.0, 8.0)])
    r = render(scene, cam, seed=3)
    return r.image, np.asarray(r.truth.top_corners_px), r


def test_find_sheet_outlines_the_top_sheet_and_rectify_removes_perspective():
    img, truth, r = _stack_capture()
    o = D.find_sheet(img)
    assert o is not None and o.method == "subpixel"
    # every found corner within 2 px of a true corner (the sheets beneath stick out 6–8 px)
    d = np.linalg.norm(o.corners[:, None, :] - truth[None, :, :], axis=2).min(1)
    assert d.max() < 2.0, d
    rect = D.rectify_sheet(img, o, D.SheetScale(mm_per_px=2.0))
    h, w = rect.image.shape[:2]
    assert abs(w / h - 2000 / 1200) < 0.03                  # a top view: the sheet's own aspect
    assert rect.k_source == "calibration" and rect.px_per_mm == pytest.approx(0.8)
    # the analysed polygon lies inside the outline, margin ≥ 20 mm · K⁻¹ px away from each side
    poly = rect.analysed_polygon()
    for x, y in poly:
        dist = cv2.pointPolygonTest(o.corners.astype(np.float32).reshape(-1, 1, 2), (float(x), float(y)), True)
        assert dist >= 20 / 2.0 * 0.8, dist


class SpotDetector(ScriptedDetector):
    """Finds dark spots (< 40) like a detector would, in whatever crop it gets."""
    names = {0: "pitted_surface"}

    def predict(self, img, conf=0.25, imgsz=None):
        self.calls.append(img.shape[:2])
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        n, lab, st, _ = cv2.connectedComponentsWithStats((g < 40).astype(np.uint8))
        return [Box(st[i, 0], st[i, 1], st[i, 0] + st[i, 2], st[i, 1] + st[i, 3], 0.9, 0, "pitted_surface")
                for i in range(1, n) if st[i, 4] >= 4]


def test_only_the_sheet_is_analysed_and_boxes_come_back_in_capture_pixels():
    img, truth, r = _stack_capture(size=(1280, 960))
    c = truth.mean(0)
    inside = (c + 0.25 * (truth[1] - c)).astype(int)        # on the sheet, far from its edges
    edge = (truth[0] + 0.5 * (truth[1] - truth[0]) + 0.02 * (c - truth[0])).astype(int)   # 2 % in: the margin
    img = img.copy()
    for (x, y) in (inside, edge, (20, 20), (1240, 900)):     # two on the sheet, two on the floor
        cv2.circle(img, (int(x), int(y)), 6, (10, 10, 10), -1)
    det = SpotDetector()
    loc = D.Locator(det, conf=0.25)
    res = D.analyse_image(img, loc, ModelFreeSegmenter(), mm_per_px=2.0)
    assert res.sheet_found and len(res.defects) == 1, [d.bbox for d in res.defects]
    b = res.defects[0].bbox
    assert abs((b[0] + b[2]) / 2 - inside[0]) < 3 and abs((b[1] + b[3]) / 2 - inside[1]) < 3
    assert 9 < b[2] - b[0] < 20                              # a 13-px spot, mapped back through the warp
    poly = np.asarray(res.sheet["analysed"], np.float32).reshape(-1, 1, 2)
    m = res.masks[0]
    ys, xs = np.nonzero(m.mask)
    assert all(cv2.pointPolygonTest(poly, (float(x + m.x1), float(y + m.y1)), False) >= 0 for x, y in zip(xs, ys))
    assert res.sheet["k_source"] == "calibration" and res.sheet["tile_mm"] == pytest.approx(250.0, abs=0.5)
    assert res.to_json()["sheet_found"] is True and res.to_json()["sheet"]["sheet"]


def test_no_sheet_says_so_and_analyses_nothing():
    floor = sheet_texture(720, 1280, np.random.default_rng(3))
    floor[300:310, 600:700] = 5                             # a "scratch" on the floor
    det = SpotDetector()
    res = D.analyse_image(floor, D.Locator(det), ModelFreeSegmenter())
    assert not res.sheet_found and res.defects == [] and det.calls == []
    assert res.message == D.NO_SHEET_MSG and res.to_json()["message"] == D.NO_SHEET_MSG


def test_physical_scale_from_k_or_the_assumed_sheet_width():
    img, truth, r = _stack_capture()
    o = D.find_sheet(img)
    a = D.rectify_sheet(img, o, D.SheetScale(mm_per_px=1.5, max_tiles=1000))
    b = D.rectify_sheet(img, o, D.SheetScale(mm_per_px=3.0, max_tiles=1000))
    assert b.image.shape[1] == pytest.approx(2 * a.image.shape[1], rel=0.01)   # twice the mm: twice the px
    c = D.rectify_sheet(img, o, D.SheetScale(assumed_width_mm=1200.0, max_tiles=1000))
    assert c.k_source == "assumed sheet width" and c.image.shape[0] == pytest.approx(1200 * 0.8, abs=2)
    # a sheet that would need more tiles than the budget is coarsened, and says so
    d = D.rectify_sheet(img, o, D.SheetScale(mm_per_px=3.0, max_tiles=12))
    assert d.scale_capped and len(D.tile_grid(*d.inner, 200, 0.2)) <= 12


def test_overlay_shows_the_analysed_outline():
    img, truth, r = _stack_capture()
    res = D.analyse_image(img, D.Locator(SpotDetector()), ModelFreeSegmenter(), mm_per_px=2.0)
    over = D.draw_overlay(img, res)
    x, y = np.round(np.mean(res.sheet["analysed"][:2], axis=0)).astype(int)   # mid-point of one side
    patch = over[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).astype(int)
    assert any(abs(p[0] - 255) < 40 and abs(p[1] - 200) < 40 and p[2] < 60 for p in patch)


def test_per_class_thresholds_filter_after_merging():
    class Two(ScriptedDetector):
        names = {0: "patches", 1: "crazing"}

        def predict(self, img, conf=0.25, imgsz=None):
            self.calls.append(conf)
            return [Box(10, 10, 50, 50, 0.5, 0, "patches"), Box(80, 80, 120, 120, 0.5, 1, "crazing")]
    det = Two()
    loc = D.Locator(det, tile=10_000, conf=0.25, class_conf={"crazing": 0.9, "patches": 0.3}, use_sheet_region=False)
    out = loc.locate(np.full((200, 200, 3), 128, np.uint8))
    assert [b.name for b in out] == ["patches"] and det.calls == [0.25]   # runs at the lowest threshold


def test_thresholds_come_from_the_manifest_and_settings_override_them(tmp_path, monkeypatch):
    from core.platform.paths import Paths
    from core.platform.settings import Settings
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "manifest.json").write_text(json.dumps({"files": {"defect_yolo11n.pt": {
        "metrics": {"class_thresholds": {"conf": {"patches": 0.6, "crazing": 0.95}}}}}}))
    paths = Paths(data=tmp_path / "data", weights=tmp_path / "weights")
    s = Settings.from_dict({"models": {"defect_class_confidence": {"crazing": 0.5}}})
    assert D.class_thresholds(s, tmp_path / "weights" / "defect_yolo11n.onnx", paths) == \
        {"patches": 0.6, "crazing": 0.5}
    assert Settings.from_dict({"models": {"defect_class_confidence": {"x": 2}}}).validate()


def test_demo_session_captures_are_clean_with_the_real_model():
    """Clean demo captures (no defect drawn on them): the real locator, shipped thresholds,
    reports nothing, and the analysed outline lies on the sheet."""
    from core.bench.defects import demo_captures
    from core.platform.settings import Settings
    s = Settings()
    loc = D.Locator.from_path(MODEL, class_conf=D.class_thresholds(s, MODEL), scale=D.scale_from_settings(s))
    caps = demo_captures()[::3]
    assert len(caps) == 3
    for name, img in caps:
        res = D.analyse_image(img, loc, ModelFreeSegmenter())
        assert res.sheet_found and res.defects == [], (name, [(d.type, d.score) for d in res.defects])
        assert 0 < loc.last_stats["tiles"] <= 48


def test_write_outputs_overlay_crops_with_alpha_and_masks(tmp_path):
    img = sheet_texture(200, 300, np.random.default_rng(2))
    img[80:120, 100:160] = 40
    loc = _fixed_locator([(90, 70, 170, 130, 0.8, 0, "patches")])
    res = D.analyse_image(img, loc, ModelFreeSegmenter(), mm_per_px=0.5, whole_image=True)   # a close-up
    assert len(res.defects) == 1
    d = res.defects[0]
    assert d.type == "patches" and d.segmenter == "model-free" and abs(d.area_px - 2400) <= 24  # 40×60 dark patch
    assert d.area_mm2 == pytest.approx(d.area_px * 0.25)
    D.write_outputs(img, res, tmp_path / "out", rel_root=tmp_path)
    crop = cv2.imread(str(tmp_path / d.crop_path), cv2.IMREAD_UNCHANGED)
    assert crop.shape == (60, 80, 4)
    assert (crop[:, :, 3] == 255).sum() == d.area_px and crop[0, 0, 3] == 0
    assert cv2.imread(str(tmp_path / d.mask_path), cv2.IMREAD_GRAYSCALE).sum() == d.area_px * 255
    assert (tmp_path / "out" / "overlay.jpg").exists()
    # a second run with fewer defects removes the stale files
    res2 = D.analyse_image(img, _fixed_locator([]), ModelFreeSegmenter(), whole_image=True)
    D.write_outputs(img, res2, tmp_path / "out")
    assert not list((tmp_path / "out").glob("crop_*.png"))


def _make_session(db, paths, images: dict[str, np.ndarray | bytes | None], sid="qa-1"):
    """A finished session whose captures are the given files (None = row without a file)."""
    from core.platform.storage import CaptureRow, SessionRow
    folder = f"2026-11-21/{sid}"
    (paths.sessions / folder).mkdir(parents=True, exist_ok=True)
    with db.session() as s:
        s.add(SessionRow(id=sid, name="QA batch", target=len(images), count=len(images), status="finished",
                         folder=folder))
        s.flush()
        for i, (name, content) in enumerate(images.items(), 1):
            p = paths.sessions / folder / name
            if isinstance(content, bytes):
                p.write_bytes(content)
            elif content is not None:
                cv2.imwrite(str(p), content)
            s.add(CaptureRow(session_id=sid, index=i, path=f"{folder}/{name}"))
    with db.session() as s:
        from sqlalchemy import select
        return sid, [r.id for r in s.scalars(select(CaptureRow).where(CaptureRow.session_id == sid)
                                                .order_by(CaptureRow.index))]


def test_batch_job_reports_bad_captures_and_analyses_the_rest(db, paths, tmp_path):
    from PIL import Image
    from sqlalchemy import select

    from core.platform.jobs import JobRunner
    from core.platform.storage import CaptureRow, DefectRow
    Image.MAX_IMAGE_PIXELS = None
    rng = np.random.default_rng(4)
    good = sheet_texture(240, 320, rng)
    good[100:140, 150:200] = 30
    ok_jpg = cv2.imencode(".jpg", good)[1].tobytes()
    huge = tmp_path / "huge.png"
    Image.new("L", (12000, 12000), 128).save(huge)
    gray = good[:, :, 0].copy()
    rgba = np.dstack([good, np.full(good.shape[:2], 255, np.uint8)])
    sid, ids = _make_session(db, paths, {
        "sheet_0001.jpg": ok_jpg, "sheet_0002.jpg": ok_jpg[: len(ok_jpg) // 3],   # truncated
        "sheet_0003.jpg": None,                                                  # deleted from disk
        "sheet_0004.png": huge.read_bytes(), "sheet_0005.png": gray, "sheet_0006.png": rgba,
        "sheet_0007.jpg": b"\xff\xd8\xff" + b"garbage" * 100})                   # corrupt
    loc = _fixed_locator([(140, 90, 210, 150, 0.7, 0, "patches")])
    runner = JobRunner(db)
    jid = D.submit_session_analysis(runner, db, paths, sid, lambda: loc, ModelFreeSegmenter, mm_per_px=0.2)
    st = runner.wait(jid, 60)
    assert st.status == "done" and st.progress == 1.0, st.message
    r = st.result
    assert r["captures"] == 7 and r["analysed"] == 3 and r["defects"] == 3
    msgs = {f["capture_id"]: f["message"] for f in r["failed"]}
    assert "truncated" in msgs[ids[1]] and "missing" in msgs[ids[2]] and "12000×12000" in msgs[ids[3]]
    assert "corrupt" in msgs[ids[6]] or "not a readable" in msgs[ids[6]]
    assert all("Traceback" not in m for m in msgs.values())
    with db.session() as s:
        rows = list(s.scalars(select(DefectRow).order_by(DefectRow.capture_id)))
        assert [d.capture_id for d in rows] == [ids[0], ids[4], ids[5]]
        d = rows[0]
        assert d.type == "patches" and d.segmenter == "model-free" and abs(d.area_px - 2000) <= 20
        assert d.area_mm2 == pytest.approx(d.area_px * 0.04) and d.model_version
        assert (paths.sessions / d.crop_path).exists() and (paths.sessions / d.mask_path).exists()
        assert s.get(CaptureRow, ids[0]).analysed_at is not None and s.get(CaptureRow, ids[1]).analysed_at is None
    sess_dir = paths.sessions / "2026-11-21" / sid
    detail = json.loads((sess_dir / "defects" / "defects.json").read_text())
    assert detail["captures"]["1"]["defects"][0]["bbox"] == [140.0, 90.0, 210.0, 150.0]
    log = json.loads((sess_dir / "session_log.json").read_text())     # core.reports' session log
    assert log["defects_found"] and log["defects_found"][0]["type"] == "patches"
    # analysing again replaces, never duplicates
    D.analyse_capture(db, paths, ids[0], loc, ModelFreeSegmenter())
    with db.session() as s:
        assert len(list(s.scalars(select(DefectRow).where(DefectRow.capture_id == ids[0])))) == 1
    runner.close()


def test_before_after_hooks_run_and_after_runs_on_failure(db, paths):
    from core.platform.jobs import JobRunner
    sid, _ = _make_session(db, paths, {"a.jpg": sheet_texture(50, 60, np.random.default_rng(0))})
    calls = []
    runner = JobRunner(db)
    jid = D.submit_session_analysis(runner, db, paths, sid, lambda: None, ModelFreeSegmenter,
                                    before=lambda: calls.append("before"), after=lambda: calls.append("after"))
    st = runner.wait(jid, 30)
    assert st.status == "failed" and "no defect locator" in st.message and calls == ["before", "after"]
    assert D.latest_job(runner, sid).id == jid
    import threading
    gate = threading.Event()
    j2 = D.submit_session_analysis(runner, db, paths, sid, lambda: None, ModelFreeSegmenter, before=gate.wait)
    with pytest.raises(ValueError, match="already being analysed"):     # a second click while it runs
        D.submit_session_analysis(runner, db, paths, sid, lambda: None, ModelFreeSegmenter)
    gate.set()
    runner.wait(j2, 30)
    runner.close()


# --- gallery helpers ---------------------------------------------------------------------------
def test_gallery_pages_of_a_large_session_and_reviews(db, paths):
    from core.platform.storage import CaptureRow, SessionRow
    with db.session() as s:
        s.add(SessionRow(id="big-1", name="Big", target=520, count=520, status="finished", folder="d/big-1"))
        s.flush()
        s.add_all([CaptureRow(session_id="big-1", index=i, path=f"d/big-1/sheet_{i:04d}.jpg")
                   for i in range(1, 521)])
    assert D.count_captures(db, "big-1") == 520
    page = D.list_captures(db, "big-1", offset=500, limit=24)
    assert [c.index for c in page] == list(range(501, 521))
    assert [s.id for s in D.gallery_sessions(db, "bi")] == ["big-1"] and D.gallery_sessions(db, "zzz") == []
    row = D.set_review(db, page[0].id, "approved", "qa-ani")
    assert row.review == "approved" and row.reviewed_by == "qa-ani" and row.reviewed_at.tzinfo is not None
    with pytest.raises(ValueError):
        D.set_review(db, page[0].id, "maybe", "x")


def test_thumbnails_are_cached_on_disk_and_refreshed_when_the_capture_changes(db, paths):
    sid, ids = _make_session(db, paths, {"s1.jpg": sheet_texture(600, 800, np.random.default_rng(0))})
    rel = D.list_captures(db, sid)[0].path
    t1 = D.thumbnail(paths, rel)
    assert t1 is not None and max(cv2.imread(str(t1)).shape[:2]) == 256
    m = t1.stat().st_mtime_ns
    assert D.thumbnail(paths, rel) == t1 and t1.stat().st_mtime_ns == m        # cached: not rewritten
    cv2.imwrite(str(paths.sessions / rel), sheet_texture(300, 400, np.random.default_rng(1)))
    os.utime(paths.sessions / rel, ns=(m + 10**9, m + 10**9))
    assert D.thumbnail(paths, rel) != t1
    (paths.sessions / rel).unlink()
    assert D.thumbnail(paths, rel) is None


# --- CLI ---------------------------------------------------------------------------------------
def _cli(*args, env=None):
    e = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, env=e)


def test_cli_defects_bad_input_is_one_line_exit_2(tmp_path):
    r = _cli("defects", str(tmp_path / "nope.jpg"), env={"MSM_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 2 and r.stdout == "" and "missing" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_defects_prints_the_json_for_one_image(tmp_path, NEU):
    r = _cli("defects", str(NEU / "images" / "patches_262.jpg"), "--model", str(MODEL), "--out",
             str(tmp_path / "o"), "--conf", "0.1", "--whole-image", env={"MSM_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["segmenter"] == "model-free" and doc["defects"]
    d = doc["defects"][0]
    assert {"type", "score", "bbox", "mask_path", "crop_path", "area_px", "segmenter"} <= set(d)
    assert len(d["bbox"]) == 4 and Path(d["crop_path"]).exists() and Path(doc["overlay"]).exists()


def test_sheet_region_is_the_sheet_on_a_dark_bin_and_the_whole_image_otherwise():
    bg = np.full((1080, 1920, 3), 40, np.uint8)
    bg[200:900, 300:1600] = sheet_texture(700, 1300, np.random.default_rng(1))
    x1, y1, x2, y2 = D.sheet_region(bg)
    assert 270 <= x1 <= 300 and 170 <= y1 <= 200 and 1600 <= x2 <= 1630 and 900 <= y2 <= 930
    assert D.sheet_region(sheet_texture(1080, 1920, np.random.default_rng(5))) == (0, 0, 1920, 1080)
    # tiles only cover the sheet: fewer model runs on a capture that shows the bin too
    loc = D.Locator(ScriptedDetector(), tile=200)
    loc.locate(bg)
    assert loc.last_stats["region"] == [x1, y1, x2, y2] and loc.last_stats["tiles"] < 84


def test_cli_defects_on_a_capture_without_a_sheet_says_so(tmp_path):
    img = sheet_texture(480, 640, np.random.default_rng(9))
    f = tmp_path / "floor.jpg"
    cv2.imwrite(str(f), img)
    r = _cli("defects", str(f), "--model", str(MODEL), "--out", str(tmp_path / "o"),
             env={"MSM_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["defects"] == [] and doc["sheet_found"] is False and doc["message"] == D.NO_SHEET_MSG


@pytest.mark.slow
def test_demo_session_end_to_end_reports_nothing_off_the_sheet(db, paths):
    """The demo session's captures (demo.mp4 after each counted sheet, no defect drawn) stored
    as a session and analysed as a batch with the real locator and its shipped thresholds:
    no false defect, every capture's sheet found, and each overlay shows the analysed outline."""
    from core.bench.defects import demo_captures
    from core.platform.settings import Settings
    caps = demo_captures()
    sid, ids = _make_session(db, paths, {f"sheet_{i:04d}.jpg": img for i, (_n, img) in enumerate(caps, 1)},
                             sid="demo-1")
    s = Settings()
    loc = D.Locator.from_path(MODEL, class_conf=D.class_thresholds(s, MODEL, paths), scale=D.scale_from_settings(s))
    r = D.analyse_session(None, db, paths, sid, lambda: loc, ModelFreeSegmenter)
    assert r["captures"] == 9 and r["analysed"] == 9 and r["defects"] == 0 and r["no_sheet"] == [], r
    from core.platform.storage import CaptureRow
    with db.session() as ss:
        rows = [ss.get(CaptureRow, i) for i in ids]
    for row in rows:
        st = D.capture_status(paths, row.path, row.index)
        assert st["sheet_found"] is True and st["defects"] == []
        over = cv2.imread(str(D.capture_outputs_dir(paths, row.path) / "overlay.jpg"))
        plain = cv2.imread(str(paths.sessions / row.path))
        diff = np.abs(over.astype(int) - plain.astype(int)).sum(2) > 120
        assert 500 < diff.sum() < 0.05 * diff.size          # an outline drawn, not a filled frame


def test_bench_pipeline_counts_false_defects_recall_and_time():
    """bench defects' pipeline figures, with a stand-in detector that boxes dark blobs (so the
    figures are known): clean renders give no false defect, placed dark defects are found."""
    from core.bench import defects as B
    loc = D.Locator(SpotDetector(), conf=0.25)
    r = B.pipeline_benchmark(loc, ModelFreeSegmenter(), n_defect=2, per_finish=1, demo=False)
    c, p = r["clean_sheets"], r["placed_defects"]
    assert c["captures"] == 4 and c["demo_session"] == 0 and c["top_sheet_outline"]["renders"] == 4
    assert c["false_defects"] == r["operating_points"]["shipped_thresholds"]["false_defects"]
    assert p["defects"] == 6 and 0.0 <= p["recall"] <= 1.0 and set(r["operating_points"]) == {
        "shipped_thresholds", "flat_0.25", "flat_0.1"}
    t = r["time_per_1080p_capture_ms"]
    assert t["captures"] == p["sheet_found"] and (t["median"] is None or t["median"] > 0)
    imgs = B.clean_sheet_set(per_finish=1, demo=False, truth=True)
    assert {n.split()[0] for n, _i, _c in imgs} == {"brushed", "mill_scale", "galvanized", "painted"}
    assert len(B.demo_captures()) == 9


@pytest.mark.slow
def test_bench_defects_cli_prints_the_figures(tmp_path):
    r = _cli("bench", "defects", "--no-sam2", "--no-pipeline", "--reps", "1", "--iou-n", "1",
             env={"MSM_DATA_DIR": str(tmp_path / "data")})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["1920x1080"]["tiles"] == 84 and doc["model_free_iou"]["all"]["n"] == 4 and "pipeline" not in doc
