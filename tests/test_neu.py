"""NEU-DET conversion (VOC XML → YOLO) and the ``eval defects`` command."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.models.neu import NEU_CLASSES, convert, parse_voc, yolo_lines

from needs import neu_dir

SHIPPED_MAP50 = 0.616   # `python -m core eval defects` on the 361 val images, shipped model

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path(os.environ.get("MSM_TEST_DEFECT_MODEL") or ROOT / "weights" / "defect_yolo11n.pt")


def _voc(name: str, objs: list[tuple[str, tuple[int, int, int, int]]], w: int = 200, h: int = 200) -> str:
    o = "".join(f"<object><name>{n}</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
                f"<ymax>{b[3]}</ymax></bndbox></object>" for n, b in objs)
    return f"<annotation><filename>{name}.jpg</filename><size><width>{w}</width><height>{h}</height></size>{o}</annotation>"


def _mini(tmp_path: Path, train: list[str], val: list[str]) -> Path:
    src = tmp_path / "neu"
    for d in ("images", "annotations", "splits"):
        (src / d).mkdir(parents=True)
    objs = {
        "scratches_1": [("scratches", (10, 20, 60, 180)), ("inclusion", (100, 100, 120, 140))],  # mixed labels
        "patches_1": [("patches", (0, 0, 250, 90))],                                              # past the edge
        "crazing_241": [("crazing", (2, 2, 193, 194)), ("crazing", (50, 50, 50, 80))],            # one degenerate
    }
    for stem, ob in objs.items():
        (src / "images" / f"{stem}.jpg").write_bytes(b"\xff\xd8\xff\xd9")
        (src / "annotations" / f"{stem}.xml").write_text(_voc(stem, ob))
    (src / "splits" / "train.txt").write_text("\n".join(train) + "\n")
    (src / "splits" / "val.txt").write_text("\n".join(val) + "\n")
    return src


def test_convert_mini_dataset_box_label_is_the_truth(tmp_path):
    src = _mini(tmp_path, ["scratches_1", "patches_1"], ["crazing_241"])
    r = convert(src, tmp_path / "yolo")
    assert r.images == {"train": 2, "val": 1} and r.boxes == {"train": 3, "val": 1} and not r.skipped
    lines = (tmp_path / "yolo" / "labels" / "train" / "scratches_1.txt").read_text().split("\n")
    assert lines[0].startswith(f"{NEU_CLASSES.index('scratches')} ")
    assert lines[1].startswith(f"{NEU_CLASSES.index('inclusion')} ")          # box label, not file name
    cls, cx, cy, w, h = (float(v) for v in
                         (tmp_path / "yolo" / "labels" / "train" / "patches_1.txt").read_text().split())
    assert cx == pytest.approx(0.5) and w == pytest.approx(1.0) and h == pytest.approx(0.45)   # clipped
    y = (tmp_path / "yolo" / "data.yaml").read_text()
    assert "train: images/train" in y and "val: images/val" in y and "5: scratches" in y


def test_overlapping_splits_are_refused(tmp_path):
    src = _mini(tmp_path, ["scratches_1", "crazing_241"], ["crazing_241"])
    with pytest.raises(ValueError, match="overlap"):
        convert(src, tmp_path / "yolo")


def test_unknown_label_is_skipped_with_a_reason(tmp_path):
    src = _mini(tmp_path, ["scratches_1"], ["crazing_241"])
    (src / "annotations" / "scratches_1.xml").write_text(_voc("scratches_1", [("rust", (1, 1, 9, 9))]))
    r = convert(src, tmp_path / "yolo")
    assert r.images["train"] == 0 and "rust" in r.skipped[0]


def test_yolo_lines_and_aliases(tmp_path):
    p = tmp_path / "a.xml"
    p.write_text(_voc("a", [("rolled_in_scale", (0, 0, 100, 50))]))
    w, h, boxes = parse_voc(p)
    assert boxes[0].label == "rolled-in_scale"
    assert yolo_lines(w, h, boxes) == ["4 0.250000 0.125000 0.500000 0.250000"]


def test_real_neu_det_converts_to_the_documented_counts(tmp_path):
    NEU = neu_dir()
    r = convert(NEU, tmp_path / "yolo")
    assert r.images == {"train": 1439, "val": 361} and not r.skipped
    assert r.boxes["train"] + r.boxes["val"] == 4189
    val = {p.stem for p in (tmp_path / "yolo" / "images" / "val").glob("*.jpg")}
    train = {p.stem for p in (tmp_path / "yolo" / "images" / "train").glob("*.jpg")}
    assert not val & train and "crazing_240" in val and "scratches_300" in val and "scratches_240" in train


@pytest.mark.slow
def test_eval_defects_prints_the_exact_json(tmp_path):
    neu_dir()
    assert MODEL.exists(), f"shipped defect model missing: {MODEL}"
    env = {**os.environ, "MSM_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "core", "eval", "defects", "--model", str(MODEL)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert {"map50", "map50_95", "per_class", "images"} <= set(doc) and doc["images"] == 361
    assert set(doc["per_class"]) == set(NEU_CLASSES)
    assert 0.0 <= doc["map50_95"] <= doc["map50"] <= 1.0
    # the shipped model's figure (README, weights/manifest.json) with a margin of 0.02 mAP50
    assert doc["map50"] >= SHIPPED_MAP50 - 0.02, doc


def test_eval_defects_bad_input_exit_2(tmp_path):
    env = {**os.environ, "MSM_DATA_DIR": str(tmp_path / "data")}
    r = subprocess.run([sys.executable, "-m", "core", "eval", "defects", "--model", str(tmp_path / "x.pt")],
                       cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.strip().splitlines()) == 1


# --- selection split, training from the shipped weights, thresholds ------------------------------
def test_selection_split_is_deterministic_stratified_and_never_val():
    NEU = neu_dir()
    from core.models.neu import read_split, selection_ids
    if not (NEU / "splits" / "train.txt").exists():
        pytest.fail(f"NEU-DET splits missing at {NEU} (set MSM_NEU_DIR)")
    train, val = read_split(NEU, "train"), read_split(NEU, "val")
    sel = selection_ids(train, 0.1)
    assert sel == selection_ids(list(reversed(train)), 0.1) and len(sel) == 144
    assert set(sel) <= set(train) and not set(sel) & set(val)
    per = {c: sum(s.startswith(c) for s in sel) for c in ("crazing", "inclusion", "patches", "pitted", "rolled", "scratches")}
    assert all(23 <= n <= 25 for n in per.values()), per
    with pytest.raises(ValueError):
        selection_ids(train, 1.5)


def _real_mini(tmp_path: Path, n_per_class: int = 3) -> Path:
    """A few real NEU-DET images per class (train ids only) converted to YOLO."""
    import shutil

    from core.models.neu import read_split
    NEU = neu_dir()
    src = tmp_path / "neu"
    for d in ("images", "annotations", "splits"):
        (src / d).mkdir(parents=True)
    train = read_split(NEU, "train")
    ids = [i for c in NEU_CLASSES for i in [t for t in train if t.startswith(c.split("-")[0].split("_")[0])][:n_per_class]]
    for i in ids:
        shutil.copyfile(NEU / "images" / f"{i}.jpg", src / "images" / f"{i}.jpg")
        shutil.copyfile(NEU / "annotations" / f"{i}.xml", src / "annotations" / f"{i}.xml")
    (src / "splits" / "train.txt").write_text("\n".join(ids[1:]) + "\n")
    (src / "splits" / "val.txt").write_text(ids[0] + "\n")
    return src


@pytest.mark.slow
def test_train_continues_from_weights_picks_best_on_the_selection_split_and_records_the_run(tmp_path):
    """A real (tiny) CPU run: the manifest fields come from what the run did."""
    NEU = neu_dir()
    from core.models.manager import sha256_file
    from core.models.neu import RUN_META, train
    if not (NEU / "images").exists():
        pytest.fail(f"NEU-DET missing at {NEU} (set MSM_NEU_DIR)")
    src = _real_mini(tmp_path)
    r = convert(src, tmp_path / "yolo")
    run = train(r.data_yaml, out=tmp_path / "runs", name="t", imgsz=64, epochs=1, batch=4, workers=0,
                init=MODEL, selection_frac=0.2)
    meta = json.loads((run / RUN_META).read_text())
    assert meta["device"] == "cpu" and meta["epochs"] == 1 and meta["imgsz"] == 64
    assert meta["from_scratch"] is False and meta["init_weights"]["sha256"] == sha256_file(MODEL)
    assert meta["selection"]["images"] == 6 and meta["selection"]["fit_images"] == 11   # one per class
    assert "minus the selection split (11 images)" in meta["trained_on"] and meta["seconds"] > 0
    args = (run / "args.yaml").read_text()
    import yaml
    data = yaml.safe_load(Path(yaml.safe_load(args)["data"]).read_text())
    assert data["val"] == "images/select" and data["train"] == "images/fit"   # best.pt chosen on the selection
    assert not set(p.stem for p in (Path(data["path"]) / "images" / "select").glob("*.jpg")) & \
        set((src / "splits" / "val.txt").read_text().split())


def test_threshold_choice_reaches_the_stated_precision():
    from core.models.neu import pick_threshold, pr_at, score_detections
    preds = {"a": [("patches", 0.9, [0, 0, 10, 10]), ("patches", 0.6, [20, 20, 30, 30]),
                   ("patches", 0.3, [40, 40, 50, 50])]}
    truth = {"a": [("patches", [0, 0, 10, 10]), ("patches", [40, 40, 50, 50])]}
    sc = score_detections(preds, truth)
    assert pick_threshold(sc["patches"]["hits"], 0.9, min_support=1) == 0.9
    assert pr_at(sc, "patches", 0.3) == {"precision": round(2 / 3, 4), "recall": 1.0, "detections": 3}


def test_set_inference_imgsz_makes_the_checkpoint_default_to_the_export_size(tmp_path):
    """`finalize --imgsz N` ships a .pt whose own default size is N, so eval/thresholds/GPU
    runs agree with the ONNX twin exported at N."""
    import shutil

    from core.models.neu import default_imgsz, set_inference_imgsz
    pt = tmp_path / "m.pt"
    shutil.copyfile(MODEL, pt)
    set_inference_imgsz(pt, 288)
    assert default_imgsz(pt) == 288
    with pytest.raises(ValueError):
        set_inference_imgsz(pt, 300)   # not a multiple of the stride


def test_finalize_and_thresholds_cli_pass_the_inference_size(monkeypatch):
    import core.models.neu as neu
    seen: dict = {}

    def fake_finalize(run_dir, neu_dir, only_if_better=False, imgsz=None):
        seen["finalize"] = imgsz
        return {}

    def fake_thresholds(model, neu_dir, precision, imgsz=None):
        seen["thresholds"] = imgsz
        return {}

    monkeypatch.setattr(neu, "finalize", fake_finalize)
    monkeypatch.setattr(neu, "choose_thresholds", fake_thresholds)
    assert neu._main(["finalize", "runs/x", "--imgsz", "320"]) == 0
    assert neu._main(["thresholds", "m.pt", "--imgsz", "416"]) == 0
    assert seen == {"finalize": 320, "thresholds": 416}
    assert neu._main(["finalize", "runs/x"]) == 0 and seen["finalize"] is None   # default: the training size
