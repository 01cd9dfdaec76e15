"""PDF export (fpdf2): summary, chart, and the flagged captures with their overlays."""
from __future__ import annotations

import io
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths
from core.platform.storage import (
    utcnow,
)
from core.reports.common import Period, Progress, _image_file, _noop, _short, defect_and_review_totals
from core.reports.recap import SHIFT_NAMES, shift_of

log = get("reports")


def _crop_thumb(path: Path, bbox: list[float], max_side: int) -> Optional[bytes]:
    import cv2
    import numpy as np
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    x1, y1, x2, y2 = (int(round(v)) for v in bbox)
    h, w = img.shape[:2]
    crop = img[max(0, y1):min(h, y2), max(0, x1):min(w, x2)]
    if crop.size == 0:
        return None
    s = min(1.0, max_side / max(crop.shape[:2]))
    if s < 1.0:
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * s)), max(1, int(crop.shape[0] * s))))
    ok, buf = cv2.imencode(".png", crop)
    return bytes(np.asarray(buf).tobytes()) if ok else None


# --- PDF ---------------------------------------------------------------------------------
FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path(__file__).resolve().parents[2] / ".yolo")


MAX_FLAGGED = 300          # flagged captures printed in one report (the rest are counted)


def _chart_png(logs: list[dict[str, Any]], lang: str, tz: str) -> bytes:
    """The report's four charts as one PNG (matplotlib, no browser in the export path)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    _ = i18n.translator(lang)
    fig = Figure(figsize=(10, 6.6), dpi=100)
    (a1, a2), (a3, a4) = fig.subplots(2, 2)
    names = [lg["name"][:14] for lg in logs][:20]
    xs = range(len(names))
    a1.bar([x - 0.2 for x in xs], [lg["target"] for lg in logs][:20], 0.4, label=_("Target"), color="#9DB4D3")
    a1.bar([x + 0.2 for x in xs], [lg["count"] for lg in logs][:20], 0.4, label=_("Count"), color="#2F5D9B")
    a1.set_xticks(list(xs))
    a1.set_xticklabels(names, rotation=30, ha="right", fontsize=7)
    a1.set_title(_("Target vs actual"), fontsize=10)
    a1.legend(fontsize=7)
    types, reviews = defect_and_review_totals(logs)
    if types:
        items = sorted(types.items(), key=lambda kv: kv[1])
        a2.barh([t for t, _n in items], [n for _t, n in items], color="#C8553D")
        a2.tick_params(labelsize=7)
    else:
        a2.text(0.5, 0.5, _("No defects"), ha="center", va="center")
        a2.set_axis_off()
    a2.set_title(_("Defect types"), fontsize=10)
    vals = [reviews[k] for k in ("approved", "rejected", "pending")]
    if sum(vals):
        a3.pie(vals, labels=[_("approved"), _("rejected"), _("pending")], autopct="%1.0f%%",
               colors=["#2E9E44", "#D33F3F", "#A0A0A0"], textprops={"fontsize": 7})
    else:
        a3.text(0.5, 0.5, _("No captures"), ha="center", va="center")
        a3.set_axis_off()
    a3.set_title(_("Approve / reject"), fontsize=10)
    if len(logs) == 1:   # one session: its count over time; a range: sheets per day and shift
        ev = [e for e in logs[0]["events"] if e["time"]]
        if ev:
            a4.step([datetime.fromisoformat(e["time"]).replace(tzinfo=None) for e in ev],
                    [e["count_after"] for e in ev], where="post", color="#2F5D9B")
            a4.axhline(logs[0]["target"], ls=":", color="#888")
        a4.set_title(_("Count over time") + f" ({tz})", fontsize=10)
        for lab in a4.get_xticklabels():
            lab.set_rotation(30)
    else:
        per: dict[str, Counter[str]] = defaultdict(Counter)
        for lg in logs:
            for e in lg["events"]:
                d, sh = shift_of(datetime.fromisoformat(e["time"]).replace(tzinfo=None))
                per[d.isoformat()][sh] += e["delta"]
        days = sorted(per)
        bottom = [0] * len(days)
        for sh, col in zip(SHIFT_NAMES, ("#2F5D9B", "#9DB4D3", "#C8553D")):
            vals = [per[d][sh] for d in days]
            a4.bar([d[5:] for d in days], vals, bottom=bottom, color=col, label=_("Shift") + f" {sh}")
            bottom = [b + v for b, v in zip(bottom, vals)]
        a4.legend(fontsize=6)
        a4.set_title(_("Sheets per day and shift"), fontsize=10)
    a4.tick_params(labelsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _overlay_jpeg(paths: Paths, lg: dict[str, Any], cap: dict[str, Any], defects: list[dict[str, Any]],
                  max_side: int = 520) -> Optional[bytes]:
    """The capture with its defect masks tinted and boxes drawn (falls back to the annotated copy)."""
    import cv2
    import numpy as np
    src = _image_file(paths, lg, cap["file"]) or _image_file(paths, lg, cap["annotated"])
    if src is None:
        return None
    # big captures: let the JPEG decoder scale down (much faster than decode + resize)
    red = 4 if max(cap["width"], cap["height"]) >= 4 * max_side else (
        2 if max(cap["width"], cap["height"]) >= 2 * max_side else 1)
    flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4}[red]
    img = cv2.imread(str(src), flag)
    if img is None:
        return None
    h, w = img.shape[:2]
    lw = max(1, round(max(h, w) / 250))
    for d in defects:
        x1, y1, x2, y2 = (int(round(v / red)) for v in d["bbox"])
        mp = _image_file(paths, lg, d.get("mask", ""))
        m = cv2.imread(str(mp), cv2.IMREAD_GRAYSCALE) if mp else None
        if m is not None:
            full = np.zeros((h, w), np.uint8)
            if m.shape == (h, w):
                full = m
            elif 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h:
                full[y1:y2, x1:x2] = cv2.resize(m, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
            sel = full > 127
            img[sel] = (0.5 * img[sel] + 0.5 * np.array([0, 0, 255])).astype(np.uint8)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), lw)
        cv2.putText(img, d["type"], (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * lw, (0, 0, 255), lw)
    s = min(1.0, max_side / max(h, w))
    if s < 1.0:
        img = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(buf.tobytes()) if ok else None


def _pdf_font(pdf: Any) -> tuple[str, Callable[[str], str]]:
    """DejaVu (Unicode: session names as typed, °, mm²) when installed, else Helvetica."""
    for d in FONT_DIRS:
        reg, bold = d / "DejaVuSans.ttf", d / "DejaVuSans-Bold.ttf"
        if reg.is_file():
            pdf.add_font("dejavu", "", str(reg))
            pdf.add_font("dejavu", "B", str(bold if bold.is_file() else reg))
            return "dejavu", lambda s: s
    return "helvetica", lambda s: s.encode("latin-1", "replace").decode("latin-1")


def render_pdf(paths: Paths, logs: list[dict[str, Any]], period: Optional[Period], lang: str, tz: str,
               progress: Progress = _noop, max_flagged: int = MAX_FLAGGED) -> bytes:
    """PDF report: summary table, charts, then pages of flagged captures (rejected or with
    defects) with their defect overlays. Headings follow ``lang``."""
    from fpdf import FPDF
    _ = i18n.translator(lang)
    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=14)
    font, clean = _pdf_font(pdf)
    generated = i18n.fmt_dt(utcnow(), tz)
    pdf.set_title(clean(_("Production report")))
    pdf.set_creator("Metal Sheet Monitor")

    def footer_text() -> str:
        return clean(_("Metal Sheet Monitor") + " · " + _("Generated") + " " + generated)

    pdf.footer = lambda: (pdf.set_y(-10), pdf.set_font(font, "", 7), pdf.set_text_color(120),  # type: ignore[method-assign]
                          pdf.cell(0, 5, footer_text() + f"   {pdf.page_no()}", align="R"),
                          pdf.set_text_color(0))
    pdf.add_page()
    pdf.set_font(font, "B", 18)
    pdf.cell(0, 10, clean(_("Production report")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 10)
    what = period.label() if period else f'{logs[0]["name"]} ({logs[0]["session_id"]})'
    pdf.cell(0, 6, clean(_("Period") + ": " + what), new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, clean(_("Times: {zone}").format(zone=tz)), new_x="LMARGIN", new_y="NEXT")
    tot = {k: sum(lg["summary"][k] for lg in logs) for k in ("captures", "approved", "rejected", "pending", "defects")}
    count, target = sum(lg["count"] for lg in logs), sum(lg["target"] for lg in logs)
    pdf.ln(2)
    pdf.set_font(font, "B", 11)
    pdf.cell(0, 7, clean(_("Summary")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(font, "", 10)
    lines = [(_("Sessions"), str(len(logs))), (_("Sheets counted / target"), f"{count} / {target}"),
             (_("Captures"), str(tot["captures"])),
             (_("Approved / rejected / pending"), f'{tot["approved"]} / {tot["rejected"]} / {tot["pending"]}'),
             (_("Defects"), str(tot["defects"]))]
    for k, v in lines:
        pdf.cell(70, 6, clean(k))
        pdf.cell(0, 6, clean(v), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    cols = [(_("Name"), 38), (_("Started"), 34), (_("Finished"), 34), (_("Target"), 14), (_("Count"), 14),
            (_("Status"), 18), (_("Rejected"), 17), (_("Defects"), 17)]

    def header_row() -> None:
        pdf.set_font(font, "B", 8)
        pdf.set_fill_color(221, 228, 238)
        for h, wd in cols:
            pdf.cell(wd, 6, clean(h), border=1, fill=True)
        pdf.ln()
        pdf.set_font(font, "", 8)

    header_row()
    for lg in logs:
        if pdf.get_y() > 275:
            pdf.add_page()
            header_row()
        sm = lg["summary"]
        row = [lg["name"][:24], _short(lg["started_at"]), _short(lg["finished_at"]), str(lg["target"]),
               str(lg["count"]), _(lg["status"]), str(sm["rejected"]), str(sm["defects"])]
        over = lg["count"] != lg["target"]
        for (h, wd), v in zip(cols, row):
            if over and h == _("Count"):
                pdf.set_text_color(200, 30, 30)   # miscount stands out
            pdf.cell(wd, 5.5, clean(v), border=1)
            pdf.set_text_color(0)
        pdf.ln()
    progress(0.4, "summary")
    # charts
    png = _chart_png(logs, lang, tz)
    if pdf.get_y() > 150:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font(font, "B", 11)
    pdf.cell(0, 7, clean(_("Charts")), new_x="LMARGIN", new_y="NEXT")
    pdf.image(io.BytesIO(png), x=10, w=190)
    progress(0.5, "charts")
    # flagged captures, 2 x 3 per page
    flagged = [(lg, c) for lg in logs for c in lg["captures"] if c["review"] == "rejected" or c["defects"]]
    shown = flagged[:max_flagged]
    by_cap: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for lg in logs:
        for d in lg["defects_found"]:
            by_cap[(lg["session_id"], d["capture_index"])].append(d)
    cell_w, cell_h, img_h = 93.0, 86.0, 70.0
    for i, (lg, c) in enumerate(shown):
        k = i % 6
        if k == 0:
            pdf.add_page()
            pdf.set_font(font, "B", 12)
            title = _("Flagged captures") + f" ({i + 1}–{min(i + 6, len(shown))} / {len(flagged)})"
            pdf.cell(0, 8, clean(title), new_x="LMARGIN", new_y="NEXT")
        x = 10 + (k % 2) * (cell_w + 4)
        y = 22 + (k // 2) * cell_h
        defects = by_cap.get((lg["session_id"], c["index"]), [])
        jpg = _overlay_jpeg(paths, lg, c, defects)
        if jpg:
            pdf.image(io.BytesIO(jpg), x=x, y=y, w=cell_w, h=img_h, keep_aspect_ratio=True)
        else:
            pdf.set_xy(x, y + img_h / 2)
            pdf.set_font(font, "", 8)
            pdf.cell(cell_w, 5, clean(_("image missing")), align="C")
        pdf.set_xy(x, y + img_h + 1)
        pdf.set_font(font, "B", 8)
        colour = (200, 30, 30) if c["review"] == "rejected" else (0, 0, 0)
        pdf.set_text_color(*colour)
        cap_line = f'{lg["name"]} · #{c["index"]} · {_(c["review"])}'
        # every line is fitted to the cell's width: text never runs past the page edge
        pdf.cell(cell_w, 4.5, _fit_lines(pdf, clean(cap_line), cell_w)[0], new_x="LEFT", new_y="NEXT")
        pdf.set_text_color(0)
        pdf.set_font(font, "", 7.5)
        num = i18n.fmt_number   # the reader's language: 1.234,5 in Bahasa Indonesia
        size = (f' · {num(c["length_mm"], lang, 1)} × {num(c["width_mm"], lang, 1)} mm'
                if c["length_mm"] is not None and c["width_mm"] is not None else "")
        kinds = ", ".join(f'{i18n.defect_label(d["type"], lang)} {num(d["score"], lang, 2)}' for d in defects) or _("no defects")
        pdf.cell(cell_w, 4, _fit_lines(pdf, clean(_short(c["captured_at"]) + size), cell_w)[0],
                 new_x="LEFT", new_y="NEXT")
        for line in _fit_lines(pdf, clean(kinds), cell_w, max_lines=2):
            pdf.cell(cell_w, 3.6, line, new_x="LEFT", new_y="NEXT")
        if i % 20 == 0:
            progress(0.5 + 0.45 * (i + 1) / max(1, len(shown)), "flagged")
    if len(flagged) > len(shown):
        pdf.add_page()
        pdf.set_font(font, "", 10)
        pdf.cell(0, 8, clean(_("{n} more flagged captures are in the Excel and JSON exports.")
                             .format(n=len(flagged) - len(shown))))
    progress(0.97, "pdf")
    return bytes(pdf.output())


def _fit_lines(pdf: Any, text: str, width: float, max_lines: int = 1) -> list[str]:
    """``text`` wrapped at spaces into at most ``max_lines`` lines no wider than ``width`` in
    the current font; what does not fit ends in "…".

    >>> from fpdf import FPDF
    >>> p = FPDF(); p.add_page(); p.set_font("helvetica", "", 8)
    >>> _fit_lines(p, "scratches 0.91, pitted 0.80, inclusion 0.75", 30, 2)
    ['scratches 0.91, pitted', '0.80, inclusion 0.75']
    >>> _fit_lines(p, "a very long session name that cannot fit", 20)
    ['a very long...']
    """
    ell = "…" if pdf.font_family != "helvetica" else "..."
    words, lines, cur = text.split(" "), [], ""
    while words:
        w = words[0]
        cand = (cur + " " + w) if cur else w
        if pdf.get_string_width(cand) <= width:
            cur = cand
            words.pop(0)
            continue
        if not cur:                                   # one word wider than the cell
            cur = w
            words.pop(0)
        lines.append(cur)
        cur = ""
        if len(lines) == max_lines:
            break
    if cur and len(lines) < max_lines:
        lines.append(cur)
    if words or (lines and pdf.get_string_width(lines[-1]) > width):
        last = lines[-1] if lines else ""
        while last and pdf.get_string_width(last + ell) > width:
            last = last[:-1]
        lines[-1:] = [last.rstrip(" ,") + ell]
    return lines
