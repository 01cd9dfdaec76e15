"""Models: the YOLO runner, the registry of versions, the model manager that swaps YOLO
and SAM 2 in and out, offline training and the NEU-DET conversion.

Modules: ``manager`` (YoloRunner, Registry, ModelManager), ``training``, ``neu``.
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

_EXPORTS = {
    "YoloRunner": ".manager",
    "Registry": ".manager",
    "ModelManager": ".manager",
    "ModelVersion": ".manager",
    "ModelError": ".manager",
    "Box": ".manager",
    "DictModelCache": ".manager",
    "load_sheet_detect_fn": ".manager",
    "unload_model": ".manager",
    "train_detect": ".training",
    "check_dataset": ".training",
    "DatasetError": ".training",
    "TrainError": ".training",
    "NEU_CLASSES": ".neu",
    "convert": ".neu",
    "default_neu_dir": ".neu",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use
__all__ = sorted(_EXPORTS)
