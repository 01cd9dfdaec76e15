"""Reports on a real PostgreSQL (several stations share one): sessions table, recap,
Excel export, and an archive from PostgreSQL imported into a SQLite station."""
from __future__ import annotations

from datetime import datetime, timezone

import openpyxl
import pytest

import core.reports as reports
from core.platform.paths import Paths
from core.platform.storage import Database
from core.synthetic.session import make_synthetic_session

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_url, data_dir, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_url)
    db = Database()
    assert db.engine.dialect.name == "postgresql"
    yield db
    db.dispose()


def test_recap_export_and_archive_on_postgres(pg, paths, tmp_path):
    t = datetime(2026, 11, 20, 16, 0, tzinfo=timezone.utc)     # 23:00 WIB → night shift C of the 20th
    sid = make_synthetic_session(pg, paths, 9, name="PG batch", started_at=t, interval_s=600)
    rows = reports.list_sessions(pg, "2026-11-20", "2026-11-21")
    assert [(r.id, r.captures, r.defects, r.rejects) for r in rows] == [(sid, 9, 2, 0)]
    rec = reports.production_recap(pg, [sid])
    # 9 sheets every 10 min from 23:10 WIB, minus one manual correction: all in shift C of the 20th
    assert rec.per_shift == [{"day": "2026-11-20", "shift": "C", "sheets": 8}] and rec.total_sheets == 8
    reports.export_sessions(pg, paths, [sid], "xlsx", tmp_path / "pg.xlsx")
    assert openpyxl.load_workbook(tmp_path / "pg.xlsx")["Captures"].max_row == 10
    reports.write_archive(pg, paths, [sid], tmp_path / "pg.zip")
    other = Paths(data=tmp_path / "other", weights=tmp_path / "w").ensure()
    lite = Database(f"sqlite:///{other.db_dir / 'x.sqlite3'}")
    try:
        assert reports.import_archive(lite, other, tmp_path / "pg.zip").created == [sid]
        a, b = reports.build_session_log(pg, sid), reports.build_session_log(lite, sid)
        for d in (a, b):
            d.pop("generated_at"), d.pop("archived_at")
        assert a == b
    finally:
        lite.dispose()
