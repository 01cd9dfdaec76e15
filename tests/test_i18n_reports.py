"""A report in each language opens in a real reader and shows that language's headings:
PDF through pypdf, Excel through openpyxl, from the merged catalogue (no fake translator).
Times in the reports are plant-local with the zone stated; JSON/CSV stay machine-readable
whatever the UI language (decimal point, ISO 8601 with offset)."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone

import openpyxl
import pypdf
import pytest

import core.reports as reports
from core.platform import i18n
from core.synthetic.session import make_synthetic_session

START = datetime(2026, 11, 21, 16, 0, tzinfo=timezone.utc)     # 23:00 WIB: the session crosses midnight

# The headings a reader looks for, per language (the Indonesian are the catalogue's wording).
HEADINGS = {
    "id": {"report": "Laporan Produksi", "sheets": ["Ringkasan", "Peristiwa hitung", "Tangkapan", "Cacat",
                                                     "Pengukuran"],
           "zone": "Waktu: Asia/Jakarta", "flagged": "Tangkapan bermasalah"},
    "en": {"report": "Production report", "sheets": ["Summary", "Count events", "Captures", "Defects",
                                                     "Measurements"],
           "zone": "Times: Asia/Jakarta", "flagged": "Flagged captures"},
}


@pytest.fixture
def night(db, paths):
    return make_synthetic_session(db, paths, 6, name="Malam C", started_at=START, interval_s=900,
                                          defect_every=2, reject_every=3, seed=3)


def test_catalogue_agrees_with_the_expected_headings():
    _ = i18n.translator("id")
    assert _("Production report") == HEADINGS["id"]["report"]
    assert [_(s) for s in HEADINGS["en"]["sheets"]] == HEADINGS["id"]["sheets"]
    assert _("Times: {zone}").format(zone="Asia/Jakarta") == HEADINGS["id"]["zone"]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_xlsx_in_each_language_opens_with_its_headings(db, paths, night, tmp_path, lang):
    out = tmp_path / f"r_{lang}.xlsx"
    reports.export_sessions(db, paths, [night], "xlsx", out, lang=lang)
    wb = openpyxl.load_workbook(out)
    h = HEADINGS[lang]
    assert wb.sheetnames == h["sheets"]
    summ = wb[h["sheets"][0]]
    assert summ["A1"].value == h["report"]
    cells = {str(c.value) for ws in wb.worksheets for row in ws.iter_rows(max_row=8) for c in row
             if isinstance(c.value, str)}
    assert any(h["zone"] in c for c in cells), "the report states the time zone"
    if lang == "en":   # and no Indonesian in the English one
        assert not {"Laporan Produksi", "Ringkasan", "Sesi", "Mulai"} & cells
    if lang == "id":   # no English heading left in the Indonesian workbook
        ind = i18n.catalog_messages("id")
        english = {k for k, v in ind.items() if v and v != k and len(k) > 3}
        leaked = sorted(c for c in cells if c in english)
        assert not leaked, f"English headings in the Indonesian report: {leaked[:5]}"
        assert "Sesi" in cells and "Session" not in cells
    # the count events carry plant-local times across midnight (23:xx then 00:xx)
    ev = wb[h["sheets"][1]]
    times = [r[1] for r in ev.iter_rows(min_row=2, values_only=True) if isinstance(r[1], datetime)]
    assert times and {t.strftime("%Y-%m-%d") for t in times} == {"2026-11-21", "2026-11-22"}
    assert min(times).hour == 23
    # an automatic count's reason is in the reader's words; the engine's English goes to the last column
    rows = list(ev.iter_rows(min_row=2, values_only=True))
    auto = [r for r in rows if r[2] == i18n.translator(lang)("auto")]
    assert auto and {r[5] for r in auto} == {i18n.translator(lang)("Sheet detected by the camera")}


@pytest.mark.parametrize("lang", ["id", "en"])
def test_pdf_in_each_language_opens_with_its_headings(db, paths, night, tmp_path, lang):
    out = tmp_path / f"r_{lang}.pdf"
    reports.export_sessions(db, paths, [night], "pdf", out, lang=lang)
    reader = pypdf.PdfReader(out)
    text = "\n".join(p.extract_text() for p in reader.pages)
    h = HEADINGS[lang]
    assert h["report"] in text and h["zone"] in text and h["flagged"] in text
    other = HEADINGS["en" if lang == "id" else "id"]
    assert other["report"] not in text and other["flagged"] not in text
    assert "Malam C" in text and ("WIB" in text)                # generated-at footer: local time with zone
    if lang == "id":
        assert "Ringkasan" in text and "Summary" not in text
    # sizes of flagged sheets follow the reader's language: 72,0 × 48,4 mm vs 72.0 × 48.4 mm
    sep = "," if lang == "id" else r"\."
    assert re.search(rf"\d{sep}\d × \d+{sep}\d mm", text), text[-600:]


@pytest.mark.parametrize("lang", ["id", "en"])
def test_json_and_csv_stay_machine_readable_in_any_language(db, paths, night, tmp_path, lang):
    # the export language changes headings only; the data formats are language-neutral
    reports.export_sessions(db, paths, [night], "json", tmp_path / "a.json", lang=lang)
    reports.export_sessions(db, paths, [night], "csv", tmp_path / "a.csv", lang=lang)
    doc = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert doc["started_at"] == "2026-11-21T23:00:00+07:00" and doc["timezone"] == "Asia/Jakarta"
    assert all(e["time"].endswith("+07:00") for e in doc["events"])
    rows = list(csv.DictReader(io.StringIO((tmp_path / "a.csv").read_text(encoding="utf-8"))))
    assert rows and all(r["started_at"].endswith("+07:00") for r in rows)
    lengths = [r["length_mm"] for r in rows if r["length_mm"]]
    assert lengths and all("," not in v for v in lengths)
    [float(v) for v in lengths]                               # decimal point, parseable
    datetime.fromisoformat(rows[0]["started_at"])
