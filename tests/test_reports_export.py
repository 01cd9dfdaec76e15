"""Exports opened with real readers: jsonschema, csv, openpyxl (sheets, native charts,
embedded thumbnails), pypdf (text) and pdftoppm (a rendered page we look at)."""
from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import openpyxl
import pypdf
import pytest

import core.reports as reports
from core.platform.storage import SessionRow
from core.synthetic.session import make_synthetic_session

from needs import need

ROOT = Path(__file__).resolve().parent.parent


def _schema_ok(doc):
    jsonschema.validate(doc, reports.load_schema(), cls=jsonschema.Draft202012Validator)


@pytest.fixture
def two_days(db, paths):
    """Three sessions over two local days (Jakarta), the last one still active."""
    d1 = datetime(2026, 11, 19, 1, 0, tzinfo=timezone.utc)    # 08:00 WIB, shift A
    d2 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)    # 16:00 WIB, shift B
    a = make_synthetic_session(db, paths, 8, name="Batch A", started_at=d1, interval_s=60, seed=1)
    b = make_synthetic_session(db, paths, 6, name="Batch B", started_at=d2, interval_s=60, target=10, seed=2)
    c = make_synthetic_session(db, paths, 3, name="Batch C", started_at=d2 + timedelta(hours=4),
                                       interval_s=60, status="active", defect_every=0)
    return a, b, c


def test_json_and_csv_of_one_session_and_a_range(db, paths, two_days, tmp_path):
    a, b, c = two_days
    r = reports.export_sessions(db, paths, [a], "json", tmp_path / "a.json")
    doc = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    _schema_ok(doc)
    assert doc["session_id"] == a and r.bytes == (tmp_path / "a.json").stat().st_size
    ids, period = reports.resolve_sessions(db, None, "2026-11-20", "2026-11-20")
    assert ids == [b, c]           # oldest first, day 19 left out
    reports.export_sessions(db, paths, ids, "json", tmp_path / "r.json", period=period)
    rng = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert rng["from"] == rng["to"] == "2026-11-20" and [s["session_id"] for s in rng["sessions"]] == [b, c]
    for s in rng["sessions"]:
        _schema_ok(s)
    reports.export_sessions(db, paths, ids, "csv", tmp_path / "r.csv", period=period)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8"))))
    assert tuple(rows[0].keys()) == reports.CSV_COLUMNS
    assert len(rows) == 6 + 3 and {r["session_id"] for r in rows} == {b, c}
    assert rows[0]["started_at"].endswith("+07:00") and "." in rows[0]["length_mm"]   # decimal point
    float(rows[0]["length_mm"])
    with db.session() as s:
        assert s.get(SessionRow, b).exported_at is not None
        assert s.get(SessionRow, a).exported_at is not None


def test_xlsx_has_sheets_charts_and_thumbnails(db, paths, two_days, tmp_path):
    a, b, c = two_days
    out = tmp_path / "r.xlsx"
    seen = []
    reports.export_sessions(db, paths, [a, b, c], "xlsx", out, lang="en", progress=lambda f, m: seen.append(f))
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == ["Summary", "Count events", "Captures", "Defects", "Measurements"]
    summ = wb["Summary"]
    assert summ["A1"].value == "Production report"
    assert [summ.cell(7 + i, 1).value for i in range(3)] == [a, b, c]
    assert summ.cell(8, 5).value == 10 and summ.cell(8, 6).value == 5   # target / count of B
    assert len(summ._charts) == 3                                       # target vs actual, types, reviews
    assert len(wb["Count events"]._charts) == 1
    defects = wb["Defects"]
    n_def = defects.max_row - 1
    assert n_def == 2 + 1 and len(defects._images) == n_def             # one thumbnail per defect
    assert wb["Captures"].max_row - 1 == 8 + 6 + 3
    assert wb["Measurements"].max_row - 1 == 17


def test_headings_go_through_the_translator(db, paths, two_days, tmp_path, monkeypatch):
    a, *_ = two_days
    asked = []

    def fake_translator(lang):   # stands in for the merged catalogue (the lead merges fragments)
        asked.append(lang)
        return lambda s: "ID-" + s
    from core.platform import i18n
    monkeypatch.setattr(i18n, "translator", fake_translator)
    reports.export_sessions(db, paths, [a], "xlsx", tmp_path / "id.xlsx", lang="id")
    wb = openpyxl.load_workbook(tmp_path / "id.xlsx")
    assert wb.sheetnames[0] == "ID-Summary" and wb["ID-Summary"]["A1"].value == "ID-Production report"
    reports.export_sessions(db, paths, [a], "pdf", tmp_path / "id.pdf", lang="id")
    assert "ID-Production report" in pypdf.PdfReader(tmp_path / "id.pdf").pages[0].extract_text()
    assert set(asked) == {"id"}


def test_indonesian_fragment_covers_the_report_headings():
    # the reports fragment is merged into the one Indonesian catalogue (issue 9)
    from core.platform import i18n
    tr = i18n.catalog_messages("id")
    assert tr["Production report"] == "Laporan Produksi"
    for msgid in ("Summary", "Captures", "Defects", "Measurements", "Count events", "Flagged captures",
                  "Target vs actual", "Defect types", "Approve / reject", "Count over time", "Times: {zone}"):
        assert tr.get(msgid), msgid
    assert "{zone}" in tr["Times: {zone}"]


def test_pdf_text_and_rendered_page(db, paths, two_days, tmp_path):
    a, b, c = two_days
    out = tmp_path / "r.pdf"
    reports.export_sessions(db, paths, [a, b], "pdf", out, period=reports.Period(None, None))
    reader = pypdf.PdfReader(out)
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert "Production report" in text and "Batch A" in text and "Batch B" in text
    assert "Flagged captures" in text
    # Batch A: defects at 4, 8 (every 4th), none rejected among 8 → 2; Batch B: defect 4 → 1
    assert "(1–3 / 3)" in text
    assert len(reader.pages) == 2                    # summary+charts, one page of flagged captures
    assert len(reader.pages[1].images) == 3          # the overlays are real images
    need(shutil.which("pdftoppm") is not None, "pdftoppm (poppler-utils) missing: run .ci/system-deps.sh")
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "pg")],
                   check=True, timeout=60)
    png = next(tmp_path.glob("pg*.png"))
    import cv2
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] > 500
    assert (img < 128).mean() > 0.01                 # ink on the page: text and charts were drawn


def test_bad_inputs_are_clear_errors(db, paths, two_days, tmp_path):
    a, *_ = two_days
    with pytest.raises(reports.ReportError, match="unknown format"):
        reports.export_sessions(db, paths, [a], "docx", tmp_path / "x.docx")
    with pytest.raises(reports.ReportError, match="does not exist"):
        reports.export_sessions(db, paths, [a], "json", tmp_path / "nope" / "x.json")
    with pytest.raises(reports.ReportError, match="unknown session"):
        reports.resolve_sessions(db, "nope")
    with pytest.raises(reports.ReportError, match="no sessions"):
        reports.resolve_sessions(db, None, "2020-01-01", "2020-01-02")
    with pytest.raises(reports.ReportError, match="ends before"):
        reports.resolve_sessions(db, None, "2026-11-20", "2026-11-19")
    with pytest.raises(reports.ReportError, match="bad from date"):
        reports.resolve_sessions(db, None, "21/11/2026", None)


def _cli(args, data_dir, timeout=120):
    env = {"MSM_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "YOLO_OFFLINE": "1", "HOME": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_export_and_bad_input(db, paths, two_days, data_dir, tmp_path):
    a, b, c = two_days
    r = _cli(["export", "--session", a, "--format", "pdf", "--out", str(tmp_path / "a.pdf")], data_dir)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["format"] == "pdf" and res["sessions"] == [a] and Path(res["path"]).is_file()
    from core.platform.i18n import translator  # default language from settings: id
    assert pypdf.PdfReader(res["path"]).pages[0].extract_text().startswith(translator("id")("Production report"))
    r = _cli(["export", "--from", "2026-11-19", "--to", "2026-11-20", "--format", "csv", "--lang", "en",
              "--out", str(tmp_path / "r.csv")], data_dir)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sessions"] == [a, b, c]
    r = _cli(["export", "--session", "nope", "--format", "json", "--out", str(tmp_path / "x.json")], data_dir)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.strip() == "error: unknown session: nope"


def test_cli_bad_inputs_exit_2_with_one_line(db, paths, two_days, tmp_path, capsys):
    """The same entry point as ``python -m core`` (in-process, to keep the suite fast)."""
    from core.__main__ import main
    a, *_ = two_days
    for args, msg in [
        (["--session", a, "--from", "2026-11-19", "--format", "json", "--out", str(tmp_path / "x.json")],
         "not both"),
        (["--session", a, "--format", "docx", "--out", str(tmp_path / "x.docx")], "unknown format"),
        (["--session", a, "--format", "json", "--out", "/proc/x/y.json"], "does not exist"),
        (["--session", a, "--format", "json", "--out", str(tmp_path)], "is a folder"),
        (["--session", a, "--format", "json"], "required: --out"),
        (["--from", "yesterday", "--format", "json", "--out", str(tmp_path / "x.json")], "bad from date"),
    ]:
        rc = main(["export", *args])
        out, err = capsys.readouterr()
        assert rc == 2, (args, out, err)
        assert out == "" and msg in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err


def test_report_job_writes_every_format_for_a_range(db, paths, two_days):
    """[Generate Report] as a real background job: progress, files in data/exports, zip included."""
    from core.platform.jobs import JobRunner
    a, b, c = two_days
    runner = JobRunner(db)
    try:
        jid = runner.submit("report", reports.report_job, session_ids=[a, b, c], formats=["csv", "pdf", "zip"],
                            date_from="2026-11-19", date_to="2026-11-20", lang="en")
        st = runner.wait(jid, timeout=120)
    finally:
        runner.close()
    assert st.status == "done" and st.progress == 1.0, st.message
    files = st.result["files"]
    assert [f["name"] for f in files] == ["report_2026-11-19_2026-11-20.csv", "report_2026-11-19_2026-11-20.pdf",
                                          "report_2026-11-19_2026-11-20.zip"]
    for f in files:
        p = Path(f["path"])
        assert p.parent == paths.exports and p.stat().st_size == f["bytes"] > 0
    assert "2026-11-19 – 2026-11-20" in pypdf.PdfReader(files[1]["path"]).pages[0].extract_text()
    with db.session() as s:
        assert all(s.get(SessionRow, x).archived_at is not None for x in (a, b, c))
