"""Logging set-up shared by the CLI and the app: logs go to stderr, never stdout
(stdout carries the CLI's JSON)."""
from __future__ import annotations

import logging
import os
import sys


class PlantTimeFormatter(logging.Formatter):
    """Log lines carry the plant's local time with its zone (``2026-11-22 00:30:01 WIB``),
    not the server's zone (the container runs in UTC)."""

    def __init__(self, fmt: str, tz: str | None = None):
        super().__init__(fmt)
        self.tz = tz

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        from datetime import datetime, timezone

        from core.platform.i18n import fmt_dt, plant_tz
        if self.tz is None:          # read once, on the first line (the settings live in the DB)
            self.tz = os.environ.get("MSM_TZ") or plant_tz()
        return fmt_dt(datetime.fromtimestamp(record.created, timezone.utc), self.tz)


def setup(level: str | None = None, tz: str | None = None) -> logging.Logger:
    """Log to stderr in plant local time; ``tz`` (the settings' zone) updates a set-up logger."""
    root = logging.getLogger("msm")
    if not root.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(PlantTimeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", tz))
        root.addHandler(h)
    elif tz:
        for h in root.handlers:
            if isinstance(h.formatter, PlantTimeFormatter):
                h.formatter.tz = tz
    root.setLevel(level or os.environ.get("MSM_LOG_LEVEL", "INFO"))
    return root


def get(name: str) -> logging.Logger:
    return logging.getLogger(f"msm.{name}")
