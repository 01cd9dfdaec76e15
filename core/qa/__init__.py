"""Quality assurance on captured sheets: defect locating, segmentation, measurement in
millimetres and camera calibration.

Modules: ``defects`` (tiled YOLO locator, analysis, gallery queries), ``segment`` (SAM 2 or
model-free masks), ``measure`` (sub-pixel top-sheet outline), ``calibration``.
"""
from __future__ import annotations

_EXPORTS = {
    "Locator": ".defects",
    "Defect": ".defects",
    "Analysis": ".defects",
    "analyse_image": ".defects",
    "analyse_capture": ".defects",
    "load_image": ".defects",
    "BadImage": ".defects",
    "SheetScale": ".defects",
    "find_sheet": ".defects",
    "ModelFreeSegmenter": ".segment",
    "Sam2Segmenter": ".segment",
    "MaskResult": ".segment",
    "load_segmenter": ".segment",
    "mask_iou": ".segment",
    "Measurement": ".measure",
    "measure_sheet": ".measure",
    "measure_pixels": ".measure",
    "MeasureError": ".measure",
}

def __getattr__(name: str):  # PEP 562: names load on first use, so importing the package stays cheap
    if name in _EXPORTS:
        import importlib
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
