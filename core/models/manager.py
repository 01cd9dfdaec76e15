"""Models: the YOLO inference wrapper, the versioned model registry and the model manager.

Three stages, each its own class:

* :class:`YoloRunner` — the ONE inference wrapper for YOLO detectors. Loads ``.pt``
  (Ultralytics / PyTorch) or ``.onnx`` (ONNX Runtime, its own letterbox + NMS, which is
  about twice as fast on a CPU box). ``predict(image_bgr) -> list[Box]``.
* :class:`Registry` — every model file with name, task, version, SHA-256, metrics, source,
  created time; one active version per task; activate / roll back; uploads validated before
  they are registered; a file whose SHA-256 changed is refused.
  Tasks: ``sheet`` (metal_sheet detector), ``defect`` (NEU-DET locator), ``sam2`` (segmenter).
* :class:`ModelManager` — what is loaded, with explicit eviction. ``counting`` mode holds
  only the sheet detector; ``analysis`` mode holds the defect locator and the segmenter
  (SAM 2 when a checkpoint exists). Swapping drops references, runs ``gc``, trims the heap
  and empties the CUDA cache, so the memory really goes back.

Example:
    >>> from core.platform.paths import Paths
    >>> from core.platform.storage import Database
    >>> mm = ModelManager(Database("sqlite://"), Paths.from_env())
    >>> mm.mode
    'counting'
    >>> det = mm.sheet_detector()          # YoloRunner of the active `sheet` model, or None
    >>> mm.enter_analysis(); mm.resident()  # the sheet detector is gone
    []
    >>> mm.close()
"""
from __future__ import annotations

import argparse
import builtins  # Registry.list shadows the builtin inside the class
import ctypes
import gc
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional, Protocol

import numpy as np
from sqlalchemy import select

from core.platform.log import get
from core.platform.paths import Paths
from core.platform.storage import Database, ModelVersionRow, utcnow

log = get("models")

TASKS = ("sheet", "defect", "sam2")
SOURCES = ("trained", "uploaded", "bundled")
MANIFEST = "manifest.json"


class ModelError(ValueError):
    """A model problem with one clear, user-facing message (bad file, wrong task, hash mismatch)."""


# ----------------------------------------------------------------------------------------
# Inference wrapper
# ----------------------------------------------------------------------------------------
@dataclass
class Box:
    """One detection in source-image pixels.

    >>> b = Box(10, 20, 110, 70, 0.9, 0, "metal_sheet")
    >>> b.w, b.h, b.area
    (100.0, 50.0, 5000.0)
    >>> b[4], tuple(b[:4])                  # reads as (x1, y1, x2, y2, conf) too
    (0.9, (10, 20, 110, 70))
    """
    x1: float
    y1: float
    x2: float
    y2: float
    conf: float
    cls: int
    name: str

    @property
    def w(self) -> float:
        return float(self.x2 - self.x1)

    @property
    def h(self) -> float:
        return float(self.y2 - self.y1)

    @property
    def area(self) -> float:
        return max(0.0, self.w) * max(0.0, self.h)

    @property
    def xyxy(self) -> list[float]:
        return [float(self.x1), float(self.y1), float(self.x2), float(self.y2)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # a Box also reads as the tuple (x1, y1, x2, y2, conf) that core.counting.engine's
    # DetectorVerifier expects from a detect_fn
    def __getitem__(self, i: Any) -> Any:
        return (self.x1, self.y1, self.x2, self.y2, self.conf)[i]

    def __len__(self) -> int:
        return 5

    def __iter__(self) -> Any:
        return iter((self.x1, self.y1, self.x2, self.y2, self.conf))


def _letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio and pad to ``size``×``size`` with grey 114 (as
    Ultralytics trains), so ONNX inference sees what training saw."""
    import cv2
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (nw, nh) != (w, h):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (size - nw) / 2, (size - nh) / 2
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    return out, r, (left, top)


def _parse_names(raw: Any) -> dict[int, str]:
    if isinstance(raw, dict):
        return {int(k): str(v) for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        return {i: str(v) for i, v in enumerate(raw)}
    return {}


class YoloRunner:
    """Run a YOLO detector on BGR images; ``.pt`` through Ultralytics, ``.onnx`` through
    ONNX Runtime (preferred when an ``.onnx`` sibling exists, it is faster on CPU).

    Example:
        >>> import numpy as np
        >>> runner = YoloRunner.load("weights/metal_sheet.pt")     # picks metal_sheet.onnx
        >>> boxes = runner.predict(np.zeros((240, 320, 3), np.uint8), conf=0.5)
        >>> runner.names, runner.backend, boxes
        ({0: 'metal_sheet'}, 'onnx', [])
        >>> runner.unload()
    """

    def __init__(self, path: Path, backend: str, names: dict[int, str], task: str, imgsz: int,
                 model: Any = None, session: Any = None, device: str = "cpu"):
        self.path = Path(path)
        self.backend = backend          # "onnx" | "torch"
        self.names = names
        self.task = task
        self.imgsz = int(imgsz)
        self.device = device
        self._model = model
        self._session = session
        self._lock = threading.Lock()  # one predict at a time per runner (ORT/torch are not re-entrant-safe here)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path, imgsz: Optional[int] = None, prefer_onnx: bool = True,
             device: Optional[str] = None) -> "YoloRunner":
        """Load a detector. ``path`` is a ``.pt`` or ``.onnx``; with ``prefer_onnx`` a
        ``.pt`` whose ``.onnx`` sibling exists runs on ONNX Runtime (on a CUDA box the
        PyTorch model on the GPU is used instead). Raises :class:`ModelError`."""
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model file not found: {path}")
        dev = device or _default_device()
        onnx = path if path.suffix == ".onnx" else path.with_suffix(".onnx")
        if path.suffix == ".onnx" or (prefer_onnx and dev == "cpu" and onnx.exists() and _has_ort()):
            try:
                return cls._load_onnx(onnx, imgsz)
            except ModelError:
                if path.suffix == ".onnx":
                    raise
                log.warning("ONNX sibling %s unusable; falling back to PyTorch", onnx.name)
        if path.suffix != ".pt":
            raise ModelError(f"unsupported model file type '{path.suffix}' (use .pt or .onnx): {path.name}")
        model = load_ultralytics(path)
        imgsz = int(imgsz or (model.overrides or {}).get("imgsz") or 640)
        if dev != "cpu":
            try:
                model.to(dev)
            except Exception as e:  # no usable GPU after all: stay on CPU
                log.warning("could not move %s to %s: %s", path.name, dev, e)
                dev = "cpu"
        return cls(path, "torch", _parse_names(model.names), model.task, imgsz, model=model, device=dev)

    @classmethod
    def _load_onnx(cls, path: Path, imgsz: Optional[int]) -> "YoloRunner":
        import ast

        import onnxruntime as ort
        opts = ort.SessionOptions()
        # the counting loop shares the CPU with decoding and the UI: on a small box one thread
        # is fastest (measured on 2 busy cores: 1 thread 19.5 ms, 2 threads 36 ms per 320² frame)
        cpus = os.cpu_count() or 1
        opts.intra_op_num_threads = int(os.environ.get("MSM_ORT_THREADS") or (1 if cpus <= 4 else min(4, cpus // 2)))
        opts.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ModelError(f"{path.name} is not a loadable ONNX model: {e}") from None
        meta = sess.get_modelmeta().custom_metadata_map
        task = meta.get("task", "detect")
        try:
            names = _parse_names(ast.literal_eval(meta.get("names", "{}")))
            size = ast.literal_eval(meta.get("imgsz", "[640, 640]"))
        except (ValueError, SyntaxError):
            names, size = {}, [640, 640]
        shape = sess.get_inputs()[0].shape
        fixed = shape[2] if isinstance(shape[2], int) else None
        # a static export only accepts its own size; a dynamic one takes the requested size
        size_i = int(fixed or imgsz or (size[0] if isinstance(size, (list, tuple)) else size))
        return cls(path, "onnx", names, task, size_i, session=sess)

    # -- inference -----------------------------------------------------------------------
    def predict(self, image_bgr: np.ndarray, conf: float = 0.25, imgsz: Optional[int] = None,
                iou: float = 0.5, max_det: int = 100) -> list[Box]:
        """Detect objects in one BGR image; boxes in that image's pixels, best first."""
        if image_bgr is None or getattr(image_bgr, "ndim", 0) not in (2, 3):
            raise ModelError("predict needs an image (H×W×3 BGR array)")
        if image_bgr.ndim == 2:
            import cv2
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        if self._session is None and self._model is None:
            raise ModelError(f"model {self.path.name} was unloaded")
        with self._lock:
            if self.backend == "onnx":
                return self._predict_onnx(image_bgr, conf, iou, max_det)
            return self._predict_torch(image_bgr, conf, imgsz or self.imgsz, iou, max_det)

    def _predict_torch(self, img: np.ndarray, conf: float, imgsz: int, iou: float, max_det: int) -> list[Box]:
        res = self._model.predict(img, conf=conf, iou=iou, imgsz=imgsz, max_det=max_det,
                                  verbose=False, device=self.device)[0]
        out: list[Box] = []
        if res.boxes is None:
            return out
        xyxy = res.boxes.xyxy.cpu().numpy()
        cf = res.boxes.conf.cpu().numpy()
        cl = res.boxes.cls.cpu().numpy().astype(int)
        for b, c, k in zip(xyxy, cf, cl):
            out.append(Box(float(b[0]), float(b[1]), float(b[2]), float(b[3]), float(c), int(k),
                           self.names.get(int(k), str(k))))
        out.sort(key=lambda b: -b.conf)
        return out

    def _predict_onnx(self, img: np.ndarray, conf: float, iou: float, max_det: int) -> list[Box]:
        import cv2
        h0, w0 = img.shape[:2]
        lb, r, (px, py) = _letterbox(img, self.imgsz)
        x = np.ascontiguousarray(lb[:, :, ::-1].transpose(2, 0, 1), dtype=np.float32)[None] / 255.0
        inp = self._session.get_inputs()[0].name
        pred = self._session.run(None, {inp: x})[0][0]         # (4 + nc, N): cx, cy, w, h, scores…
        scores = pred[4:]
        cls = scores.argmax(0)
        cf = scores[cls, np.arange(scores.shape[1])]
        keep = cf >= conf
        if not keep.any():
            return []
        cxcywh, cls, cf = pred[:4, keep].T, cls[keep], cf[keep]
        xywh = np.stack([cxcywh[:, 0] - cxcywh[:, 2] / 2, cxcywh[:, 1] - cxcywh[:, 3] / 2,
                         cxcywh[:, 2], cxcywh[:, 3]], 1)
        idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), cf.tolist(), cls.tolist(), conf, iou)
        idx = np.array(idx).reshape(-1)[:max_det]
        out: list[Box] = []
        for i in idx:
            x1 = (xywh[i, 0] - px) / r
            y1 = (xywh[i, 1] - py) / r
            x2 = x1 + xywh[i, 2] / r
            y2 = y1 + xywh[i, 3] / r
            k = int(cls[i])
            out.append(Box(float(np.clip(x1, 0, w0)), float(np.clip(y1, 0, h0)), float(np.clip(x2, 0, w0)),
                           float(np.clip(y2, 0, h0)), float(cf[i]), k, self.names.get(k, str(k))))
        out.sort(key=lambda b: -b.conf)
        return out

    def unload(self) -> None:
        """Drop the model so its memory can be returned."""
        with self._lock:
            self._model = None
            self._session = None

    @property
    def loaded(self) -> bool:
        return self._model is not None or self._session is not None

    def __repr__(self) -> str:
        return f"YoloRunner({self.path.name}, backend={self.backend}, task={self.task}, imgsz={self.imgsz})"


def _has_ort() -> bool:
    try:
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


def _default_device() -> str:
    """CUDA when the box has a GPU (the Jetson), else CPU. Does not import torch just to ask."""
    if os.environ.get("MSM_DEVICE"):
        return os.environ["MSM_DEVICE"]
    try:
        import torch
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def load_ultralytics(path: Path) -> Any:
    """``ultralytics.YOLO(path)`` offline, with one clear :class:`ModelError` for a file
    that is corrupt, truncated or not an Ultralytics model."""
    from core.platform import offline
    offline.prepare()
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.stat().st_size < 1024:
        raise ModelError(f"{path.name} is not a model file (only {path.stat().st_size} bytes)")
    try:
        from ultralytics import YOLO
        model = YOLO(str(path))
        _ = model.task, model.names
    except ModelError:
        raise
    except Exception as e:  # torch.load / pickle / zip errors: the file is not a usable model
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        msg = msg.split(" — ", 1)[-1].split(" (", 1)[0][:160]   # Ultralytics' "ERROR ❌ path is … — why (detail)"
        raise ModelError(f"{path.name} is not a loadable Ultralytics model (corrupt or wrong format): {msg}") from None
    return model


# ----------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------
@dataclass
class ModelVersion:
    """One registered model file."""
    id: int
    name: str
    task: str
    version: str
    path: Path                  # absolute
    stored_path: str            # as stored: relative to weights/ when inside it
    sha256: str
    metrics: dict[str, Any]
    source: str
    active: bool
    created_at: Optional[datetime] = None

    def to_json(self) -> dict[str, Any]:
        """The ``models list`` shape (exact keys)."""
        return {"name": self.name, "task": self.task, "version": self.version, "sha256": self.sha256,
                "active": self.active, "path": str(self.path), "metrics": self.metrics or {}}


@dataclass
class UploadCheck:
    """What :meth:`Registry.validate_upload` found in an acceptable file."""
    task: str
    model_task: str
    names: dict[int, str] = field(default_factory=dict)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(chunk), b""):
            h.update(b)
    return h.hexdigest()


class Registry:
    """Versioned model files in the database, one active version per task.

    Example:
        >>> reg = Registry(db, paths)                                      # doctest: +SKIP
        >>> mv = reg.register("data/runs/detect/x/weights/best.pt", "metal_sheet", "sheet",
        ...                   metrics={"mAP50": 0.97})                    # doctest: +SKIP
        >>> reg.activate("sheet", mv.version)                              # doctest: +SKIP
        >>> reg.rollback("sheet")            # back to the version before it  # doctest: +SKIP

    (``tests/test_models.py`` runs these steps on a real database.)
    """

    def __init__(self, db: Database, paths: Paths):
        self.db = db
        self.paths = paths
        self._sha_cache: dict[tuple[str, int, int], str] = {}   # (path, size, mtime) → sha, rehash on change

    # -- paths and hashes ----------------------------------------------------------------
    def _stored(self, path: Path) -> str:
        p = Path(path).resolve()
        w = self.paths.weights.resolve()
        return str(p.relative_to(w)) if w in p.parents else str(p)

    def _abs(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.paths.weights / p

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
        if key not in self._sha_cache:
            self._sha_cache[key] = sha256_file(path)
        return self._sha_cache[key]

    def _mv(self, r: ModelVersionRow) -> ModelVersion:
        return ModelVersion(id=r.id, name=r.name, task=r.task, version=r.version, path=self._abs(r.path),
                            stored_path=r.path, sha256=r.sha256, metrics=r.metrics or {}, source=r.source,
                            active=bool(r.active), created_at=r.created_at)

    # -- queries -------------------------------------------------------------------------
    def list(self, task: Optional[str] = None) -> list[ModelVersion]:
        with self.db.session() as s:
            q = select(ModelVersionRow).order_by(ModelVersionRow.task, ModelVersionRow.id)
            if task:
                q = q.where(ModelVersionRow.task == task)
            return [self._mv(r) for r in s.scalars(q)]

    def get(self, task: str, version: str) -> Optional[ModelVersion]:
        with self.db.session() as s:
            r = s.scalars(select(ModelVersionRow).where(ModelVersionRow.task == task,
                                                        ModelVersionRow.version == version)).first()
            return self._mv(r) if r else None

    def active(self, task: str, verify: bool = True) -> Optional[ModelVersion]:
        """The active version of ``task`` (None when there is none). With ``verify`` the
        file must exist and still have its registered SHA-256, else :class:`ModelError`."""
        _check_task(task)
        with self.db.session() as s:
            r = s.scalars(select(ModelVersionRow).where(ModelVersionRow.task == task,
                                                        ModelVersionRow.active.is_(True))).first()
            mv = self._mv(r) if r else None
        if mv is not None and verify:
            self.verify(mv)
        return mv

    def verify(self, mv: ModelVersion) -> None:
        if not mv.path.exists():
            raise ModelError(f"model {mv.name} {mv.version} ({mv.task}) is missing: {mv.path}")
        actual = self.sha256(mv.path)
        if actual != mv.sha256:
            raise ModelError(f"model {mv.name} {mv.version} ({mv.task}) refused: the file's SHA-256 "
                             f"{actual[:12]}… no longer matches the registered {mv.sha256[:12]}… — "
                             f"the file was changed or replaced; register it again")

    # -- changes -------------------------------------------------------------------------
    def register(self, path: str | Path, name: str, task: str, version: Optional[str] = None,
                 metrics: Optional[dict[str, Any]] = None, source: str = "trained",
                 activate: Optional[bool] = None) -> ModelVersion:
        """Record a model file (no copy). The first version of a task becomes active;
        ``activate=True`` forces it. Re-registering the same file and version is a no-op."""
        _check_task(task)
        if source not in SOURCES:
            raise ModelError(f"source must be one of {', '.join(SOURCES)}, not '{source}'")
        p = Path(path).resolve()
        if not p.is_file():
            raise ModelError(f"model file not found: {path}")
        sha = self.sha256(p)
        metrics = dict(metrics or {})
        onnx = p.with_suffix(".onnx")
        if p.suffix == ".pt" and onnx.is_file():   # the faster ONNX sibling is verified too
            metrics["onnx_sha256"] = self.sha256(onnx)
        with self.db.session() as s:
            rows = list(s.scalars(select(ModelVersionRow).where(ModelVersionRow.task == task)))
            if version is None:
                taken = {r.version for r in rows}
                n = len(rows) + 1
                while f"v{n}" in taken:
                    n += 1
                version = f"v{n}"
            same = next((r for r in rows if r.version == version), None)
            if same is not None:
                if same.sha256 != sha:
                    raise ModelError(f"version {version} of task {task} already exists with another file")
                row = same
            else:
                row = ModelVersionRow(name=name, task=task, version=str(version), path=self._stored(p),
                                      sha256=sha, metrics=_plain(metrics), source=source, active=False,
                                      created_at=utcnow())
                s.add(row)
            if activate or (activate is None and not any(r.active for r in rows)):
                for r in rows:
                    r.active = False
                row.active = True
            s.flush()
            mv = self._mv(row)
        log.info("registered %s %s (%s) sha256=%s… active=%s", name, mv.version, task, sha[:12], mv.active)
        return mv

    def activate(self, task: str, version: str) -> ModelVersion:
        """Make ``version`` the active one of ``task`` (its file must verify)."""
        _check_task(task)
        mv = self.get(task, version)
        if mv is None:
            known = ", ".join(m.version for m in self.list(task)) or "none"
            raise ModelError(f"no version '{version}' for task {task} (known: {known})")
        self.verify(mv)
        with self.db.session() as s:
            for r in s.scalars(select(ModelVersionRow).where(ModelVersionRow.task == task)):
                r.active = r.version == version
        mv.active = True
        return mv

    def rollback(self, task: str) -> ModelVersion:
        """Activate the version registered before the active one."""
        versions = self.list(task)
        cur = next((m for m in versions if m.active), None)
        if cur is None:
            raise ModelError(f"task {task} has no active version to roll back from")
        older = [m for m in versions if m.id < cur.id]
        if not older:
            raise ModelError(f"{task}: {cur.version} is the oldest version; nothing to roll back to")
        return self.activate(task, older[-1].version)

    def update_metrics(self, task: str, version: str, metrics: dict[str, Any]) -> None:
        with self.db.session() as s:
            r = s.scalars(select(ModelVersionRow).where(ModelVersionRow.task == task,
                                                        ModelVersionRow.version == version)).first()
            if r is None:
                raise ModelError(f"no version '{version}' for task {task}")
            r.metrics = _plain({**(r.metrics or {}), **metrics})

    # -- uploads ---------------------------------------------------------------------------
    def validate_upload(self, path: str | Path, task: str) -> UploadCheck:
        """Refuse, with one clear message, a file that cannot serve as ``task``: not a
        ``.pt``, corrupt, not loadable by Ultralytics, or the wrong kind of model (e.g. a
        segmentation model offered as a detector)."""
        _check_task(task)
        p = Path(path)
        if not p.is_file():
            raise ModelError(f"file not found: {path}")
        if p.suffix.lower() != ".pt":
            raise ModelError(f"{p.name}: upload a PyTorch .pt file (got '{p.suffix or 'no extension'}')")
        if task == "sam2":
            return UploadCheck(task, "sam2", {}) if _is_sam2_checkpoint(p) else _raise(
                ModelError(f"{p.name} is not a SAM 2 checkpoint (no SAM 2 image-encoder weights inside)"))
        model = load_ultralytics(p)
        mtask = str(model.task)
        names = _parse_names(model.names)
        del model
        if mtask != "detect":
            kind = {"segment": "segmentation", "classify": "classification", "pose": "pose",
                    "obb": "oriented-box"}.get(mtask, mtask)
            raise ModelError(f"{p.name} is a {kind} model; the {_task_title(task)} needs a detection model")
        if not names:
            raise ModelError(f"{p.name} has no class names")
        return UploadCheck(task, mtask, names)

    def register_upload(self, path: str | Path, task: str, name: Optional[str] = None) -> ModelVersion:
        """Validate, copy into ``data/models/`` (uploads are not kept in a temp folder) and
        register as ``uploaded`` (activated only when the task has no model yet)."""
        import shutil
        check = self.validate_upload(path, task)
        p = Path(path)
        dest_dir = self.paths.data / "models" / task
        dest_dir.mkdir(parents=True, exist_ok=True)
        sha = sha256_file(p)
        dest = dest_dir / f"{Path(p.name).stem}-{sha[:8]}.pt"
        if not dest.exists():
            shutil.copyfile(p, dest)
        metrics = {"classes": list(check.names.values())} if check.names else {}
        return self.register(dest, name or Path(p.name).stem, task, metrics=metrics, source="uploaded",
                             activate=None)   # active only when the task had no model yet

    # -- bundled files ---------------------------------------------------------------------
    def manifest(self) -> dict[str, dict[str, Any]]:
        f = self.paths.weights / MANIFEST
        if not f.exists():
            return {}
        try:
            return json.loads(f.read_text()).get("files", {})
        except (ValueError, OSError) as e:
            log.warning("weights/%s unreadable: %s", MANIFEST, e)
            return {}

    def sync_bundled(self) -> builtins.list[ModelVersion]:
        """Register the files shipped in ``weights/`` (listed in ``manifest.json``) and SAM 2
        checkpoints a user dropped there (``sam2*.pt``). A refreshed bundled file (its
        SHA-256 equals the manifest's) updates its row; a file that matches neither is left
        registered with the old hash, so it is refused until someone registers it again."""
        out: builtins.list[ModelVersion] = []
        entries = dict(self.manifest())
        for f in sorted(self.paths.weights.glob("sam2*.pt")):
            entries.setdefault(f.name, {"name": f.stem, "task": "sam2", "version": f.stem})
        for fname, e in entries.items():
            p = self.paths.weights / fname
            if not p.is_file() or e.get("task") not in TASKS:
                continue
            sha = self.sha256(p)
            version = str(e.get("version") or "bundled")
            existing = self.get(e["task"], version)
            if existing is not None:
                if existing.sha256 != sha and e.get("sha256") == sha:
                    metrics = dict(e.get("metrics") or {})
                    if p.with_suffix(".onnx").is_file():
                        metrics["onnx_sha256"] = self.sha256(p.with_suffix(".onnx"))
                    with self.db.session() as s:
                        r = s.get(ModelVersionRow, existing.id)
                        r.sha256, r.metrics, r.path = sha, _plain(metrics), self._stored(p)
                    existing = self.get(e["task"], version)
                onnx = p.with_suffix(".onnx")
                if existing is not None and existing.sha256 == sha and onnx.is_file() and \
                        "onnx_sha256" not in existing.metrics and e.get("onnx_sha256") == self.sha256(onnx):
                    # registered before its ONNX sibling was recorded: the manifest vouches for it
                    self.update_metrics(e["task"], version, {"onnx_sha256": e["onnx_sha256"]})
                    existing = self.get(e["task"], version)
                out.append(existing)  # type: ignore[arg-type]
                continue
            try:
                out.append(self.register(p, e.get("name", p.stem), e["task"], version=version,
                                         metrics=e.get("metrics") or {}, source="bundled"))
            except ModelError as err:
                log.warning("bundled %s not registered: %s", fname, err)
        return out


def _is_sam2_checkpoint(p: Path) -> bool:
    try:
        import torch
        sd = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception:
        return False
    sd = sd.get("model", sd) if isinstance(sd, dict) else {}
    return isinstance(sd, dict) and any(str(k).startswith("image_encoder.") for k in sd)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ModelError(f"unknown task '{task}' (use one of: {', '.join(TASKS)})")


def _task_title(task: str) -> str:
    return {"sheet": "metal-sheet detector", "defect": "defect locator", "sam2": "segmenter"}[task]


def _raise(e: Exception) -> Any:
    raise e


def _plain(d: Any) -> Any:
    return json.loads(json.dumps(d, default=str))


# ----------------------------------------------------------------------------------------
# Model manager
# ----------------------------------------------------------------------------------------
class ModelCache(Protocol):
    """Where loaded models live. The app passes one backed by ``st.cache_resource``
    (one cached loader per slot, ``.clear()`` on eviction); the default is a plain dict."""

    def get(self, slot: str, key: tuple, factory: Callable[[], Any]) -> Any: ...

    def evict(self, slot: str) -> None: ...


class DictModelCache:
    """The default :class:`ModelCache`: the manager's own references only."""

    def __init__(self) -> None:
        self._d: dict[str, tuple[tuple, Any]] = {}

    def get(self, slot: str, key: tuple, factory: Callable[[], Any]) -> Any:
        hit = self._d.get(slot)
        if hit is not None and hit[0] == key:
            return hit[1]
        obj = factory()
        self._d[slot] = (key, obj)
        return obj

    def evict(self, slot: str) -> None:
        self._d.pop(slot, None)


def unload_model(obj: Any) -> None:
    """Free what a loaded model holds (``on_release`` hook for the Streamlit cache)."""
    for meth in ("unload", "close"):
        fn = getattr(obj, meth, None)
        if callable(fn):
            try:
                fn()
            except Exception as e:  # releasing must never raise into Streamlit
                log.warning("unloading %r: %s", obj, e)
            return


SLOTS = ("sheet", "defect", "segmenter")
SAM2_TINY_CFG = "configs/sam2.1/sam2.1_hiera_t.yaml"


class ModelManager:
    """Holds the loaded models and swaps them by mode.

    * ``counting`` — only the sheet detector may be resident.
    * ``analysis`` — the defect locator and the segmenter (SAM 2 when a checkpoint is
      registered or ``sam2_random_init``) may be resident; the sheet detector is evicted.

    Loading is lazy (first call of :meth:`sheet_detector` / :meth:`defect_locator` /
    :meth:`segmenter`). A missing model gives ``None`` and a log line, never an exception,
    so the product carries on with what it has; :attr:`problems` keeps the last message per slot.

    Example:
        >>> mm = ModelManager(db, paths)                                   # doctest: +SKIP
        >>> fn = mm.sheet_detect_fn()    # for core.counting.DetectorVerifier  # doctest: +SKIP
        >>> mm.enter_analysis()                                            # doctest: +SKIP
        >>> loc, seg = mm.defect_locator(), mm.segmenter()                 # doctest: +SKIP
        >>> mm.leave_analysis()                                            # doctest: +SKIP

    (``tests/test_models.py`` and ``python -m core bench models`` run this cycle.)
    """

    RECHECK_S = 2.0

    def __init__(self, db: Database, paths: Paths, cache: Optional[ModelCache] = None,
                 sam2_random_init: bool = False, sync: bool = True):
        self.db = db
        self.paths = paths
        self.registry = Registry(db, paths)
        self.cache: ModelCache = cache or DictModelCache()
        self.sam2_random_init = sam2_random_init
        self._mode = "counting"
        self._resident: dict[str, Any] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.RLock()
        self.problems: dict[str, str] = {}
        if sync:
            try:
                self.registry.sync_bundled()
            except Exception as e:  # a broken manifest must not stop the app
                log.warning("syncing bundled weights failed: %s", e)

    # -- state -----------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return self._mode

    def resident(self) -> list[str]:
        """Slots holding a loaded model right now (``sheet``, ``defect``, ``segmenter``)."""
        with self._lock:
            return [s for s in SLOTS if s in self._resident]

    def resident_detail(self) -> dict[str, str]:
        with self._lock:
            return {s: getattr(o, "name", None) or repr(o) for s, o in self._resident.items()}

    def memory(self) -> dict[str, Any]:
        """Process RSS and (on a GPU) CUDA memory, in MB, plus what is resident."""
        import psutil
        out: dict[str, Any] = {"mode": self._mode, "resident": self.resident(),
                               "rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            out["cuda_allocated_mb"] = round(torch.cuda.memory_allocated() / 2**20, 1)
            out["cuda_reserved_mb"] = round(torch.cuda.memory_reserved() / 2**20, 1)
        return out

    # -- mode switches -----------------------------------------------------------------------
    def enter_analysis(self, preload: bool = False) -> None:
        """Evict the sheet detector; the defect locator and segmenter may load.
        (The page pauses counting first: ``c.worker.pause_for_analysis()``.)"""
        with self._lock:
            self._evict("sheet")
            self._mode = "analysis"
            self._release_memory()
        if preload:
            self.defect_locator()
            self.segmenter()

    def leave_analysis(self, preload: bool = False) -> None:
        """Evict SAM 2 and the defect locator; back to counting mode."""
        with self._lock:
            self._evict("segmenter")
            self._evict("defect")
            self._mode = "counting"
            self._release_memory()
        if preload:
            self.sheet_detector()

    def evict_all(self) -> None:
        with self._lock:
            for s in SLOTS:
                self._evict(s)
            self._release_memory()

    def close(self) -> None:
        self.evict_all()

    def _evict(self, slot: str) -> None:
        self._checked.pop(slot, None)
        obj = self._resident.pop(slot, None)
        if obj is not None:
            log.info("evicting %s (%s)", slot, getattr(obj, "name", repr(obj)))
            unload_model(obj)
        self.cache.evict(slot)
        del obj

    @staticmethod
    def _release_memory() -> None:
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        try:  # glibc keeps freed heap pages; hand them back so RSS shows the truth
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass

    # -- loaders -------------------------------------------------------------------------------
    def _prefer_onnx(self) -> bool:
        try:
            return bool(self.db.load_settings().models.prefer_onnx)
        except Exception:
            return True

    def _yolo(self, slot: str, task: str) -> Optional[YoloRunner]:
        with self._lock:
            cur = self._resident.get(slot)
            # the counting loop asks per verification: re-check the registry (a DB query and
            # a stat) at most every RECHECK_S, so an activation still applies within seconds
            if cur is not None and cur.loaded and time.monotonic() - self._checked.get(slot, 0.0) < self.RECHECK_S:
                return cur
            self._checked[slot] = time.monotonic()
            try:
                mv = self.registry.active(task)
            except ModelError as e:
                self._note(slot, str(e))
                self._evict(slot)
                return None
            if mv is None:
                self._note(slot, f"no {_task_title(task)} registered; put one in weights/ or train one")
                return None
            prefer, downgraded = self._prefer_onnx(), False
            onnx = mv.path.with_suffix(".onnx")
            if prefer and mv.path.suffix == ".pt" and onnx.is_file() and \
                    self.registry.sha256(onnx) != mv.metrics.get("onnx_sha256"):
                # an ONNX file we never registered (or one changed since) is not trusted
                self._note(slot, f"{onnx.name} does not match the registered model; using {mv.path.name}")
                prefer, downgraded = False, True
            key = (str(mv.path), mv.sha256, prefer)
            cur = self._resident.get(slot)
            if cur is not None and getattr(cur, "_key", None) == key and cur.loaded:
                return cur
            if cur is not None:
                self._evict(slot)
            try:
                runner = self.cache.get(slot, key, lambda: YoloRunner.load(mv.path, prefer_onnx=prefer))
            except ModelError as e:
                self._note(slot, str(e))
                return None
            runner._key = key
            runner.version = mv.version
            self._resident[slot] = runner
            if not downgraded:
                self.problems.pop(slot, None)
            return runner

    def _note(self, slot: str, msg: str) -> None:
        if self.problems.get(slot) != msg:
            log.warning("%s: %s", slot, msg)
        self.problems[slot] = msg

    def sheet_detector(self) -> Optional[YoloRunner]:
        """The active ``sheet`` detector, or None (no model, or analysis mode)."""
        if self._mode != "counting":
            return None
        return self._yolo("sheet", "sheet")

    def defect_locator(self) -> Optional[YoloRunner]:
        """The active ``defect`` locator (enters analysis mode when needed), or None."""
        if self._mode != "analysis":
            self.enter_analysis()
        return self._yolo("defect", "defect")

    def sam2_checkpoint(self) -> Optional[Path]:
        try:
            mv = self.registry.active("sam2")
        except ModelError as e:
            self._note("segmenter", str(e))
            return None
        return mv.path if mv else None

    def segmenter(self) -> Any:
        """SAM 2 when a checkpoint is registered (or ``sam2_random_init``), else the
        model-free segmenter; both from :func:`core.qa.segment.load_segmenter`. None when no
        segmenter can be built. Enters analysis mode when needed."""
        if self._mode != "analysis":
            self.enter_analysis()
        with self._lock:
            ckpt = self.sam2_checkpoint()
            key = (str(ckpt) if ckpt else None, bool(self.sam2_random_init))
            cur = self._resident.get("segmenter")
            if cur is not None and getattr(cur, "_msm_key", None) == key:
                return cur
            if cur is not None:
                self._evict("segmenter")
            try:
                seg = self.cache.get("segmenter", key, lambda: _load_segmenter(ckpt, self.sam2_random_init))
            except Exception as e:
                self._note("segmenter", f"segmenter could not be loaded: {e}")
                return None
            if seg is None:
                return None
            try:
                seg._msm_key = key
            except AttributeError:
                pass
            self._resident["segmenter"] = seg
            return seg

    # -- counting adapter ----------------------------------------------------------------------
    def sheet_detect_fn(self, conf: Optional[float] = None) -> Optional[Callable[[np.ndarray], list[Box]]]:
        """A ``detect_fn(frame_bgr) -> list[Box]`` for ``core.counting.engine.DetectorVerifier``,
        backed by the active sheet model; None when no sheet model is usable. The function
        asks the manager on every call, so evicting the detector really frees it."""
        if self.sheet_detector() is None:
            return None
        return SheetDetectFn(self, conf)


class SheetDetectFn:
    """Callable adapter: frame → ``metal_sheet`` boxes from the manager's sheet detector.
    Returns [] while the detector is evicted (analysis mode: counting is paused anyway)."""

    def __init__(self, manager: ModelManager, conf: Optional[float] = None):
        self.manager = manager
        self.conf = conf

    def __call__(self, frame_bgr: np.ndarray) -> list[Box]:
        det = self.manager.sheet_detector()
        if det is None:
            return []
        conf = self.conf if self.conf is not None else 0.05  # the verifier applies its own min_conf
        boxes = det.predict(frame_bgr, conf=conf)
        if "metal_sheet" in det.names.values():  # a multi-class model: keep only sheets
            boxes = [b for b in boxes if b.name == "metal_sheet"]
        return boxes


class _StandaloneSheetDetect:
    """``detect_fn`` for code that has no :class:`ModelManager` (CLI, bench): loads the
    active sheet model once."""

    def __init__(self, runner: YoloRunner):
        self.runner = runner

    def __call__(self, frame_bgr: np.ndarray) -> list[Box]:
        boxes = self.runner.predict(frame_bgr, conf=0.05)
        if "metal_sheet" in self.runner.names.values():
            boxes = [b for b in boxes if b.name == "metal_sheet"]
        return boxes

    def unload(self) -> None:
        self.runner.unload()


def load_sheet_detect_fn(paths: Optional[Paths] = None, manager: Optional[ModelManager] = None,
                         prefer_onnx: bool = True) -> Optional[Callable[[np.ndarray], list[Box]]]:
    """A ``detect_fn(frame_bgr) -> list[Box]`` of ``metal_sheet`` boxes (conf ≥ 0.05; the
    verifier applies ``settings.counting.sheet_confidence``) for
    ``core.counting.engine.DetectorVerifier``. With a ``manager`` (the app) the detector stays
    evictable; without one (CLI, bench) the active registry model — else
    ``weights/metal_sheet.pt`` — is loaded once. None when there is no usable model.

    >>> fn = load_sheet_detect_fn()            # doctest: +SKIP
    >>> [b.name for b in fn(frame)]            # doctest: +SKIP
    ['metal_sheet']
    """
    if manager is not None:
        return manager.sheet_detect_fn()
    paths = paths or Paths.from_env()
    path: Optional[Path] = None
    try:
        from core.platform.storage import default_url
        mv = Registry(Database(default_url(paths)), paths).active("sheet")
        path = mv.path if mv else None
    except ModelError as e:
        log.warning("sheet detector refused: %s", e)
        return None
    except Exception as e:  # no database here: fall back to the shipped file
        log.debug("registry unavailable: %s", e)
    if path is None and (paths.weights / "metal_sheet.pt").exists():
        path = paths.weights / "metal_sheet.pt"
    if path is None:
        return None
    try:
        return _StandaloneSheetDetect(YoloRunner.load(path, prefer_onnx=prefer_onnx))
    except ModelError as e:
        log.warning("sheet detector unusable: %s", e)
        return None


def _load_segmenter(ckpt: Optional[Path], random_init: bool) -> Any:
    from core.qa.segment import load_segmenter
    return load_segmenter(str(ckpt) if ckpt else None, random_init=random_init)


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------
def _ctx() -> tuple[Database, Paths]:
    paths = Paths.from_env().ensure()
    return Database(), paths


def _fail(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def cli_list(argv: list[str]) -> int:
    """``python -m core models list [--task T]`` — JSON list of registered versions."""
    ap = argparse.ArgumentParser(prog="python -m core models list", description="registered model versions")
    ap.add_argument("--task", choices=TASKS)
    a = ap.parse_args(argv)
    db, paths = _ctx()
    reg = Registry(db, paths)
    reg.sync_bundled()
    print(json.dumps([m.to_json() for m in reg.list(a.task)], indent=2))
    return 0


def cli_activate(argv: list[str]) -> int:
    """``python -m core models activate --task sheet --version v2`` (or ``--rollback``)."""
    ap = argparse.ArgumentParser(prog="python -m core models activate", description="activate a model version")
    ap.add_argument("--task", required=True, choices=TASKS)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--version")
    g.add_argument("--rollback", action="store_true", help="activate the version before the active one")
    a = ap.parse_args(argv)
    db, paths = _ctx()
    reg = Registry(db, paths)
    reg.sync_bundled()
    try:
        mv = reg.rollback(a.task) if a.rollback else reg.activate(a.task, a.version)
    except ModelError as e:
        return _fail(str(e))
    print(json.dumps(mv.to_json(), indent=2))
    return 0


def cli_register(argv: list[str]) -> int:
    """``python -m core models register PATH --task sheet [--name N] [--version V] [--activate]``
    — validates the file like an upload, then registers it."""
    ap = argparse.ArgumentParser(prog="python -m core models register", description="register a model file")
    ap.add_argument("path")
    ap.add_argument("--task", required=True, choices=TASKS)
    ap.add_argument("--name")
    ap.add_argument("--version")
    ap.add_argument("--metrics", help="JSON object of metrics", default="{}")
    ap.add_argument("--source", choices=SOURCES, default="uploaded")
    ap.add_argument("--activate", action="store_true")
    a = ap.parse_args(argv)
    try:
        metrics = json.loads(a.metrics)
        if not isinstance(metrics, dict):
            raise ValueError
    except ValueError:
        return _fail("--metrics must be a JSON object, e.g. '{\"mAP50\": 0.9}'")
    db, paths = _ctx()
    reg = Registry(db, paths)
    try:
        check = reg.validate_upload(a.path, a.task)
        if check.names:
            metrics.setdefault("classes", list(check.names.values()))
        mv = reg.register(a.path, a.name or Path(a.path).stem, a.task, version=a.version, metrics=metrics,
                          source=a.source, activate=True if a.activate else None)
    except ModelError as e:
        return _fail(str(e))
    print(json.dumps(mv.to_json(), indent=2))
    return 0
