"""Keep Ultralytics offline: it must never try to reach GitHub or a hub.

Call :func:`prepare` before importing ultralytics. It sets ``YOLO_OFFLINE``, points
``YOLO_CONFIG_DIR`` at a project folder and places a TTF font where Ultralytics looks for
``Arial.ttf`` (it would download one otherwise).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.platform.paths import PROJECT_ROOT


def prepare() -> Path:
    cfg = Path(os.environ.get("YOLO_CONFIG_DIR", PROJECT_ROOT / ".yolo"))
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    font_dir = cfg / "Ultralytics"
    font = font_dir / "Arial.ttf"
    if not font.exists():
        font_dir.mkdir(parents=True, exist_ok=True)
        try:
            import matplotlib
            src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
            shutil.copyfile(src, font)
            shutil.copyfile(src, font_dir / "Arial.Unicode.ttf")
        except Exception:  # a missing font only degrades plot labels
            pass
    return cfg
