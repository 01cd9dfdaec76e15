"""Logging set-up shared by the CLI and the app: logs go to stderr, never stdout
(stdout carries the CLI's JSON)."""
from __future__ import annotations

import logging
import os
import sys


def setup(level: str | None = None) -> logging.Logger:
    root = logging.getLogger("msm")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(h)
    root.setLevel(level or os.environ.get("MSM_LOG_LEVEL", "INFO"))
    return root


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"msm.{name}")
