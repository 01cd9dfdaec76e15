"""The same code on PostgreSQL (``DATABASE_URL``), so several stations share one database.

Runs against a real PostgreSQL server that the fixture starts (tests/pg_fixture.py); each
test gets its own fresh database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, inspect, select

from core.platform.settings import Settings
from core.platform.storage import Base, CaptureRow, CountEventRow, CredentialRow, Database, SessionRow, SettingAuditRow

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pg(pg_url, data_dir, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_url)
    db = Database()                    # picks DATABASE_URL up, as a station would
    assert db.engine.dialect.name == "postgresql"
    yield db
    db.dispose()


def test_schema_created(pg):
    names = set(inspect(pg.engine).get_table_names())
    assert set(Base.metadata.tables) <= names


def test_settings_roundtrip_and_audit(pg):
    s = pg.load_settings()
    s.counting.roi = [1, 2, 300, 400]
    s.counting.motion_sensitivity = 0.65
    s.camera.rtsp_url = "rtsp://cam/ünï"
    changed = pg.save_settings(s, who="eng")
    assert set(changed) == {"counting.roi", "counting.motion_sensitivity", "camera.rtsp_url"}
    again = Database(pg.url).load_settings()
    assert again.counting.roi == [1, 2, 300, 400] and again.camera.rtsp_url == "rtsp://cam/ünï"
    assert pg.save_settings(again, who="eng") == []   # no change → no audit row
    with pg.session() as ss:
        rows = ss.scalars(select(SettingAuditRow)).all()
    assert len(rows) == 3 and {r.key: r.old for r in rows}["counting.roi"] is None


def test_datetimes_stay_utc_aware(pg):
    wib = timezone(timedelta(hours=7))
    t = datetime(2026, 11, 21, 1, 30, tzinfo=wib)
    with pg.session() as s:
        s.add(SessionRow(id="tz-1", name="x", target=1, folder="f", started_at=t))
    with pg.session() as s:
        got = s.get(SessionRow, "tz-1").started_at
    assert got.tzinfo is not None and got.utcoffset() == timedelta(0) and got == t
    with pytest.raises(Exception):
        with pg.session() as s:
            s.add(SessionRow(id="tz-2", name="x", target=1, folder="f", started_at=datetime(2026, 1, 1)))


def test_session_flow_counts_and_dedup(pg, paths):
    from core.live import capture, sessions
    st = sessions.start_session(pg, paths, "Batch-Ä " + "x" * 150, 3, source="demo", station="line-1")
    img = np.full((60, 80, 3), 90, np.uint8)
    ev = capture.CountInput(frame=10, image=img, box=(5, 5, 70, 50), confidence=0.9, t=1.0)
    assert capture.record_count(pg, paths, st.id, ev).count == 1
    assert capture.record_count(pg, paths, st.id, ev) is None        # same frame again: not counted twice
    ev2 = capture.CountInput(frame=20, image=img, box=None, confidence=0.8, t=2.0)
    assert capture.record_count(pg, paths, st.id, ev2).count == 2
    sessions.correct_count(pg, st.id, +1, "missed one under the arm", user="op")
    done = sessions.finish_session(pg, paths, st.id)
    assert done.count == 3 and done.status == "finished"
    with pg.session() as s:
        assert s.scalar(select(func.count()).select_from(CountEventRow).where(CountEventRow.session_id == st.id)) == 3
        assert all((paths.sessions / c.path).is_file() for c in s.scalars(select(CaptureRow)))


def test_longest_accepted_values_fit_the_columns(pg, paths):
    """SQLite ignores VARCHAR lengths, PostgreSQL enforces them: whatever validation lets
    through must fit."""
    from core.live import sessions
    name = "Ü" * sessions.MAX_NAME
    st = sessions.start_session(pg, paths, name, sessions.MAX_TARGET, source="rtsp://" + "h" * 480)
    assert sessions.session_status(pg, st.id).name == name


def test_rate_limit_holds_across_stations(pg):
    """Eight stations guessing at once: the row lock serialises the attempts, so exactly the
    free attempts are counted and every later one is refused by the backoff (without the lock,
    lost updates would let them all through as plain "wrong")."""
    from core.platform.auth import ENV_VAR, FREE_ATTEMPTS, EngineerAuth
    EngineerAuth(pg).ensure_initial(env={ENV_VAR: "right-pin"})
    dbs = [Database(pg.url) for _ in range(8)]
    barrier = threading.Barrier(len(dbs))
    results = []

    def guess(d):
        barrier.wait()
        results.append(EngineerAuth(d).verify("wrong"))

    ts = [threading.Thread(target=guess, args=(d,)) for d in dbs]
    [t.start() for t in ts]
    [t.join(30) for t in ts]
    with pg.session() as s:
        row = s.get(CredentialRow, "engineer")
    assert len(results) == 8 and not any(r.ok for r in results)
    assert row.failed_count == FREE_ATTEMPTS and row.locked_until is not None
    assert sum(1 for r in results if r.wait_s > 0) == 8 - FREE_ATTEMPTS
    assert not EngineerAuth(pg).verify("right-pin").ok   # still inside the backoff
    for d in dbs:
        d.dispose()


def test_retention_on_postgres(pg, paths):
    from core.platform.health import apply_retention
    now = datetime.now(timezone.utc)
    f = paths.sessions / "d/old" / "sheet_0001.jpg"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"jpg")
    with pg.session() as s:
        s.add(SessionRow(id="old", name="old", target=1, folder="d/old", status="finished",
                         finished_at=now - timedelta(days=200), exported_at=now))
        s.add(CaptureRow(session_id="old", index=1, path="d/old/sheet_0001.jpg"))
    rep = apply_retention(pg, paths, Settings(), days=90)
    assert rep.files_removed == 1 and not f.exists()


def test_jobs_on_postgres(pg):
    from core.platform.jobs import JobRunner
    runner = JobRunner(pg)
    try:
        def work(ctx, n):
            for i in range(n):
                ctx.progress((i + 1) / n, f"step {i + 1}")
            return {"n": n}
        jid = runner.submit("test", work, n=3)
        st = runner.wait(jid, timeout=30)
        assert st.status == "done" and st.progress == 1.0
    finally:
        runner.close()


def test_several_stations_aggregate(pg, paths):
    """Two stations write to one database; a supervisor sums per station."""
    a, b = Database(pg.url), Database(pg.url)
    now = datetime.now(timezone.utc)
    for d, station, n in ((a, "line-1", 40), (b, "line-2", 55), (a, "line-1", 5)):
        with d.session() as s:
            sid = f"{station}-{n}"
            s.add(SessionRow(id=sid, name=sid, target=n, count=n, folder=sid, station=station,
                             status="finished", finished_at=now))
    with pg.session() as s:
        per = dict(s.execute(select(SessionRow.station, func.sum(SessionRow.count)).group_by(SessionRow.station)).all())
    assert per == {"line-1": 45, "line-2": 55}
    a.dispose()
    b.dispose()


def test_session_log_and_export_on_postgres(pg, paths):
    import core.reports as reports
    from core.live import capture, sessions
    st = sessions.start_session(pg, paths, "Export-PG", 2)
    img = np.full((60, 80, 3), 120, np.uint8)
    capture.record_count(pg, paths, st.id, capture.CountInput(frame=1, image=img, box=None, confidence=0.9, t=0.1))
    sessions.finish_session(pg, paths, st.id)
    log = reports.build_session_log(pg, st.id)
    assert log["session_id"] == st.id and log["count"] == 1


def test_cli_against_postgres(pg, pg_url):
    env = {**os.environ, "DATABASE_URL": pg_url}
    for args in (["health", "--cpu-interval", "0"], ["retention", "--dry-run"]):
        r = subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        json.loads(r.stdout)


def test_model_registry_on_postgres(pg, paths):
    """Versions with SHA-256, one active version, rollback — on PostgreSQL (JSON metrics,
    the unique (task, version) constraint)."""
    from core.models.manager import ModelError, Registry
    reg = Registry(pg, paths)
    files = []
    for i in range(2):
        f = paths.weights / f"sheet_v{i}.pt"
        f.write_bytes(os.urandom(256))
        files.append(f)
    v1 = reg.register(files[0], "metal_sheet", "sheet", metrics={"mAP50": 0.91, "per_class": {"metal_sheet": 0.91}})
    v2 = reg.register(files[1], "metal_sheet", "sheet", metrics={"mAP50": 0.95}, activate=True)
    assert reg.active("sheet").version == v2.version and v1.version != v2.version
    assert reg.rollback("sheet").version == v1.version
    assert reg.active("sheet").metrics["per_class"] == {"metal_sheet": 0.91}
    with pytest.raises(ModelError):
        reg.register(files[1], "metal_sheet", "sheet", version=v1.version)   # same version, another file
    assert sum(m.active for m in reg.list("sheet")) == 1


def test_two_stations_each_run_their_own_session(pg, paths):
    """Line 1 and line 2 share the database: each may have its session open at once, and a
    restarted station resumes its own session, never the other line's."""
    from core.live import sessions
    a = sessions.start_session(pg, paths, "Line1-Batch", 10, station="line-1")
    b = sessions.start_session(Database(pg.url), paths, "Line2-Batch", 20, station="line-2")
    assert a.id != b.id
    assert sessions.open_session(pg, "line-1").id == a.id
    assert sessions.open_session(pg, "line-2").id == b.id
    with pytest.raises(sessions.SessionError):
        sessions.start_session(pg, paths, "Second on line 1", 5, station="line-1")
    from core.live import worker as worker_mod
    w = worker_mod.CountingWorker(pg, paths, source="", station="line-2", realtime=False)
    try:
        w.start()
        st = w.status()
        assert st.session is not None and st.session.id == b.id
    finally:
        w.stop()


def test_restart_of_one_station_leaves_other_stations_jobs_running(pg, monkeypatch):
    from core.platform.jobs import JobRunner
    monkeypatch.setenv("MSM_STATION", "line-1")
    runner = JobRunner(pg)

    def long_job(ctx):
        while not ctx.cancelled:
            ctx.progress(0.5, "training")
            import time
            time.sleep(0.05)
        return {}

    jid = runner.submit("train", long_job)
    try:
        monkeypatch.setenv("MSM_STATION", "line-2")     # another station starts up
        JobRunner(Database(pg.url))
        assert runner.get(jid).status == "running"
        monkeypatch.setenv("MSM_STATION", "line-1")     # line 1 itself restarts
        runner.close()
        with pg.session() as s:
            from core.platform.storage import JobRow
            s.get(JobRow, jid).status = "running"       # as if the process had died mid-job
        JobRunner(Database(pg.url))
        assert runner.get(jid).status == "failed" and "restarted" in runner.get(jid).message
    finally:
        runner.close()


def test_first_run_on_several_stations_at_once(pg):
    """Every station starts with the same MSM_ENGINEER_PIN at the same moment: one stores it,
    the others find it stored — nobody crashes on the primary key."""
    from core.platform.auth import ENV_VAR, EngineerAuth
    dbs = [Database(pg.url) for _ in range(6)]
    barrier = threading.Barrier(len(dbs))
    got, errors = [], []

    def first_run(d):
        barrier.wait()
        try:
            got.append(EngineerAuth(d).ensure_initial(env={ENV_VAR: "line-pin-1"}))
        except Exception as e:
            errors.append(e)

    ts = [threading.Thread(target=first_run, args=(d,)) for d in dbs]
    [t.start() for t in ts]
    [t.join(30) for t in ts]
    assert not errors and len(got) == 6 and got.count("env") == 1 and set(got) <= {"env", "stored"}
    assert EngineerAuth(pg).verify("line-pin-1").ok
    for d in dbs:
        d.dispose()
