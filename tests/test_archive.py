"""Session archive: round trip into a second data folder (another station), idempotent
import, and refusal of zip-slip archives (absolute paths, .., symlinks) before writing."""
from __future__ import annotations

import io
import json
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

import core.reports as reports
from core.platform.paths import Paths
from core.platform.storage import CaptureRow, CountEventRow, Database, DefectRow, MeasurementRow, SessionRow
from core.synthetic.session import make_synthetic_session

ROOT = Path(__file__).resolve().parent.parent


def _counts(db):
    with db.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(m)) for m in
                     (SessionRow, CaptureRow, DefectRow, MeasurementRow, CountEventRow))


@pytest.fixture
def station_b(tmp_path):
    """A second station: its own data folder and database."""
    p = Paths(data=tmp_path / "station_b", weights=tmp_path / "wb").ensure()
    db = Database(f"sqlite:///{p.db_dir / 'b.sqlite3'}")
    yield db, p
    db.dispose()


def test_round_trip_into_another_station_is_idempotent(db, paths, station_b, tmp_path):
    sid = make_synthetic_session(db, paths, 10, name="Batch Z")
    (paths.sessions / reports.build_session_log(db, sid)["folder"] / "masks").mkdir()
    (paths.sessions / reports.build_session_log(db, sid)["folder"] / "masks" / "m.png").write_bytes(b"png")
    res = reports.write_archive(db, paths, [sid], tmp_path / "z.zip")
    with db.session() as s:
        assert s.get(SessionRow, sid).archived_at is not None
    names = zipfile.ZipFile(tmp_path / "z.zip").namelist()
    assert "manifest.json" in names and res.bytes > 0
    folder = reports.build_session_log(db, sid)["folder"]
    assert f"media/{folder}/captures/sheet_0001.jpg" in names
    assert f"media/{folder}/overlays/sheet_0001.jpg" in names
    assert f"media/{folder}/crops/sheet_0004_0.png" in names
    assert f"media/{folder}/masks/m.png" in names and f"media/{folder}/session_log.json" in names

    db_b, paths_b = station_b
    r1 = reports.import_archive(db_b, paths_b, tmp_path / "z.zip")
    assert r1.created == [sid] and r1.files_written == len(names) - 1 and r1.files_skipped == 0
    assert _counts(db_b) == _counts(db) == (1, 10, 2, 10, 11)
    # same log on both stations (apart from when it was generated / archived)
    a, b = reports.build_session_log(db, sid), reports.build_session_log(db_b, sid)
    for doc in (a, b):
        doc.pop("generated_at"), doc.pop("archived_at")
    assert a == b
    src = paths.sessions / folder / "crops" / "sheet_0004_0.png"
    assert (paths_b.sessions / folder / "crops" / "sheet_0004_0.png").read_bytes() == src.read_bytes()
    # the manual correction still points at no capture; auto events at their (new) capture ids
    assert [e["capture_index"] for e in b["events"]][:3] == [1, 2, 3]
    r2 = reports.import_archive(db_b, paths_b, tmp_path / "z.zip")
    assert r2.created == [] and r2.existing == [sid] and r2.files_written == 0
    assert _counts(db_b) == (1, 10, 2, 10, 11)


def _zip(members, manifest=True, folder="2026-11-21/s1"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        if manifest:
            zf.writestr("manifest.json", json.dumps({"format": reports.ARCHIVE_FORMAT, "version": 1, "sessions": [
                {"session": {"id": "s1", "name": "S", "target": 1, "folder": folder,
                             "started_at": "2026-11-21T07:00:00+00:00"}, "events": [], "captures": []}]}))
        for m in members:
            if isinstance(m, zipfile.ZipInfo):
                zf.writestr(m, "evil")
            else:
                zf.writestr(m, "evil")
    return buf.getvalue()


def _symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("member, why", [
    ("/etc/evil.txt", "absolute"),
    ("media/2026-11-21/s1/../../../../evil.txt", ".."),
    ("../evil.txt", ".."),
    ("media/2026-11-21/s1/..\\..\\evil.txt", "backslash"),
    ("media/other-session/x.jpg", "outside the archived sessions"),
    ("evil.txt", "outside media/"),
    (_symlink("media/2026-11-21/s1/link", "/etc/passwd"), "symbolic link"),
])
def test_zip_slip_is_refused_before_anything_is_written(db, paths, tmp_path, member, why):
    ok_member = "media/2026-11-21/s1/captures/a.jpg"
    data = _zip([ok_member, member])
    with pytest.raises(reports.ReportError, match="refused archive") as e:
        reports.import_archive(db, paths, data)
    assert why in str(e.value)
    assert not (paths.sessions / "2026-11-21").exists()          # not even the safe member
    assert _counts(db) == (0, 0, 0, 0, 0)
    assert not (tmp_path / "evil.txt").exists() and not (paths.data / "evil.txt").exists()


def test_manifest_folder_escaping_is_refused(db, paths):
    data = _zip(["media/../x/a.jpg"], folder="../x")
    with pytest.raises(reports.ReportError, match="refused archive"):
        reports.import_archive(db, paths, data)
    assert _counts(db) == (0, 0, 0, 0, 0)


def test_not_an_archive(db, paths, tmp_path):
    (tmp_path / "x.zip").write_bytes(b"not a zip")
    with pytest.raises(reports.ReportError, match="bad zip"):
        reports.import_archive(db, paths, tmp_path / "x.zip")
    with pytest.raises(reports.ReportError, match="manifest.json is missing"):
        reports.import_archive(db, paths, _zip(["media/a/b.jpg"], manifest=False))
    with pytest.raises(reports.ReportError, match="archive not found"):
        reports.import_archive(db, paths, tmp_path / "missing.zip")


def test_cli_archive_and_import(db, paths, data_dir, tmp_path):
    sid = make_synthetic_session(db, paths, 4, name="Cli")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    run = lambda args, d: subprocess.run([sys.executable, "-m", "core", "archive", *args], cwd=ROOT,  # noqa: E731
                                         env={**env, "MSM_DATA_DIR": str(d)}, capture_output=True, text=True,
                                         timeout=120)
    r = run(["--session", sid, "--out", str(tmp_path / "a.zip")], data_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["format"] == "zip"
    other = tmp_path / "other"
    r = run(["--import", str(tmp_path / "a.zip")], other)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["created"] == [sid]
    r = run(["--import", str(tmp_path / "a.zip")], other)
    assert json.loads(r.stdout) == {"created": [], "existing": [sid], "files_written": 0,
                                    "files_skipped": json.loads(r.stdout)["files_skipped"]}
    (tmp_path / "evil.zip").write_bytes(_zip(["../evil.txt"]))
    for args, msg in [(["--import", str(tmp_path / "evil.zip")], "refused archive"),
                      (["--session", "nope", "--out", str(tmp_path / "b.zip")], "unknown session"),
                      (["--session", sid], "give --out")]:
        r = run(args, other)
        assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
