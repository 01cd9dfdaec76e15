"""NEU-DET: convert the Pascal-VOC steel-defect data to YOLO format and evaluate on it.

NEU-DET (Northeastern University) holds 1,800 grayscale 200×200 hot-rolled steel images
with VOC XML boxes in six classes. The box label is the truth (188 boxes carry a label
other than their image's file-name class). Training uses ``splits/train.txt`` only;
``splits/val.txt`` (361 images) is the held-out set and is never trained on.

Example:
    >>> from core.models.neu import NEU_CLASSES
    >>> NEU_CLASSES[0], len(NEU_CLASSES)
    ('crazing', 6)

Convert once (writes ``data/neu-yolo/{images,labels}/{train,val}`` and ``data.yaml``)::

    python -c "from core.models.neu import convert, default_neu_dir; print(convert(default_neu_dir(), 'data/neu-yolo'))"
"""
from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from core.platform import log

LOG = log.get("neu")

#: Class order of every NEU model this project trains (index = YOLO class id).
NEU_CLASSES: tuple[str, ...] = (
    "crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches",
)
_ALIASES = {"rolled_in_scale": "rolled-in_scale", "pitted": "pitted_surface",
            "scratch": "scratches", "patch": "patches"}


@dataclass
class VocBox:
    """One VOC box in pixels, ``label`` as written in the XML (after alias fixing)."""
    label: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class ConvertResult:
    """What :func:`convert` wrote."""
    out_dir: Path
    data_yaml: Path
    images: dict[str, int] = field(default_factory=dict)   # split -> image count
    boxes: dict[str, int] = field(default_factory=dict)    # split -> box count
    skipped: list[str] = field(default_factory=list)       # ids with a problem, and why


def default_neu_dir() -> Path:
    """Where NEU-DET lies: ``$MSM_NEU_DIR`` when set, else ``data/datasets/neu-det`` in the
    project (see weights/README.md for how to obtain the public data set and its split)."""
    import os

    from core.platform.paths import PROJECT_ROOT
    env = os.environ.get("MSM_NEU_DIR")
    return Path(env) if env else PROJECT_ROOT / "data" / "datasets" / "neu-det"


def parse_voc(xml_path: Path) -> tuple[int, int, list[VocBox]]:
    """Parse one VOC annotation → ``(width, height, boxes)``.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.xml"
    >>> _ = p.write_text("<annotation><size><width>200</width><height>200</height></size>"
    ...   "<object><name>scratches</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax>"
    ...   "<ymax>40</ymax></bndbox></object></annotation>")
    >>> parse_voc(p)[2][0].label
    'scratches'
    """
    root = ET.parse(xml_path).getroot()
    size = root.find("size")
    w = int(float(size.findtext("width", "0"))) if size is not None else 0
    h = int(float(size.findtext("height", "0"))) if size is not None else 0
    boxes = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        name = _ALIASES.get(name, name)
        bb = obj.find("bndbox")
        if bb is None:
            continue
        boxes.append(VocBox(name, *(float(bb.findtext(k, "0")) for k in ("xmin", "ymin", "xmax", "ymax"))))
    return w, h, boxes


def yolo_lines(w: int, h: int, boxes: list[VocBox]) -> list[str]:
    """VOC pixel boxes → YOLO ``cls cx cy w h`` lines (normalised, clipped to the image)."""
    lines = []
    for b in boxes:
        if b.label not in NEU_CLASSES:
            raise ValueError(f"unknown NEU label {b.label!r}")
        x1, x2 = sorted((max(0.0, min(b.x1, w)), max(0.0, min(b.x2, w))))
        y1, y2 = sorted((max(0.0, min(b.y1, h)), max(0.0, min(b.y2, h))))
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue  # degenerate box: nothing to learn from
        lines.append(f"{NEU_CLASSES.index(b.label)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                     f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return lines


def read_split(src: Path, split: str) -> list[str]:
    return [s.strip() for s in (src / "splits" / f"{split}.txt").read_text().splitlines() if s.strip()]


def convert(src: str | Path, out: str | Path) -> ConvertResult:
    """Convert NEU-DET at ``src`` into a YOLO dataset folder ``out`` (idempotent).

    Images are copied (not linked) because Ultralytics finds labels by swapping
    ``/images/`` for ``/labels/`` in the image path.
    """
    src, out = Path(src), Path(out)
    res = ConvertResult(out_dir=out.resolve(), data_yaml=(out / "data.yaml").resolve())
    train_ids, val_ids = read_split(src, "train"), read_split(src, "val")
    overlap = set(train_ids) & set(val_ids)
    if overlap:  # never train on val
        raise ValueError(f"train and val splits overlap: {sorted(overlap)[:5]}")
    for split, ids in (("train", train_ids), ("val", val_ids)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        n_img = n_box = 0
        for i in ids:
            img, xml = src / "images" / f"{i}.jpg", src / "annotations" / f"{i}.xml"
            if not img.exists() or not xml.exists():
                res.skipped.append(f"{i}: missing image or xml")
                continue
            try:
                w, h, boxes = parse_voc(xml)
                lines = yolo_lines(w or 200, h or 200, boxes)
            except (ET.ParseError, ValueError) as e:
                res.skipped.append(f"{i}: {e}")
                continue
            dst = out / "images" / split / img.name
            if not dst.exists() or dst.stat().st_size != img.stat().st_size:
                shutil.copyfile(img, dst)
            (out / "labels" / split / f"{i}.txt").write_text("\n".join(lines) + "\n")
            n_img += 1
            n_box += len(lines)
        res.images[split], res.boxes[split] = n_img, n_box
    names = "\n".join(f"  {k}: {v}" for k, v in enumerate(NEU_CLASSES))
    res.data_yaml.write_text(f"path: {res.out_dir}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    LOG.info("NEU-DET → %s: %s images, %s boxes", out, res.images, res.boxes)
    return res


@dataclass
class Selection:
    """A selection split carved from ``splits/train.txt``: ``fit`` trains, ``select`` picks ``best.pt``."""
    data_yaml: Path
    fit: list[str]
    select: list[str]
    frac: float
    seed: int

    def describe(self) -> dict:
        return {"frac": self.frac, "seed": self.seed, "images": len(self.select), "fit_images": len(self.fit),
                "rule": SELECTION_RULE}


#: How :func:`selection_ids` picks (written into the manifest with the run).
SELECTION_RULE = ("per class (file-name prefix), train ids sorted by sha1('<seed>:<id>'); "
                  "the first round(frac*n) of each class are the selection split")


def selection_ids(train_ids: list[str], frac: float, seed: int = 0) -> list[str]:
    """Deterministic, class-stratified selection ids carved from the training ids.

    >>> ids = [f"crazing_{i}" for i in range(1, 21)] + [f"patches_{i}" for i in range(1, 11)]
    >>> sel = selection_ids(ids, 0.1)
    >>> len(sel), sum(s.startswith("patches") for s in sel), sel == selection_ids(list(reversed(ids)), 0.1)
    (3, 1, True)
    """
    import hashlib
    if not 0.0 < frac < 1.0:
        raise ValueError(f"selection fraction must lie between 0 and 1, not {frac}")
    by_class: dict[str, list[str]] = {}
    for i in sorted(set(train_ids)):
        by_class.setdefault(i.rsplit("_", 1)[0], []).append(i)
    out: list[str] = []
    for _, ids in sorted(by_class.items()):
        ids.sort(key=lambda x: hashlib.sha1(f"{seed}:{x}".encode()).hexdigest())
        out += ids[:max(1, round(frac * len(ids)))]
    return sorted(out)


def carve_selection(data_yaml: str | Path, frac: float, seed: int = 0) -> Selection:
    """From a converted folder (``images/train``), write ``select-<pct>-s<seed>/`` with
    ``images/{fit,select}`` (+ labels, id lists) and a ``data.yaml`` whose ``val`` is the
    selection split, so Ultralytics picks ``best.pt`` on it and never sees ``images/val``."""
    import yaml
    data_yaml = Path(data_yaml)
    root = Path((yaml.safe_load(data_yaml.read_text()) or {}).get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = (data_yaml.parent / root).resolve()
    train_imgs = sorted((root / "images" / "train").glob("*.jpg"))
    if not train_imgs:
        raise ValueError(f"{root / 'images' / 'train'} holds no images: convert NEU-DET first")
    ids = [p.stem for p in train_imgs]
    sel = set(selection_ids(ids, frac, seed))
    out = root / f"select-{round(frac * 100)}-s{seed}"
    parts = {"fit": [i for i in ids if i not in sel], "select": sorted(sel)}
    for split, members in parts.items():
        for kind in ("images", "labels"):
            d = out / kind / split
            if d.exists():
                shutil.rmtree(d)
            d.mkdir(parents=True)
        for i in members:
            shutil.copyfile(root / "images" / "train" / f"{i}.jpg", out / "images" / split / f"{i}.jpg")
            shutil.copyfile(root / "labels" / "train" / f"{i}.txt", out / "labels" / split / f"{i}.txt")
        (out / f"{split}.txt").write_text("\n".join(members) + "\n")
    names = "\n".join(f"  {k}: {v}" for k, v in enumerate(NEU_CLASSES))
    y = out / "data.yaml"
    y.write_text(f"path: {out.resolve()}\ntrain: images/fit\nval: images/select\nnames:\n{names}\n")
    return Selection(y, parts["fit"], parts["select"], frac, seed)


def _device_name(device: str) -> str:
    """What the run really ran on: ``cpu`` or the CUDA device's name."""
    if str(device).lower() == "cpu":
        return "cpu"
    try:
        import torch
        if torch.cuda.is_available():
            idx = int(str(device).split(",")[0]) if str(device).split(",")[0].isdigit() else 0
            return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    except Exception:  # noqa: BLE001 - a name is a courtesy, never a failure
        pass
    return str(device)


RUN_META = "msm_run.json"


def train(data_yaml: str | Path, *, out: str | Path = "data/runs/neu", name: str = "defect_yolo11n",
          imgsz: int = 224, epochs: int = 300, hours: float | None = None, batch: int = 32,
          workers: int = 2, device: str = "cpu", patience: int = 1000, init: str | Path | None = None,
          selection_frac: float = 0.0, seed: int = 0, lr0: float | None = None,
          warmup_epochs: float | None = None) -> Path:
    """Train YOLO11n on NEU-DET: from scratch (``yolo11n.yaml``; no pretrained weights
    reachable) or continuing from ``init`` (e.g. the shipped ``weights/defect_yolo11n.pt``).

    ``selection_frac`` > 0 carves a selection split from the training images
    (:func:`carve_selection`); ``best.pt`` is then chosen on it and the 361 val images are
    never looked at during training. ``hours`` caps wall time (Ultralytics' ``time=``),
    re-fitting the LR schedule to the budget. What the run actually was (device, epochs,
    size, data, selection split, seconds, init weights) is written to ``<run>/msm_run.json``
    and becomes the manifest entry in :func:`finalize`. Returns the run folder::

        nice -n 10 nohup python -m core.models.neu train data/neu-yolo/data.yaml --imgsz 224 --hours 1.2 \\
            --selection-frac 0.1 --init weights/defect_yolo11n.pt > data/runs/neu_train.log 2>&1 &
    """
    import json
    import time

    from core.platform import offline
    offline.prepare()
    from ultralytics import YOLO  # heavy import: only here

    data = Path(data_yaml)
    sel = carve_selection(data, selection_frac, seed) if selection_frac else None
    train_data = sel.data_yaml if sel else data
    init_info = None
    if init:
        from core.models.manager import sha256_file
        init = Path(init)
        if not init.exists():
            raise FileNotFoundError(f"initial weights not found: {init}")
        init_info = {"file": init.name, "sha256": sha256_file(init)}
        model = YOLO(str(init))
    else:
        model = YOLO("yolo11n.yaml")  # architecture only: random init, no download
    run_dir = Path(out).resolve() / name
    kw = dict(data=str(train_data), imgsz=imgsz, epochs=epochs, batch=batch, workers=workers,
              device=device, project=str(Path(out).resolve()), name=name, exist_ok=True,
              # pretrained=False would drop the --init weights and start from random
              patience=patience, pretrained=init is not None, plots=False,
              amp=False,  # the AMP self-check downloads yolo26n.pt; nano model is loader-bound anyway
              cache="ram", seed=seed, deterministic=False, verbose=True,
              # grayscale steel: colour jitter in hue/saturation teaches nothing
              hsv_h=0.0, hsv_s=0.0, fliplr=0.5, flipud=0.5)
    if hours:
        kw["time"] = hours
    if lr0 is not None:   # continuing: a gentler restart than the from-scratch schedule
        kw.update(optimizer="AdamW", lr0=lr0)
    if warmup_epochs is not None:
        kw["warmup_epochs"] = warmup_epochs
    t0 = time.time()
    model.train(**kw)
    seconds = round(time.time() - t0, 1)
    rows = (run_dir / "results.csv").read_text().splitlines() if (run_dir / "results.csv").exists() else []
    n_train = len(sel.fit) if sel else len(list((data.parent / "images" / "train").glob("*.jpg")))
    meta = {"device": _device_name(device), "epochs": max(0, len(rows) - 1), "imgsz": imgsz, "batch": batch,
            "hours_cap": hours, "seconds": seconds,
            "trained_on": (f"NEU-DET splits/train.txt minus the selection split ({n_train} images)" if sel
                           else f"NEU-DET splits/train.txt ({n_train} images)"),
            "best_chosen_on": (f"selection split carved from splits/train.txt ({len(sel.select)} images)" if sel
                               else "NEU-DET splits/val.txt (the Ultralytics default: same as the reported set)"),
            "selection": sel.describe() if sel else None,
            "from_scratch": init is None, "init_weights": init_info,
            "optimizer": kw.get("optimizer", "auto"), "lr0": lr0}
    (run_dir / RUN_META).write_text(json.dumps(meta, indent=2) + "\n")
    LOG.info("NEU run finished: %s", meta)
    return run_dir


def _iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9)


def score_detections(preds: dict[str, list[tuple[str, float, list[float]]]],
                     truth: dict[str, list[tuple[str, list[float]]]], iou: float = 0.5) -> dict[str, Any]:
    """Per class, every prediction as (conf, true positive?) and the number of true boxes:
    greedy by confidence, one truth box per prediction at IoU ≥ ``iou``, same class.

    >>> r = score_detections({"a": [("x", .9, [0, 0, 10, 10]), ("x", .4, [50, 50, 60, 60])]},
    ...                      {"a": [("x", [0, 0, 10, 11])]})
    >>> r["x"]["hits"], r["x"]["n_true"]
    ([(0.9, True), (0.4, False)], 1)
    """
    out: dict[str, Any] = {}
    for c in NEU_CLASSES:
        out[c] = {"hits": [], "n_true": 0}
    for img, gts in truth.items():
        for c, _ in gts:
            out.setdefault(c, {"hits": [], "n_true": 0})["n_true"] += 1
    for img, ps in preds.items():
        gts = truth.get(img, [])
        used = [False] * len(gts)
        for c, conf, box in sorted(ps, key=lambda t: -t[1]):
            best, bj = 0.0, -1
            for j, (gc, gb) in enumerate(gts):
                if used[j] or gc != c:
                    continue
                v = _iou(box, gb)
                if v > best:
                    best, bj = v, j
            hit = best >= iou
            if hit:
                used[bj] = True
            out.setdefault(c, {"hits": [], "n_true": 0})["hits"].append((float(conf), hit))
    for c in out:
        out[c]["hits"].sort(key=lambda t: -t[0])
    return out


def pr_at(scored: dict[str, Any], c: str, conf: float) -> dict[str, Any]:
    """Precision and recall of class ``c`` at threshold ``conf``."""
    hits = [h for k, h in scored[c]["hits"] if k >= conf]
    tp = sum(hits)
    n = scored[c]["n_true"]
    return {"precision": round(tp / len(hits), 4) if hits else None, "recall": round(tp / n, 4) if n else None,
            "detections": len(hits)}


def pick_threshold(hits: list[tuple[float, bool]], target: float, min_support: int = 5,
                   floor: float = 0.05, ceiling: float = 0.95) -> float:
    """The lowest confidence at which precision (of everything at or above it) reaches
    ``target`` with at least ``min_support`` detections; ``ceiling`` when never reached.

    >>> pick_threshold([(.9, True)] * 5 + [(.5, False), (.3, True)], 0.8)
    0.3
    >>> pick_threshold([(.9, False)] * 6, 0.8)
    0.95
    """
    best = ceiling
    tp = 0
    for i, (conf, hit) in enumerate(sorted(hits, key=lambda t: -t[0]), 1):
        tp += hit
        if i >= min_support and tp / i >= target:
            best = conf
    return round(max(floor, min(best, ceiling)), 3)


def default_imgsz(model_path: str | Path) -> int:
    """A checkpoint's own inference size (``YOLO(...).overrides["imgsz"]``; 224 when unset)."""
    from core.platform import offline
    offline.prepare()
    from ultralytics import YOLO
    return int((YOLO(str(model_path), task="detect").overrides or {}).get("imgsz") or 224)


def predict_neu(model_path: str | Path, src: Path, ids: list[str], imgsz: Optional[int] = None,
                conf: float = 0.01) -> dict[str, list[tuple[str, float, list[float]]]]:
    """Raw predictions of a NEU model on NEU-DET images (by id), CPU."""
    from core.platform import offline
    offline.prepare()
    from ultralytics import YOLO
    model = YOLO(str(model_path), task="detect")
    imgsz = imgsz or int((getattr(model, "overrides", {}) or {}).get("imgsz") or 224)
    names = {int(k): v for k, v in (model.names or {}).items()}
    out: dict[str, list] = {}
    files = [str(src / "images" / f"{i}.jpg") for i in ids]
    for k in range(0, len(files), 32):
        for i, r in zip(ids[k:k + 32], model.predict(files[k:k + 32], imgsz=imgsz, conf=conf, device="cpu",
                                                     verbose=False, max_det=100)):
            b = r.boxes
            out[i] = [(names[int(c)], float(s), [float(v) for v in xy])
                      for c, s, xy in zip(b.cls.tolist(), b.conf.tolist(), b.xyxy.tolist())]
    return out


def neu_truth(src: Path, ids: list[str]) -> dict[str, list[tuple[str, list[float]]]]:
    out = {}
    for i in ids:
        _w, _h, boxes = parse_voc(src / "annotations" / f"{i}.xml")
        out[i] = [(b.label, [b.x1, b.y1, b.x2, b.y2]) for b in boxes]
    return out


def choose_thresholds(model_path: str | Path, neu_dir: str | Path | None = None, target_precision: float = 0.9,
                      selection_frac: float = 0.1, seed: int = 0, imgsz: Optional[int] = None) -> dict[str, Any]:
    """Per-class default confidences for a stated precision.

    Chosen on the selection split carved from ``splits/train.txt`` (never on the 361 val
    images: that would tune on the held-out set); precision and recall at the chosen
    thresholds are then *reported* on val. (A model trained on all of train.txt has seen
    the selection images, so its selection precision is optimistic — the val columns are
    the honest figures.)

    ``imgsz``: the size to predict at (default: the model's own inference size, which
    :func:`finalize` makes the ONNX export size); recorded in the table.
    """
    src = Path(neu_dir) if neu_dir else default_neu_dir()
    imgsz = int(imgsz or default_imgsz(model_path))
    sel = selection_ids(read_split(src, "train"), selection_frac, seed)
    val = read_split(src, "val")
    s_sel = score_detections(predict_neu(model_path, src, sel, imgsz=imgsz), neu_truth(src, sel))
    s_val = score_detections(predict_neu(model_path, src, val, imgsz=imgsz), neu_truth(src, val))
    conf: dict[str, float] = {}
    table: dict[str, Any] = {}
    for c in NEU_CLASSES:
        t = pick_threshold(s_sel[c]["hits"], target_precision)
        conf[c] = t
        table[c] = {"conf": t, "selection": pr_at(s_sel, c, t), "val": pr_at(s_val, c, t)}
    return {"target_precision": target_precision, "conf": conf, "classes": table,
            "chosen_on": f"selection split: {len(sel)} images carved from splits/train.txt ({SELECTION_RULE})",
            "reported_on": f"NEU-DET splits/val.txt ({len(val)} images)", "model": Path(model_path).name,
            "imgsz": imgsz}


def write_thresholds(model_file: str, table: dict[str, Any], paths: Any = None) -> None:
    """Record a threshold table in ``weights/manifest.json`` under the model's metrics
    (``class_thresholds``); the file's hashes are unchanged."""
    import json

    from core.models.manager import MANIFEST
    from core.platform.paths import Paths
    paths = paths or Paths.from_env()
    mf = paths.weights / MANIFEST
    doc = json.loads(mf.read_text())
    entry = doc.get("files", {}).get(model_file)
    if entry is None:
        raise ValueError(f"{model_file} is not in {mf}")
    entry.setdefault("metrics", {})["class_thresholds"] = table
    mf.write_text(json.dumps(doc, indent=2) + "\n")


def set_inference_imgsz(pt_path: str | Path, imgsz: int) -> None:
    """Make ``imgsz`` the default inference size of a stripped Ultralytics checkpoint
    (its ``train_args["imgsz"]``, which ``YOLO(...).overrides`` reads), in place.

    Every path that does not pass a size — the ``.pt`` on a GPU box, ``eval defects``,
    ``thresholds`` — then runs at the size the ONNX twin was exported at; the training
    size is kept in the manifest (``train_imgsz``)."""
    import torch
    if int(imgsz) < 32 or int(imgsz) % 32:
        raise ValueError(f"imgsz must be a multiple of 32 and ≥ 32, got {imgsz}")
    ckpt = torch.load(str(pt_path), map_location="cpu", weights_only=False)
    args = ckpt.get("train_args")
    if not isinstance(args, dict):
        raise ValueError(f"{Path(pt_path).name} has no train_args to carry the inference size")
    args["imgsz"] = int(imgsz)
    torch.save(ckpt, str(pt_path))


def finalize(run_dir: str | Path, neu_dir: str | Path | None = None,
             stem: str = "defect_yolo11n", only_if_better: bool = False,
             imgsz: Optional[int] = None) -> dict:
    """Ship a finished NEU run: strip the optimizer from ``best.pt``, export ONNX at the
    inference size, evaluate on the 361 val images and choose the per-class thresholds at
    that size, copy both into ``weights/`` with the manifest entry
    (:func:`core.models.training.ship_weights`) and register them (task ``defect``).

    ``imgsz`` is the inference (export) size; default the training size. A smaller one
    trades some mAP for CPU time per capture (every 200 px tile is letterboxed to it); it
    is also written into the shipped ``.pt`` (:func:`set_inference_imgsz`) so both files
    run at one size, and the manifest keeps the training size as ``train_imgsz``.

    The manifest fields come from the run's ``msm_run.json`` (written by :func:`train`).
    ``only_if_better`` ships only when val mAP50 beats the shipped file's manifest figure;
    the result says ``shipped`` and both figures either way."""
    import json
    import tempfile

    from core.models.manager import Registry
    from core.models.training import ship_weights
    from core.platform import offline
    from core.platform.paths import Paths
    from core.platform.storage import Database
    from core.qa.defects import evaluate
    offline.prepare()
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import strip_optimizer
    run_dir = Path(run_dir)
    neu_dir = Path(neu_dir) if neu_dir else default_neu_dir()
    paths = Paths.from_env()
    tmp = Path(tempfile.mkdtemp(prefix="neu-ship-"))
    best = tmp / f"{stem}.pt"
    shutil.copyfile(run_dir / "weights" / "best.pt", best)
    strip_optimizer(str(best))
    train_imgsz = int((YOLO(str(best)).overrides or {}).get("imgsz") or 224)
    imgsz = int(imgsz or train_imgsz)
    if imgsz != train_imgsz:
        set_inference_imgsz(best, imgsz)
    model = YOLO(str(best))
    onnx = Path(model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=False, device="cpu"))
    metrics = evaluate(best, neu_dir, paths.cache, imgsz=imgsz)
    meta_f = run_dir / RUN_META
    if meta_f.exists():
        metrics.update(json.loads(meta_f.read_text()))
    else:  # a run from before msm_run.json: say only what the folder itself shows
        epochs = sum(1 for _ in open(run_dir / "results.csv")) - 1 if (run_dir / "results.csv").exists() else None
        metrics.update({"epochs": epochs, "run_record": "none (run predates msm_run.json)"})
    metrics["train_imgsz"] = int(metrics.get("imgsz") or train_imgsz)
    metrics["imgsz"] = imgsz
    metrics["class_thresholds"] = choose_thresholds(best, neu_dir, imgsz=imgsz)
    from core.models.manager import MANIFEST
    mf = paths.weights / MANIFEST
    prev = (json.loads(mf.read_text()).get("files", {}).get(f"{stem}.pt", {}).get("metrics", {})
            if mf.exists() else {})
    prev_map = prev.get("map50")
    better = prev_map is None or metrics["map50"] > float(prev_map)
    shipped: list[str] = []
    if better or not only_if_better:
        shipped = ship_weights(best, onnx, stem, "defect", metrics, paths)
        Registry(Database(), paths).sync_bundled()
        LOG.info("shipped %s: %s", shipped, json.dumps(metrics))
    else:
        LOG.info("not shipped: val mAP50 %.4f does not beat the shipped %.4f", metrics["map50"], prev_map)
    return {"files": shipped, "shipped": bool(shipped), "metrics": metrics, "previous_map50": prev_map,
            "best_pt": str(best), "onnx": str(onnx)}


def _main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m core.models.neu", description="NEU-DET conversion and training")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="VOC → YOLO folder")
    c.add_argument("src")
    c.add_argument("out")
    t = sub.add_parser("train", help="train YOLO11n from scratch")
    t.add_argument("data_yaml")
    t.add_argument("--imgsz", type=int, default=224)
    t.add_argument("--epochs", type=int, default=300)
    t.add_argument("--hours", type=float, default=None)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--device", default="cpu")
    t.add_argument("--out", default="data/runs/neu")
    t.add_argument("--name", default="defect_yolo11n")
    t.add_argument("--init", default=None, help="continue from these weights (e.g. weights/defect_yolo11n.pt); "
                   "default: from scratch")
    t.add_argument("--selection-frac", type=float, default=0.0,
                   help="carve this fraction of splits/train.txt as the split that picks best.pt (e.g. 0.1)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--lr0", type=float, default=None, help="AdamW start LR (continuing: e.g. 0.0005)")
    t.add_argument("--warmup-epochs", type=float, default=None)
    f = sub.add_parser("finalize", help="strip, export ONNX, evaluate, ship to weights/ and register")
    f.add_argument("run_dir")
    f.add_argument("--neu", default=None, help="NEU-DET folder (default: $MSM_NEU_DIR)")
    f.add_argument("--only-if-better", action="store_true",
                   help="ship only when val mAP50 beats the shipped file's manifest figure")
    f.add_argument("--imgsz", type=int, default=None,
                   help="inference/export size (default: the training size); smaller is faster on CPU")
    th = sub.add_parser("thresholds", help="per-class confidences for a stated precision (selection split), "
                        "reported on val")
    th.add_argument("model")
    th.add_argument("--neu", default=None)
    th.add_argument("--precision", type=float, default=0.9)
    th.add_argument("--imgsz", type=int, default=None, help="predict at this size (default: the model's own)")
    th.add_argument("--write", action="store_true", help="record them in weights/manifest.json for this model")
    a = ap.parse_args(argv)
    log.setup()
    if a.cmd == "thresholds":
        import json
        res = choose_thresholds(a.model, a.neu, a.precision, imgsz=a.imgsz)
        if a.write:
            write_thresholds(Path(a.model).with_suffix(".pt").name, res)
        print(json.dumps(res))
        return 0
    if a.cmd == "finalize":
        import json
        print(json.dumps(finalize(a.run_dir, a.neu, only_if_better=a.only_if_better, imgsz=a.imgsz)))
        return 0
    if a.cmd == "convert":
        r = convert(a.src, a.out)
        print({"images": r.images, "boxes": r.boxes, "skipped": r.skipped})
    else:
        print(train(a.data_yaml, out=a.out, name=a.name, imgsz=a.imgsz, epochs=a.epochs, hours=a.hours,
                    batch=a.batch, workers=a.workers, device=a.device, init=a.init,
                    selection_frac=a.selection_frac, seed=a.seed, lr0=a.lr0, warmup_epochs=a.warmup_epochs))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main())
