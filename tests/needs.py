"""What a test needs from the machine (not from our code): a Debian package, a data set.

Our own code is never skipped: an import failure is a failure. A missing *system* part
(Chromium, GStreamer's RTSP server, PostgreSQL, poppler, NEU-DET) is a skip with the reason
and the fix on a developer's machine, and a failure under CI (``CI=true``), where
``.ci/run`` installs all of it — so nothing can quietly stop being tested there.
"""
from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(ok: bool, what: str) -> None:
    """Skip (or fail under CI) unless ``ok``; ``what`` says what is missing and how to get it."""
    if ok:
        return
    if in_ci():
        pytest.fail(f"missing under CI: {what}", pytrace=False)
    pytest.skip(what)


def neu_dir():
    """NEU-DET for the tests: ``$MSM_NEU_DIR`` (``.ci/run`` points it at the shared copy)."""
    from core.models.neu import default_neu_dir
    d = default_neu_dir()
    need((d / "splits" / "val.txt").exists(),
         f"NEU-DET not found at {d}: set MSM_NEU_DIR to the data set (see weights/README.md)")
    return d
