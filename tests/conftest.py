"""Shared fixtures: every test gets its own data/ folder and database, so tests never
touch the developer's data and can run in any order."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# the PostgreSQL server fixtures (pg_server, pg_url) for every test module that asks for them
pytest_plugins = ["pg_fixture"]

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".yolo"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "data"
    monkeypatch.setenv("MSM_DATA_DIR", str(d))
    # Each test also gets its own weights/ folder: the shipped files are linked in (read
    # them freely), anything a test writes stays out of the repository.
    w = tmp_path / "weights"
    w.mkdir()
    for f in (ROOT / "weights").iterdir():
        if f.is_file():
            (w / f.name).symlink_to(f)
    monkeypatch.setenv("MSM_WEIGHTS_DIR", str(w))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    from core.platform.paths import Paths
    Paths.from_env().ensure()
    return d


@pytest.fixture
def paths(data_dir):
    from core.platform.paths import Paths
    return Paths.from_env()


@pytest.fixture
def db(data_dir):
    from core.platform.storage import Database
    d = Database()
    yield d
    d.dispose()
