"""Training: YOLO detectors trained offline from a YOLO-format dataset, registered on success.

Stages: **dataset** (check a data.yaml folder — e.g. a Roboflow export — or render the
project's synthetic scenes) → **train** (Ultralytics, offline, runs under ``data/runs/``)
→ **export** (ONNX next to ``best.pt``) → **evaluate** (mAP50 on the dataset's val split and,
when given, on a held-out set) → **register** (:class:`core.models.manager.Registry`) and optionally
**ship** (copy into ``weights/`` and record it in ``weights/manifest.json``).

Command line (JSON result on stdout, logs on stderr, bad input → one line, exit 2)::

    python -m core train detect --data synthetic:600 --heldout synthetic-heldout:200 \\
        --model yolo11n.yaml --epochs 30 --imgsz 320 --ship metal_sheet

Example:
    >>> from core.models.training import check_dataset
    >>> check_dataset("datasets/no-such-export")
    Traceback (most recent call last):
    ...
    core.models.training.DatasetError: dataset not found: datasets/no-such-export
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from core.platform.i18n import local_stamp  # names carrying dates use plant local time
from core.platform.log import get
from core.platform.paths import PROJECT_ROOT, Paths, slugify

log = get("training")

IMG_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


class DatasetError(ValueError):
    """A dataset that cannot be trained on, with one clear message."""


class TrainError(ValueError):
    """Bad training input (model file, options) with one clear message."""


# ----------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------
@dataclass
class DatasetInfo:
    yaml_path: Path                     # a normalised data.yaml with absolute paths
    names: dict[int, str]
    train_images: int
    val_images: int
    source: str                         # what the user gave


def _images_in(d: Path) -> list[Path]:
    return [p for p in d.rglob("*") if p.suffix.lower() in IMG_EXT]


def _labels_dir(images_dir: Path) -> Path:
    # Ultralytics' rule: the last "images" path component becomes "labels"
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return images_dir


def _resolve_split(value: Any, roots: list[Path], split: str, yaml_path: Path) -> list[Path]:
    vals = value if isinstance(value, list) else [value]
    out: list[Path] = []
    for v in vals:
        v = str(v)
        cands = [Path(v)] if Path(v).is_absolute() else []
        for r in roots:
            cands.append((r / v).resolve())
            if v.startswith("../"):       # Roboflow writes ../train/images next to data.yaml
                cands.append((r / v[3:]).resolve())
        hit = next((c for c in cands if c.exists()), None)
        if hit is None:
            raise DatasetError(f"{yaml_path.name}: the '{split}' path '{v}' does not exist "
                               f"(looked in {', '.join(str(r) for r in roots)})")
        out.append(hit)
    return out


def _count_split(dirs: list[Path], split: str, yaml_path: Path) -> int:
    n = 0
    for d in dirs:
        if d.is_file() and d.suffix == ".txt":      # a list file of image paths
            n += sum(1 for line in d.read_text().splitlines() if line.strip())
            continue
        imgs = _images_in(d)
        if not imgs:
            raise DatasetError(f"{yaml_path.name}: the '{split}' folder {d} has no images")
        lab = _labels_dir(d)
        if lab == d:
            txt = list(d.rglob("*.txt"))
        else:
            txt = list(lab.rglob("*.txt")) if lab.exists() else []
        if not txt:
            raise DatasetError(f"the '{split}' images in {d} have no labels (expected YOLO .txt files in {lab})")
        n += len(imgs)
    return n


def check_dataset(spec: str | Path, work_dir: Optional[Path] = None) -> DatasetInfo:
    """Check a YOLO dataset (a folder with ``data.yaml`` or the yaml itself) and write a
    normalised copy with absolute paths into ``work_dir`` (so Roboflow's relative paths
    work wherever the run happens). Raises :class:`DatasetError`."""
    import yaml
    p = Path(spec)
    if not p.exists():
        raise DatasetError(f"dataset not found: {spec}")
    yp = p if p.is_file() else next((p / n for n in ("data.yaml", "data.yml", "dataset.yaml") if (p / n).exists()),
                                    None)
    if yp is None:
        raise DatasetError(f"{p} has no data.yaml (a YOLO dataset folder, e.g. a Roboflow 'YOLOv8/11' export)")
    try:
        cfg = yaml.safe_load(yp.read_text()) or {}
    except (yaml.YAMLError, OSError) as e:
        raise DatasetError(f"{yp.name} is not valid YAML: {e}") from None
    if not isinstance(cfg, dict):
        raise DatasetError(f"{yp.name} must be a mapping with train, val and names")
    names_raw = cfg.get("names")
    if isinstance(names_raw, list):
        names = {i: str(n) for i, n in enumerate(names_raw)}
    elif isinstance(names_raw, dict):
        names = {int(k): str(v) for k, v in names_raw.items()}
    else:
        raise DatasetError(f"{yp.name} has no class 'names'")
    if not names:
        raise DatasetError(f"{yp.name} lists no classes")
    for split in ("train", "val"):
        if not cfg.get(split):
            raise DatasetError(f"{yp.name} has no '{split}' entry")
    roots = []
    if cfg.get("path"):
        base = Path(str(cfg["path"]))
        roots.append(base if base.is_absolute() else (yp.parent / base).resolve())
    roots.append(yp.parent.resolve())
    train = _resolve_split(cfg["train"], roots, "train", yp)
    val = _resolve_split(cfg["val"], roots, "val", yp)
    n_train = _count_split(train, "train", yp)
    n_val = _count_split(val, "val", yp)
    norm = {"train": [str(t) for t in train], "val": [str(v) for v in val], "names": names, "nc": len(names)}
    if cfg.get("test"):
        try:
            norm["test"] = [str(t) for t in _resolve_split(cfg["test"], roots, "test", yp)]
        except DatasetError:
            pass   # a missing optional test split must not block training
    out_dir = Path(work_dir) if work_dir else yp.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "data.resolved.yaml"
    out.write_text(yaml.safe_dump(norm, sort_keys=False))
    return DatasetInfo(out, names, n_train, n_val, str(spec))


def prepare_dataset(spec: str, paths: Paths, work_dir: Path) -> DatasetInfo:
    """``synthetic:N`` / ``synthetic-heldout:N`` (rendered by :mod:`core.synthetic.sheetdata`, cached
    by N and seed) or a dataset folder / data.yaml."""
    s = str(spec)
    if s.startswith(("synthetic:", "synthetic-heldout:")):
        kind, _, n = s.partition(":")
        try:
            count = int(n)
        except ValueError:
            raise DatasetError(f"'{s}': the number of images must be an integer, e.g. synthetic:600") from None
        if not 10 <= count <= 100_000:
            raise DatasetError(f"'{s}': render between 10 and 100000 images")
        from core.synthetic import sheetdata
        heldout = kind == "synthetic-heldout"
        root = paths.cache / "datasets" / f"{kind}-{count}-{sheetdata.RENDER_VERSION}"
        if not (root / "data.yaml").exists():
            log.info("rendering %d %s images into %s", count, kind, root)
            sheetdata.render_dataset(root, count, heldout=heldout)
        info = check_dataset(root, work_dir)
        info.source = s          # recorded in metrics: the recipe, not a machine's cache path
        return info
    return check_dataset(s, work_dir)


# ----------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    run_dir: str
    best_pt: str
    onnx: str
    metrics: dict[str, Any]
    epochs: int
    imgsz: int
    seconds: float
    registered: Optional[dict[str, Any]] = None
    shipped: list[str] = field(default_factory=list)


def _check_model(model: str) -> str:
    if model.endswith((".yaml", ".yml")):
        from ultralytics.cfg import get_cfg  # noqa: F401  (ensures ultralytics importable)
        from ultralytics.nn.tasks import yaml_model_load
        try:
            d = yaml_model_load(model)
        except Exception as e:
            raise TrainError(f"model config '{model}' not found or invalid: {e}") from None
        if not d or "head" not in d:
            raise TrainError(f"model config '{model}' is not an Ultralytics model yaml")
        return model
    from core.models.manager import ModelError, load_ultralytics
    try:
        m = load_ultralytics(Path(model))
    except ModelError as e:
        raise TrainError(str(e)) from None
    if m.task != "detect":
        raise TrainError(f"{Path(model).name} is a {m.task} model; `train detect` needs a detection model")
    return str(Path(model).resolve())


def _device(device: Optional[str]) -> str:
    if device:
        return device
    try:
        import torch
        return "0" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last row of a run's results.csv as {mAP50, mAP50_95, precision, recall, epoch}."""
    rows = read_results(run_dir)
    if not rows:
        return {}
    last = rows[-1]
    pick = {"metrics/mAP50(B)": "mAP50", "metrics/mAP50-95(B)": "mAP50_95",
            "metrics/precision(B)": "precision", "metrics/recall(B)": "recall", "epoch": "epoch"}
    return {v: round(float(last[k]), 4) for k, v in pick.items() if k in last}


def read_results(run_dir: Path) -> list[dict[str, float]]:
    """Rows of an Ultralytics ``results.csv`` (live while training runs)."""
    f = Path(run_dir) / "results.csv"
    if not f.exists():
        return []
    out: list[dict[str, float]] = []
    try:
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    out.append({k.strip(): float(v) for k, v in row.items() if k and v not in (None, "")})
                except ValueError:
                    continue   # a row being written right now
    except OSError:
        return []
    return out


def train_detect(data: str, model: str = "yolo11n.yaml", epochs: int = 30, imgsz: int = 320,
                 batch: int = 16, workers: int = 2, device: Optional[str] = None,
                 name: Optional[str] = None, task: str = "sheet", heldout: Optional[str] = None,
                 register: bool = True, ship: Optional[str] = None, paths: Optional[Paths] = None,
                 seed: int = 0, patience: int = 100,
                 on_epoch: Optional[Callable[[int, int, dict[str, float]], None]] = None) -> TrainResult:
    """Train a YOLO detector offline; see the module docstring. Raises
    :class:`DatasetError` / :class:`TrainError` for bad input."""
    from core.platform import offline
    offline.prepare()
    paths = (paths or Paths.from_env()).ensure()
    if epochs < 1 or imgsz < 32 or batch < 1:
        raise TrainError("epochs, batch must be ≥ 1 and imgsz ≥ 32")
    from core.models.manager import TASKS, ModelError, Registry
    if task not in TASKS or task == "sam2":
        raise TrainError(f"--task must be sheet or defect, not '{task}'")
    name = slugify(name or f"{task}-{local_stamp('%Y%m%d-%H%M%S')}", 60)
    project = paths.runs / "detect"
    run_dir = project / name
    if run_dir.exists() and any(run_dir.iterdir()):
        raise TrainError(f"run '{name}' already exists in {project}; pick another --name")
    run_dir.mkdir(parents=True, exist_ok=True)
    ds = prepare_dataset(data, paths, run_dir)
    ho = prepare_dataset(heldout, paths, run_dir / "heldout") if heldout else None
    model_src = _check_model(model)

    from ultralytics import YOLO
    t0 = time.time()
    yolo = YOLO(model_src)
    if on_epoch is not None:
        def _cb(trainer: Any) -> None:
            on_epoch(int(trainer.epoch) + 1, int(trainer.epochs), {k: float(v) for k, v in (trainer.metrics or {}).items()})
        yolo.add_callback("on_fit_epoch_end", _cb)
    dev = _device(device)
    log.info("training %s on %s (%d train / %d val images), %d epochs at %d px on %s",
             model, ds.source, ds.train_images, ds.val_images, epochs, imgsz, dev)
    yolo.train(data=str(ds.yaml_path), epochs=epochs, imgsz=imgsz, batch=batch, workers=workers, device=dev,
               project=str(project), name=name, exist_ok=True, plots=False, verbose=False, seed=seed,
               patience=patience, amp=dev != "cpu", val=True, cache=False)
    best = run_dir / "weights" / "best.pt"
    if not best.exists():
        raise TrainError(f"training finished without a best.pt in {run_dir}")
    metrics: dict[str, Any] = {**final_metrics(run_dir), "epochs": epochs, "imgsz": imgsz,
                               "train_images": ds.train_images, "val_images": ds.val_images, "data": ds.source,
                               "classes": list(ds.names.values())}
    # export: ONNX Runtime is the faster CPU path (see core.models.manager.YoloRunner)
    onnx = YOLO(str(best)).export(format="onnx", imgsz=imgsz, opset=17, simplify=True, dynamic=False,
                                  verbose=False)
    if ho is not None:
        r = YOLO(str(best)).val(data=str(ho.yaml_path), imgsz=imgsz, batch=batch, workers=workers, device=dev,
                                plots=False, verbose=False, project=str(run_dir), name="heldout-val",
                                exist_ok=True)
        metrics.update(heldout_mAP50=round(float(r.box.map50), 4), heldout_mAP50_95=round(float(r.box.map), 4),
                       heldout_images=ho.val_images,
                       heldout=ho.source)
    res = TrainResult(str(run_dir), str(best), str(onnx), metrics, epochs, imgsz, round(time.time() - t0, 1))
    (run_dir / "msm_result.json").write_text(json.dumps(asdict(res), indent=2, default=str))
    reg = Registry(_db(paths), paths)
    if ship:
        res.shipped = ship_weights(best, Path(onnx), ship, task, metrics, paths)
        reg.sync_bundled()
    if register and not ship:
        try:
            mv = reg.register(best, name=f"{task}-{name}", task=task, metrics=metrics, source="trained",
                              activate=None)   # the first model of a task becomes active
            res.registered = mv.to_json()
        except ModelError as e:
            raise TrainError(str(e)) from None
    (run_dir / "msm_result.json").write_text(json.dumps(asdict(res), indent=2, default=str))
    return res


def _db(paths: Optional[Paths] = None) -> Any:
    from core.platform.storage import Database, default_url
    return Database(default_url(paths))


def ship_weights(best: Path, onnx: Path, stem: str, task: str, metrics: dict[str, Any],
                 paths: Paths) -> list[str]:
    """Copy a trained model into ``weights/<stem>.pt|.onnx`` and record it in the manifest
    (name, task, version, metrics, SHA-256) so every install registers it as ``bundled``."""
    from core.models.manager import MANIFEST, sha256_file
    stem = slugify(stem, 60).replace("-", "_")
    dst_pt, dst_onnx = paths.weights / f"{stem}.pt", paths.weights / f"{stem}.onnx"
    shutil.copyfile(best, dst_pt)
    shutil.copyfile(onnx, dst_onnx)
    mf = paths.weights / MANIFEST
    data = json.loads(mf.read_text()) if mf.exists() else {}
    files = data.setdefault("files", {})
    version = f"{stem}-{local_stamp('%Y%m%d')}"  # plant's day
    files[dst_pt.name] = {"name": stem, "task": task, "version": version, "sha256": sha256_file(dst_pt),
                          "onnx": dst_onnx.name, "onnx_sha256": sha256_file(dst_onnx),
                          "metrics": metrics, "source": "bundled"}
    mf.write_text(json.dumps(data, indent=2) + "\n")
    return [str(dst_pt), str(dst_onnx)]


# ----------------------------------------------------------------------------------------
# Background job (Models page): training in a subprocess, so cancel really stops it
# ----------------------------------------------------------------------------------------
def training_job(ctx: Any, data: str, model: str = "yolo11n.yaml", epochs: int = 10, imgsz: int = 320,
                 batch: int = 16, task: str = "sheet", name: Optional[str] = None,
                 heldout: Optional[str] = None, poll_s: float = 1.0) -> dict[str, Any]:
    """``core.platform.jobs.JobRunner`` job: runs ``python -m core train detect`` as a child process,
    reports progress and live metrics from the run's results.csv, kills the child on cancel."""
    from core.platform.jobs import JobCancelled
    paths = Paths.from_env().ensure()
    name = slugify(name or f"{task}-{ctx.job_id}", 60)
    run_dir = paths.runs / "detect" / name
    cmd = [sys.executable, "-m", "core", "train", "detect", "--data", str(data), "--model", str(model),
           "--epochs", str(int(epochs)), "--imgsz", str(int(imgsz)), "--batch", str(int(batch)),
           "--task", task, "--name", name]
    if heldout:
        cmd += ["--heldout", str(heldout)]
    logf = paths.runs / f"{name}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with open(logf, "wb") as lf, open(paths.runs / f"{name}.json", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=lf, cwd=str(PROJECT_ROOT), env=env,
                                start_new_session=True)
        try:
            while proc.poll() is None:
                rows = read_results(run_dir)
                ep = int(rows[-1]["epoch"]) if rows and "epoch" in rows[-1] else 0
                last = final_metrics(run_dir)
                ctx.progress(min(0.99, ep / max(1, epochs)), f"epoch {ep}/{epochs}",
                             extra={"run_dir": str(run_dir), "epoch": ep, "epochs": epochs, "metrics": last,
                                    "log": str(logf)})
                time.sleep(poll_s)
        except JobCancelled:
            _kill(proc)
            raise
        except BaseException:
            _kill(proc)
            raise
    if proc.returncode != 0:
        tail = _tail(logf)
        raise RuntimeError(f"training failed (exit {proc.returncode}): {tail}")
    result = json.loads((paths.runs / f"{name}.json").read_text() or "{}")
    return {"run_dir": str(run_dir), "epoch": epochs, "epochs": epochs, "metrics": result.get("metrics", {}),
            "registered": result.get("registered"), "log": str(logf)}


def _kill(proc: subprocess.Popen) -> None:
    import signal
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)   # the child and its dataloader workers
        proc.wait(10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(5)


def _tail(f: Path, n: int = 400) -> str:
    try:
        lines = [ln for ln in f.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    err = [ln for ln in lines if ln.startswith("error:")]
    return (err[-1] if err else (lines[-1] if lines else ""))[-n:]


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------
def cli_train_detect(argv: list[str]) -> int:
    """``python -m core train detect --data DATASET --model yolo11n.yaml|PATH.pt --epochs N --imgsz S``"""
    ap = argparse.ArgumentParser(prog="python -m core train detect",
                                 description="train a YOLO detector offline and register it")
    ap.add_argument("--data", required=True,
                    help="YOLO dataset folder with data.yaml (e.g. a Roboflow export), a data.yaml, or synthetic:N")
    ap.add_argument("--model", default="yolo11n.yaml", help="yolo11n.yaml (from scratch) or a .pt to fine-tune")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--device", default=None, help="cpu, 0 … (default: GPU 0 when present)")
    ap.add_argument("--task", default="sheet", choices=["sheet", "defect"])
    ap.add_argument("--name", default=None, help="run name under data/runs/detect/")
    ap.add_argument("--heldout", default=None, help="held-out set for the reported mAP50, e.g. synthetic-heldout:200")
    ap.add_argument("--ship", default=None, help="also copy to weights/<SHIP>.pt|.onnx and the manifest")
    ap.add_argument("--no-register", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--patience", type=int, default=100)
    a = ap.parse_args(argv)
    from core.platform.log import setup
    setup()
    try:
        res = train_detect(a.data, a.model, a.epochs, a.imgsz, a.batch, a.workers, a.device, a.name, a.task,
                           a.heldout, register=not a.no_register, ship=a.ship, seed=a.seed, patience=a.patience)
    except (DatasetError, TrainError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(asdict(res), indent=2, default=str))
    return 0
