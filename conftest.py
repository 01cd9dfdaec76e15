"""Every test and doctest (tests/ and core/) writes into a temporary data folder, never into
the checkout's data/ (tests that need more set up their own through tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _scratch_data_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MSM_DATA_DIR", str(tmp_path_factory.mktemp("data")))
