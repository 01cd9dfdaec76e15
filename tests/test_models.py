"""Model registry, YOLO inference wrapper and model manager (issue 4).

Real parts throughout: real Ultralytics model files (built from yolo11n.yaml, or the
shipped, trained weights/metal_sheet.pt), a real SQLite database, real ONNX Runtime, a real
(random-init) SAM 2 hiera-tiny for the memory test.
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "weights" / "metal_sheet.pt"


def _build(path: Path, cfg: str) -> Path:
    import core.platform.offline
    core.platform.offline.prepare()
    from ultralytics import YOLO
    YOLO(cfg).save(str(path))
    return path


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    det_a = _build(d / "det_a.pt", "yolo11n.yaml")
    det_b = d / "det_b.pt"
    det_b.write_bytes(det_a.read_bytes())           # same model, different bytes → different SHA-256
    with open(det_b, "ab") as f:
        f.write(b"\0" * 16)
    seg = _build(d / "seg.pt", "yolo11n-seg.yaml")
    corrupt = d / "corrupt.pt"
    corrupt.write_bytes(det_a.read_bytes()[: 100_000])
    return {"det_a": det_a, "det_b": det_b, "seg": seg, "corrupt": corrupt}


@pytest.fixture
def empty_weights(tmp_path, monkeypatch):
    w = tmp_path / "weights_empty"     # not the data_dir fixture's weights/ (shipped files linked in)
    w.mkdir()
    monkeypatch.setenv("MSM_WEIGHTS_DIR", str(w))
    return w


def _iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


# --- registry ------------------------------------------------------------------------------------
def test_register_activate_rollback(db, empty_weights, model_files):
    from core.models.manager import ModelError, Registry
    from core.platform.paths import Paths
    reg = Registry(db, Paths.from_env())
    a = reg.register(model_files["det_a"], "sheet-a", "sheet", metrics={"mAP50": 0.9})
    assert a.version == "v1" and a.active, "the first version of a task becomes active"
    b = reg.register(model_files["det_b"], "sheet-b", "sheet")
    assert b.version == "v2" and not b.active
    assert reg.active("sheet").version == "v1"
    reg.activate("sheet", "v2")
    assert reg.active("sheet").version == "v2"
    assert [m.active for m in reg.list("sheet")] == [False, True], "exactly one active version per task"
    assert reg.rollback("sheet").version == "v1"
    with pytest.raises(ModelError, match="oldest version"):
        reg.rollback("sheet")
    with pytest.raises(ModelError, match="no version 'v9'"):
        reg.activate("sheet", "v9")
    with pytest.raises(ModelError, match="unknown task"):
        reg.register(model_files["det_a"], "x", "banana")
    mv = reg.active("sheet")
    assert len(mv.sha256) == 64 and mv.metrics == {"mAP50": 0.9} and mv.created_at.tzinfo is not None


def test_changed_file_is_refused(db, empty_weights, model_files, tmp_path):
    from core.models.manager import ModelError, ModelManager, Registry
    from core.platform.paths import Paths
    f = tmp_path / "sheet.pt"
    f.write_bytes(model_files["det_a"].read_bytes())
    reg = Registry(db, Paths.from_env())
    reg.register(f, "sheet", "sheet")
    assert reg.active("sheet") is not None
    with open(f, "ab") as fh:                     # someone replaces / tampers with the file
        fh.write(b"tampered")
    with pytest.raises(ModelError, match="SHA-256 .* no longer matches"):
        reg.active("sheet")
    mm = ModelManager(db, Paths.from_env())
    assert mm.sheet_detector() is None, "a refused file is never loaded"
    assert "no longer matches" in mm.problems["sheet"]


def test_validate_upload_refuses_bad_files(db, empty_weights, model_files, tmp_path):
    from core.models.manager import ModelError, Registry
    from core.platform.paths import Paths
    reg = Registry(db, Paths.from_env())
    with pytest.raises(ModelError, match="is a segmentation model; the metal-sheet detector needs a detection"):
        reg.validate_upload(model_files["seg"], "sheet")
    with pytest.raises(ModelError, match="not a loadable Ultralytics model"):
        reg.validate_upload(model_files["corrupt"], "defect")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="not a model file"):
        reg.validate_upload(junk, "sheet")
    onnx = tmp_path / "x.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelError, match="upload a PyTorch .pt"):
        reg.validate_upload(onnx, "sheet")
    with pytest.raises(ModelError, match="not a SAM 2 checkpoint"):
        reg.validate_upload(model_files["det_a"], "sam2")
    assert reg.list() == [], "nothing refused was registered"
    ok = reg.validate_upload(model_files["det_a"], "defect")
    assert ok.model_task == "detect" and len(ok.names) == 80
    mv = reg.register_upload(model_files["det_a"], "defect", name="mine")
    assert mv.source == "uploaded" and mv.path.exists() and mv.path.parent.name == "defect"
    assert mv.active, "first version of its task"


def test_sync_bundled_manifest(db, empty_weights, model_files):
    from core.models.manager import ModelError, Registry, sha256_file
    from core.platform.paths import Paths
    f = empty_weights / "metal_sheet.pt"
    f.write_bytes(model_files["det_a"].read_bytes())
    (empty_weights / "manifest.json").write_text(json.dumps({"files": {"metal_sheet.pt": {
        "name": "metal_sheet", "task": "sheet", "version": "ms-1", "sha256": sha256_file(f),
        "metrics": {"heldout_mAP50": 0.95}}}}))
    reg = Registry(db, Paths.from_env())
    out = reg.sync_bundled()
    assert [(m.name, m.version, m.source, m.active) for m in out] == [("metal_sheet", "ms-1", "bundled", True)]
    assert reg.list("sheet")[0].stored_path == "metal_sheet.pt", "paths inside weights/ are stored relative"
    # a refreshed shipped file whose hash the manifest records → the row follows
    f.write_bytes(model_files["det_b"].read_bytes())
    m = json.loads((empty_weights / "manifest.json").read_text())
    m["files"]["metal_sheet.pt"]["sha256"] = sha256_file(f)
    (empty_weights / "manifest.json").write_text(json.dumps(m))
    reg.sync_bundled()
    assert reg.active("sheet").sha256 == sha256_file(f)
    # a file that matches neither the registry nor the manifest is refused
    with open(f, "ab") as fh:
        fh.write(b"x")
    reg.sync_bundled()
    with pytest.raises(ModelError, match="no longer matches"):
        reg.active("sheet")


def _cli(args: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "core", *args], capture_output=True, text=True, env=env,
                          cwd=str(ROOT), timeout=180)


@pytest.mark.slow
def test_cli_models_list_activate_register(data_dir, empty_weights, model_files):
    env = {"MSM_DATA_DIR": str(data_dir), "MSM_WEIGHTS_DIR": str(empty_weights)}
    r = _cli(["models", "register", str(model_files["det_a"]), "--task", "sheet", "--name", "a"], env)
    assert r.returncode == 0, r.stderr
    r = _cli(["models", "register", str(model_files["det_b"]), "--task", "sheet", "--name", "b"], env)
    assert r.returncode == 0, r.stderr
    r = _cli(["models", "list"], env)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [set(x) for x in rows] == [{"name", "task", "version", "sha256", "active", "path", "metrics"}] * 2
    assert [(x["name"], x["version"], x["active"]) for x in rows] == [("a", "v1", True), ("b", "v2", False)]
    r = _cli(["models", "activate", "--task", "sheet", "--version", "v2"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["active"] is True
    r = _cli(["models", "activate", "--task", "sheet", "--rollback"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["version"] == "v1"
    # bad input: one clear line on stderr, exit code 2, nothing on stdout
    for args, msg in ((["models", "activate", "--task", "sheet", "--version", "v7"], "no version 'v7'"),
                      (["models", "register", str(model_files["seg"]), "--task", "sheet"], "segmentation model"),
                      (["models", "register", str(model_files["corrupt"]), "--task", "sheet"], "not a loadable")):
        r = _cli(args, env)
        assert r.returncode == 2, (args, r.stderr)
        err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
        assert len(err) == 1 and msg in err[0] and "Traceback" not in r.stderr and r.stdout == ""


# --- inference wrapper on the shipped, trained detector -------------------------------------------
def _heldout_image(seed: int):
    from core.synthetic.sheetdata import HELDOUT, render_sample
    rng = np.random.default_rng(seed)
    while True:
        img, labels, meta = render_sample(rng, HELDOUT)
        if labels and meta["arm"] == "none":
            h, w = img.shape[:2]
            _c, cx, cy, bw, bh = labels[0]
            return img, [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h]


def test_shipped_detector_onnx_and_torch_agree():
    from core.models.manager import YoloRunner
    assert SHIPPED.exists() and SHIPPED.with_suffix(".onnx").exists(), "the trained detector is shipped"
    onnx = YoloRunner.load(SHIPPED, prefer_onnx=True)
    pt = YoloRunner.load(SHIPPED, prefer_onnx=False)
    assert (onnx.backend, pt.backend) == ("onnx", "torch")
    assert onnx.names == pt.names == {0: "metal_sheet"} and onnx.task == pt.task == "detect"
    hits = 0
    for seed in (101, 202, 303):
        img, truth = _heldout_image(seed)
        bo, bt = onnx.predict(img, conf=0.25), pt.predict(img, conf=0.25)
        assert bo and bt
        assert _iou(bo[0].xyxy, bt[0].xyxy) > 0.9 and abs(bo[0].conf - bt[0].conf) < 0.1
        hits += _iou(bo[0].xyxy, truth) > 0.7
    assert hits >= 2, "the detector finds the top sheet of held-out renders"
    # empty floor: no confident sheet
    blank = np.full((240, 320, 3), 120, np.uint8)
    assert not [b for b in onnx.predict(blank, conf=0.5)]
    onnx.unload()
    assert not onnx.loaded
    with pytest.raises(Exception, match="unloaded"):
        onnx.predict(blank)


def test_runner_refuses_bad_paths(tmp_path, model_files):
    from core.models.manager import ModelError, YoloRunner
    with pytest.raises(ModelError, match="not found"):
        YoloRunner.load(tmp_path / "none.pt")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="not a loadable ONNX"):
        YoloRunner.load(bad)
    with pytest.raises(ModelError, match="not a loadable Ultralytics"):
        YoloRunner.load(model_files["corrupt"], prefer_onnx=False)


# --- model manager --------------------------------------------------------------------------------
def _live_sam2() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "SAM2Base")


def test_manager_detect_fn_and_modes(db, paths):
    """Counting holds only the sheet detector; the detect_fn adapter follows evictions."""
    from core.models.manager import ModelManager
    mm = ModelManager(db, paths)
    assert mm.registry.active("sheet").source == "bundled"
    fn = mm.sheet_detect_fn()
    assert fn is not None
    img, truth = _heldout_image(7)
    boxes = fn(img)
    assert boxes and boxes[0].name == "metal_sheet" and boxes[0].conf > 0.5
    assert _iou(boxes[0].xyxy, truth) > 0.7
    assert mm.resident() == ["sheet"] and mm.mode == "counting"
    mm.enter_analysis()
    assert mm.resident() == [] and mm.mode == "analysis"
    assert mm.sheet_detector() is None and fn(img) == [], "no detector while analysing"
    mm.leave_analysis()
    assert fn(img), "back in counting mode the detector reloads"
    mm.close()
    assert mm.resident() == []


@pytest.mark.slow
def test_sam2_not_resident_while_counting(db, paths):
    """SAM 2 (random-init hiera-tiny, the real architecture) is loaded only in analysis
    mode and really freed on leaving it."""
    from core.models.manager import ModelManager
    mm = ModelManager(db, paths, sam2_random_init=True)
    assert mm.sheet_detector() is not None
    assert "segmenter" not in mm.resident() and _live_sam2() == 0
    rss_counting = mm.memory()["rss_mb"]
    mm.enter_analysis()
    seg = mm.segmenter()
    assert seg is not None and "sam2" in getattr(seg, "name", "").lower()
    assert _live_sam2() == 1 and set(mm.resident()) == {"segmenter"}
    del seg
    rss_analysis = mm.memory()["rss_mb"]
    assert rss_analysis - rss_counting > 60, (rss_counting, rss_analysis)   # 39 M params ≈ 150 MB fp32
    mm.leave_analysis()
    assert _live_sam2() == 0, "SAM 2 is not resident while counting"
    assert "segmenter" not in mm.resident() and mm.sheet_detector() is not None
    rss_back = mm.memory()["rss_mb"]
    assert rss_analysis - rss_back > 60, (rss_analysis, rss_back)
    mm.close()


@pytest.mark.slow
def test_bench_models_prints_memory_per_mode(data_dir):
    r = _cli(["bench", "models", "--cycles", "1", "--size", "320"], {"MSM_DATA_DIR": str(data_dir)})
    assert r.returncode == 0, r.stderr[-2000:]
    steps = json.loads(r.stdout)["steps"]
    by = {s["step"]: s for s in steps}
    assert by["cycle 1: counting (sheet loaded)"]["resident"] == ["sheet"]
    assert by["cycle 1: analysis (locator+SAM2)"]["resident"][-1] == "segmenter"
    assert by["cycle 1: swap → counting"]["resident"] == []
    assert all(s["rss_mb"] > 0 for s in steps)
    assert "rss" in r.stderr, "the human-readable table goes to stderr"


def test_unregistered_onnx_sibling_is_not_trusted(db, empty_weights, tmp_path):
    """The manager prefers the faster ONNX file only when it is the one registered with the .pt."""
    import shutil

    from core.models.manager import ModelManager
    from core.platform.paths import Paths
    assert SHIPPED.exists()
    pt = tmp_path / "m.pt"
    shutil.copyfile(SHIPPED, pt)
    shutil.copyfile(SHIPPED.with_suffix(".onnx"), pt.with_suffix(".onnx"))
    mm = ModelManager(db, Paths.from_env())
    mv = mm.registry.register(pt, "m", "sheet")
    assert len(mv.metrics["onnx_sha256"]) == 64
    assert mm.sheet_detector().backend == "onnx"
    mm.close()
    with open(pt.with_suffix(".onnx"), "ab") as f:   # swapped behind the registry's back
        f.write(b"\0")
    mm = ModelManager(db, Paths.from_env())
    det = mm.sheet_detector()
    assert det.backend == "torch" and "does not match the registered model" in mm.problems["sheet"]
    mm.close()


@pytest.mark.slow
def test_detector_verifier_counts_a_clip_with_the_trained_model(db, paths, tmp_path):
    """The counting engine's detector-backed verifier, fed by the manager's detect_fn,
    counts a rendered clip with a hand-only touch exactly."""
    from core.counting.engine import DetectorVerifier, make_verifier
    from core.live.count import count_video
    from core.models.manager import ModelManager
    from core.platform.settings import CountingSettings
    from core.synthetic.clips import presets, render_clip
    spec = presets(320, 240, 15)["hand_only"]
    spec.codec = "mp4v"
    truth = render_clip(spec, tmp_path / "hand_only.mp4")
    mm = ModelManager(db, paths)
    cfg = CountingSettings(verifier="detector", sheet_confidence=0.5)
    v = make_verifier(cfg, mm.sheet_detect_fn())
    assert isinstance(v, DetectorVerifier)
    res = count_video(str(tmp_path / "hand_only.mp4"), cfg, v)
    assert res.count == truth.expected_count
    assert res.events and all("metal_sheet" in e.reason for e in res.events), [e.reason for e in res.events]
    mm.close()
