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


def train(data_yaml: str | Path, *, out: str | Path = "data/runs/neu", name: str = "defect_yolo11n",
          imgsz: int = 224, epochs: int = 300, hours: float | None = None, batch: int = 32,
          workers: int = 2, device: str = "cpu", patience: int = 1000) -> Path:
    """Train YOLO11n from scratch (``yolo11n.yaml``; no pretrained weights reachable) on NEU-DET.

    ``hours`` caps wall time (Ultralytics' ``time=``), re-fitting the LR schedule to the
    budget and keeping ``best.pt``. Returns the run folder. The reproducible command is
    in ``weights/README.md``::

        nice -n 10 nohup python -m core.models.neu train data/neu-yolo/data.yaml --imgsz 224 --hours 1.55 \\
            > data/runs/neu_train.log 2>&1 &
    """
    from core.platform import offline
    offline.prepare()
    from ultralytics import YOLO  # heavy import: only here

    model = YOLO("yolo11n.yaml")  # architecture only: random init, no download
    kw = dict(data=str(data_yaml), imgsz=imgsz, epochs=epochs, batch=batch, workers=workers,
              device=device, project=str(Path(out).resolve()), name=name, exist_ok=True,
              patience=patience, pretrained=False, plots=False,
              amp=False,  # the AMP self-check downloads yolo26n.pt; nano model is loader-bound anyway
              cache="ram", seed=0, deterministic=False, verbose=True,
              # grayscale steel: colour jitter in hue/saturation teaches nothing
              hsv_h=0.0, hsv_s=0.0, fliplr=0.5, flipud=0.5)
    if hours:
        kw["time"] = hours
    model.train(**kw)
    return Path(out).resolve() / name


def finalize(run_dir: str | Path, neu_dir: str | Path | None = None,
             stem: str = "defect_yolo11n") -> dict:
    """Ship a finished NEU run: strip the optimizer from ``best.pt``, export ONNX at the
    training size, evaluate on the 361 val images, copy both into ``weights/`` with the
    manifest entry (:func:`core.models.training.ship_weights`) and register them (task ``defect``)."""
    import json
    import tempfile

    from core.platform import offline
    from core.qa.defects import evaluate
    from core.models.manager import Registry
    from core.platform.paths import Paths
    from core.platform.storage import Database
    from core.models.training import ship_weights
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
    model = YOLO(str(best))
    imgsz = int((model.overrides or {}).get("imgsz") or 224)
    onnx = Path(model.export(format="onnx", imgsz=imgsz, dynamic=False, simplify=False, device="cpu"))
    metrics = evaluate(best, neu_dir, paths.cache, imgsz=imgsz)
    epochs = sum(1 for _ in open(run_dir / "results.csv")) - 1 if (run_dir / "results.csv").exists() else None
    metrics.update({"imgsz": imgsz, "epochs": epochs, "trained_on": "NEU-DET splits/train.txt (1,439 images)",
                    "device": "cpu", "from_scratch": True})
    shipped = ship_weights(best, onnx, stem, "defect", metrics, paths)
    reg = Registry(Database(), paths)
    reg.sync_bundled()
    LOG.info("shipped %s: %s", shipped, json.dumps(metrics))
    return {"files": shipped, "metrics": metrics}


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
    f = sub.add_parser("finalize", help="strip, export ONNX, evaluate, ship to weights/ and register")
    f.add_argument("run_dir")
    f.add_argument("--neu", default=None, help="NEU-DET folder (default: ../shared/datasets/neu-det)")
    a = ap.parse_args(argv)
    log.setup()
    if a.cmd == "finalize":
        import json
        print(json.dumps(finalize(a.run_dir, a.neu)))
        return 0
    if a.cmd == "convert":
        r = convert(a.src, a.out)
        print({"images": r.images, "boxes": r.boxes, "skipped": r.skipped})
    else:
        print(train(a.data_yaml, out=a.out, name=a.name, imgsz=a.imgsz, epochs=a.epochs, hours=a.hours,
                    batch=a.batch, workers=a.workers, device=a.device))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(_main())
