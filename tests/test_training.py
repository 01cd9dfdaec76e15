"""Training pipeline (issue 4): the 1-epoch smoke test on a few tiny synthetic images (the only
training CI does), dataset checks with one clear message each, and a cancellable background job.

Real parts: real Ultralytics training (CPU, 64 px), real renders from core.synthetic.clips, real ONNX
export, real database, real child process for the job.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def own_weights(tmp_path, monkeypatch):
    w = tmp_path / "weights_empty"     # not the data_dir fixture's weights/ (shipped files linked in)
    w.mkdir()
    monkeypatch.setenv("MSM_WEIGHTS_DIR", str(w))
    return w


def _cli(args: list[str], data_dir: Path, weights: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "MSM_DATA_DIR": str(data_dir), "MSM_WEIGHTS_DIR": str(weights), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "core", "train", "detect", *args], capture_output=True, text=True,
                          env=env, cwd=str(ROOT), timeout=300)


def _one_error_line(r: subprocess.CompletedProcess, msg: str) -> None:
    assert r.returncode == 2, r.stderr[-1500:]
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and msg in err[0], r.stderr[-1500:]
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.slow
def test_smoke_train_one_epoch_registers_and_exports(data_dir, own_weights):
    from core.models.manager import Registry, YoloRunner
    from core.models.training import read_results, train_detect
    from core.platform.paths import Paths
    from core.platform.storage import Database
    paths = Paths.from_env()
    res = train_detect("synthetic:12", "yolo11n.yaml", epochs=1, imgsz=64, batch=4, workers=0, device="cpu",
                       name="smoke", heldout="synthetic-heldout:10", paths=paths)
    run = Path(res.run_dir)
    assert run == paths.runs / "detect" / "smoke"
    assert Path(res.best_pt).exists() and Path(res.onnx).exists()
    assert len(read_results(run)) == 1
    for k in ("mAP50", "mAP50_95", "heldout_mAP50", "train_images", "val_images", "classes"):
        assert k in res.metrics
    assert res.metrics["classes"] == ["metal_sheet"] and res.metrics["heldout_images"] == 10
    mv = Registry(Database(), paths).active("sheet")
    assert mv is not None and mv.source == "trained" and mv.version == "v1" and str(mv.path) == res.best_pt
    r = YoloRunner.load(res.best_pt)
    assert r.backend == "onnx" and r.names == {0: "metal_sheet"} and r.imgsz == 64
    assert json.loads((run / "msm_result.json").read_text())["registered"]["version"] == "v1"


def test_dataset_problems_one_clear_message_each(data_dir, own_weights, tmp_path):
    from core.models.training import DatasetError, check_dataset
    # a folder without data.yaml
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="has no data.yaml"):
        check_dataset(tmp_path / "empty")
    # images but no labels
    ds = tmp_path / "nolabels"
    (ds / "images" / "train").mkdir(parents=True)
    import cv2
    import numpy as np
    cv2.imwrite(str(ds / "images" / "train" / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    (ds / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames: [metal_sheet]\n")
    with pytest.raises(DatasetError, match="have no labels"):
        check_dataset(ds)
    # wrong paths in data.yaml
    (ds / "data.yaml").write_text("train: nowhere/images\nval: images/train\nnames: [metal_sheet]\n")
    with pytest.raises(DatasetError, match="the 'train' path 'nowhere/images' does not exist"):
        check_dataset(ds)
    (ds / "data.yaml").write_text("train: images/train\nval: images/train\n")
    with pytest.raises(DatasetError, match="no class 'names'"):
        check_dataset(ds)
    # the CLI turns each into one line and exit code 2
    _one_error_line(_cli(["--data", str(ds), "--epochs", "1"], data_dir, own_weights), "no class 'names'")
    _one_error_line(_cli(["--data", str(tmp_path / "empty")], data_dir, own_weights), "has no data.yaml")
    _one_error_line(_cli(["--data", str(tmp_path / "missing")], data_dir, own_weights), "dataset not found")
    _one_error_line(_cli(["--data", "synthetic:abc"], data_dir, own_weights), "must be an integer")


def test_roboflow_export_layout_resolves(tmp_path):
    """Roboflow's YOLO export writes ``train: ../train/images`` next to data.yaml."""
    import cv2
    import numpy as np
    import yaml

    from core.models.training import check_dataset
    ds = tmp_path / "Sheets.v3i.yolov11"
    for split in ("train", "valid"):
        (ds / split / "images").mkdir(parents=True)
        (ds / split / "labels").mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(ds / split / "images" / f"{i}.jpg"), np.zeros((40, 40, 3), np.uint8))
            (ds / split / "labels" / f"{i}.txt").write_text("0 0.5 0.5 0.4 0.4\n")
    (ds / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\ntest: ../test/images\n"
                                  "nc: 1\nnames: ['metal_sheet']\nroboflow:\n  workspace: x\n")
    info = check_dataset(ds, tmp_path / "run")
    assert (info.train_images, info.val_images, info.names) == (3, 3, {0: "metal_sheet"})
    norm = yaml.safe_load(info.yaml_path.read_text())
    assert norm["train"] == [str((ds / "train" / "images").resolve())] and "test" not in norm


def test_bad_model_files_refused(data_dir, own_weights, tmp_path):
    import core.platform.offline
    core.platform.offline.prepare()
    from ultralytics import YOLO
    seg = tmp_path / "seg.pt"
    YOLO("yolo11n-seg.yaml").save(str(seg))
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(seg.read_bytes()[:50_000])
    _one_error_line(_cli(["--data", "synthetic:10", "--model", str(corrupt), "--epochs", "1"], data_dir, own_weights),
                    "not a loadable Ultralytics model")
    _one_error_line(_cli(["--data", "synthetic:10", "--model", str(seg), "--epochs", "1"], data_dir, own_weights),
                    "is a segment model")
    _one_error_line(_cli(["--data", "synthetic:10", "--model", "nope.yaml"], data_dir, own_weights),
                    "model config 'nope.yaml'")


@pytest.mark.slow
def test_training_job_progress_and_cancel(db, data_dir, own_weights):
    """The Models page's job: a child process, progress from results.csv, cancel kills it."""
    from core.models.training import training_job
    from core.platform.jobs import JobRunner
    runner = JobRunner(db)
    jid = runner.submit("train", training_job, data="synthetic:12", epochs=200, imgsz=64, batch=4,
                        name="cancel-me", poll_s=0.3)
    deadline = time.time() + 240
    while time.time() < deadline:
        st = runner.get(jid)
        if st.result.get("epoch", 0) >= 1:
            break
        assert st.status == "running", st.message
        time.sleep(0.5)
    else:
        pytest.fail("no epoch finished in time")
    assert 0 < st.progress < 1 and st.result["run_dir"].endswith("cancel-me") and "mAP50" in st.result["metrics"]
    runner.cancel(jid)
    st = runner.wait(jid, 60)
    assert st.status == "cancelled"
    out = subprocess.run(["pgrep", "-f", "name cancel-me"], capture_output=True, text=True)
    assert out.stdout.strip() == "", "the training process is gone"
