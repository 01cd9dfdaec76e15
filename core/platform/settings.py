"""The one typed settings object of the product.

Settings are grouped by concern (camera, counting, models, calibration, alerts, ui,
storage). They persist in the database (table ``settings``, one JSON row per group,
with an audit trail) through :mod:`core.platform.storage`; this module only defines the shape,
defaults and validation, so it can be used from the CLI and tests with no database.

Example:
    >>> s = Settings()
    >>> s.counting.motion_sensitivity
    0.5
    >>> s2 = Settings.from_dict({"ui": {"language": "en"}})
    >>> s2.ui.language, s2.ui.timezone
    ('en', 'Asia/Jakarta')
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Optional


@dataclass
class CameraSettings:
    rtsp_url: str = ""
    width: int = 1280           # requested capture resolution (0 = as the source gives)
    height: int = 720
    fps_limit: float = 30.0     # frames per second pulled from the source at most


@dataclass
class CountingSettings:
    verifier: str = "model_free"        # model_free | auto | detector (opt-in: the sheet detector)
    motion_sensitivity: float = 0.5     # 0 (dull) … 1 (twitchy)
    sheet_confidence: float = 0.5       # detector confidence for a `metal_sheet`
    settle_s: float = 0.2               # stillness needed before a decision
    roi: Optional[list[int]] = None     # [x1, y1, x2, y2] in source pixels; None = whole frame
    mask_path: str = ""                 # optional PNG mask (white = counted area)
    cue_model: Optional[dict] = None    # a station's teach-mode fit of the cue rule; None = the default
    # frames/s the counting engine analyses while the scene is idle (nothing moving; the other
    # frames are skipped, and file counting does not even convert them); an arm cycle is analysed
    # frame by frame; 0 = every frame always. 15: a fast arm crosses the edge band in a few
    # frames, and how wide it came in is a cue (training corpus: 7.5 missed 5 of 463 sheets,
    # 15 missed 2; tuning sets unchanged)
    idle_fps: float = 15.0


@dataclass
class ModelSettings:
    defect_confidence: float = 0.25     # for a class without a per-class threshold
    tile_size: int = 200                # locator tile in rectified-sheet px: NEU-DET images are 200 px
    tile_overlap: float = 0.2
    prefer_onnx: bool = True
    # per-class confidence overrides {class: conf}; a class not listed uses the active model's
    # shipped threshold (chosen for a stated precision, weights/manifest.json), else defect_confidence
    defect_class_confidence: dict = field(default_factory=dict)
    # physical scale: one locator tile shows this much sheet (NEU-DET tiles read as 250 mm of
    # strip; weights/README.md says why), so a sheet is inspected at the same scale on every camera
    defect_tile_mm: float = 250.0
    # without a calibration (K), the top sheet's short side is taken to be this wide
    assumed_sheet_width_mm: float = 1000.0
    # the locator runs only this far inside the top sheet's outline: its cut edge, the rim and the
    # outline's last pixel of error are never analysed as surface
    sheet_margin_mm: float = 20.0


@dataclass
class CalibrationSettings:
    mm_per_px: float = 0.0              # K at the calibration plane; 0 = not calibrated
    camera_height_mm: float = 2000.0    # camera above the calibration plane
    sheet_thickness_mm: float = 1.0
    plane_height_mm: float = 0.0        # height of the plane K was calibrated at


@dataclass
class AlertSettings:
    over_target_sound: str = ""         # path under data/sounds; "" = bundled default
    finish_under_sound: str = ""        # sound A
    finish_over_sound: str = ""         # sound B


@dataclass
class UISettings:
    language: str = "id"                # id | en — default; each browser session may switch
    timezone: str = "Asia/Jakarta"


@dataclass
class StorageSettings:
    min_free_gb: float = 2.0            # refuse new sessions below this free space
    retention_days: int = 90            # raw captures of exported/archived sessions
    max_upload_mb: int = 500


@dataclass
class Settings:
    camera: CameraSettings = field(default_factory=CameraSettings)
    counting: CountingSettings = field(default_factory=CountingSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    calibration: CalibrationSettings = field(default_factory=CalibrationSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    ui: UISettings = field(default_factory=UISettings)
    storage: StorageSettings = field(default_factory=StorageSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Settings":
        """Build from a (possibly partial or outdated) dict; unknown keys are ignored,
        missing ones take defaults, so old databases keep working."""
        return _build(cls, data or {})

    def validate(self) -> list[str]:
        """Human-readable problems; empty when the settings are usable."""
        errs: list[str] = []
        c = self.counting
        if not 0.0 <= c.motion_sensitivity <= 1.0:
            errs.append("motion_sensitivity must be within 0..1")
        if not 0.0 <= c.sheet_confidence <= 1.0:
            errs.append("sheet_confidence must be within 0..1")
        if not 0.05 <= c.settle_s <= 2.0:
            errs.append("settle_s must be within 0.05..2 s")
        if c.roi is not None and (len(c.roi) != 4 or c.roi[2] <= c.roi[0] or c.roi[3] <= c.roi[1]):
            errs.append("roi must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        if c.verifier not in ("auto", "model_free", "detector"):
            errs.append("verifier must be auto, model_free or detector")
        if c.cue_model is not None:
            cm = c.cue_model
            try:
                ok = isinstance(cm, dict) and len(cm["weights"]) >= 1 and 0.0 < float(cm.get("threshold", 0.5)) < 1.0
                float(cm["bias"])
            except (KeyError, TypeError, ValueError):
                ok = False
            if not ok:
                errs.append("cue_model must hold weights, bias and a threshold within 0..1")
        if not 0.0 <= self.models.defect_confidence <= 1.0:
            errs.append("defect_confidence must be within 0..1")
        m = self.models
        if not isinstance(m.defect_class_confidence, dict) or \
                any(not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0
                    for v in m.defect_class_confidence.values()):
            errs.append("defect_class_confidence must map class names to confidences within 0..1")
        if not 10.0 <= m.defect_tile_mm <= 5000.0:
            errs.append("defect_tile_mm must be within 10..5000 mm")
        if not 50.0 <= m.assumed_sheet_width_mm <= 10000.0:
            errs.append("assumed_sheet_width_mm must be within 50..10000 mm")
        if not 0.0 <= m.sheet_margin_mm <= 500.0:
            errs.append("sheet_margin_mm must be within 0..500 mm")
        if not 0.0 <= float(c.idle_fps) <= 240.0 or 0.0 < float(c.idle_fps) < 5.0:
            errs.append("idle_fps must be 0 (every frame) or within 5..240")
        if self.camera.fps_limit <= 0:
            errs.append("fps_limit must be > 0")
        cal = self.calibration
        if cal.mm_per_px < 0:
            errs.append("mm_per_px must be ≥ 0")
        if cal.camera_height_mm <= 0:
            errs.append("camera_height_mm must be > 0")
        if self.ui.language not in ("id", "en"):
            errs.append("language must be id or en")
        try:
            from zoneinfo import ZoneInfo
            ZoneInfo(self.ui.timezone)
        except Exception:
            errs.append(f"unknown time zone: {self.ui.timezone}")
        return errs


def _build(cls: type, data: dict[str, Any]) -> Any:
    kwargs = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        val = data[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default) and isinstance(val, dict):
            kwargs[f.name] = _build(type(default), val)
        else:
            kwargs[f.name] = val
    return cls(**kwargs)
