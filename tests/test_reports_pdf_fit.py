"""The PDF's flagged-capture pages keep every line inside the page and never cut a word: a
long session name was cut at 20 characters ("Night shift coil bat") and a capture's defect
list at 70 ("inclusion 0,"); now lines wrap at words and what does not fit ends in "…"."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pypdf

import core.reports as reports
from core.reports.export_pdf import _pdf_font
from core.synthetic.session import make_synthetic_session


def test_flagged_capture_text_stays_inside_the_page(db, paths, tmp_path):
    from fpdf import FPDF

    from core.platform.storage import CaptureRow, DefectRow
    sid = make_synthetic_session(db, paths, 4, name="Night shift coil batch 2026-11-29 line 3 customer PT Baja",
                                 started_at=datetime(2026, 11, 19, 1, tzinfo=timezone.utc), defect_every=1, seed=4)
    with db.session() as s:       # one capture with every defect class, several times
        cap = s.query(CaptureRow).filter_by(session_id=sid, index=2).one()
        for k in range(12):
            s.add(DefectRow(capture_id=cap.id, type=reports.DEFECT_TYPES[k % 6], score=0.5 + k / 40,
                            x1=1, y1=1, x2=9, y2=9, area_px=10, segmenter="model-free"))
    out = tmp_path / "r.pdf"
    reports.export_sessions(db, paths, [sid], "pdf", out, lang="id")
    reader = pypdf.PdfReader(out)
    measure = FPDF()
    measure.add_page()
    font, _clean = _pdf_font(measure)
    too_wide = []
    for page in reader.pages[1:]:                       # the flagged-capture pages
        page_w = float(page.mediabox.width)
        pieces = []
        page.extract_text(visitor_text=lambda t, cm, tm, fd, fs: pieces.append((t, tm[4], fs)))
        for text, x_pt, size in pieces:
            text = text.strip("\n")
            if not text.strip():
                continue
            measure.set_font(font, "", size)
            w_pt = measure.get_string_width(text) * 72 / 25.4
            if x_pt + w_pt > page_w - 8:                # 8 pt ≈ 3 mm inside the edge
                too_wide.append((text, round(x_pt + w_pt), round(page_w)))
            if text.startswith("Night shift"):           # the name: whole, or visibly shortened
                assert "customer PT Baja" in text or "…" in text, text
            assert not re.search(r"(^|\s)\d,$", text), text   # never a number cut in half ("inclusion 0,")
    assert not too_wide, too_wide[:3]
    text = "\n".join(p.extract_text() for p in reader.pages[1:])
    assert "Goresan" in text                            # defect classes in the reader's language
