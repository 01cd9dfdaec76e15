"""Models: the YOLO runner, the registry of versions, the model manager that swaps YOLO
and SAM 2 in and out, offline training and the NEU-DET conversion.

Modules: ``manager`` (YoloRunner, Registry, ModelManager), ``training``, ``neu``.
"""
from __future__ import annotations

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

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
