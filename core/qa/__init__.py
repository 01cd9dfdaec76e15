"""Quality assurance on captured sheets: defect locating, segmentation, measurement in
millimetres and camera calibration.

Modules: ``defects`` (tiled YOLO locator, analysis, gallery queries), ``segment`` (SAM 2 or
model-free masks), ``measure`` (sub-pixel top-sheet outline), ``calibration``.
"""
from __future__ import annotations

from core.platform.lazy import lazy_exports

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
__getattr__ = lazy_exports(__name__, _EXPORTS)   # PEP 562: names load on first use
__all__ = sorted(_EXPORTS)
