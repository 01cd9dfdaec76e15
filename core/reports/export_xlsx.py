"""Excel export (xlsxwriter): summary, per-session sheets with thumbnails, defects."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Optional

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths
from core.platform.storage import (
    utcnow,
)
from core.reports.common import Period, Progress, _image_file, _iso, _local_naive, _noop, defect_and_review_totals
from core.reports.export_pdf import _crop_thumb

log = get("reports")


def _thumb(path: Optional[Path], max_side: int, fmt: str = ".png", boxes: list[list[float]] | None = None) -> Optional[bytes]:
    """A small encoded copy of an image (optionally with defect boxes drawn), or None."""
    if path is None:
        return None
    import cv2
    import numpy as np
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        return None
    for b in boxes or []:
        x1, y1, x2, y2 = (int(round(v)) for v in b)
        cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), max(1, img.shape[1] // 200))
    h, w = img.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        img = cv2.resize(img, (max(1, int(w * scale)), max(1, int(h * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(fmt, img, [cv2.IMWRITE_JPEG_QUALITY, 80] if fmt == ".jpg" else [])
    return bytes(np.asarray(buf).tobytes()) if ok else None


def _sheet_name(text: str, used: set[str]) -> str:
    name = "".join(ch for ch in text if ch not in "[]:*?/\\")[:31] or "Sheet"
    base, k = name, 2
    while name.lower() in used:
        name = f"{base[:28]} {k}"
        k += 1
    used.add(name.lower())
    return name


def render_xlsx(paths: Paths, logs: list[dict[str, Any]], period: Optional[Period], lang: str, tz: str,
                progress: Progress = _noop, thumb_px: int = 48) -> bytes:
    """Excel workbook: summary (with native charts), count events (line chart), captures,
    defects with embedded thumbnails, measurements. Headings follow ``lang``."""
    import xlsxwriter
    _ = i18n.translator(lang)
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True, "strings_to_urls": False})
    bold = wb.add_format({"bold": True})
    title = wb.add_format({"bold": True, "font_size": 16})
    head = wb.add_format({"bold": True, "bg_color": "#DDE4EE", "border": 1, "text_wrap": True, "valign": "top"})
    dtf = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    pct = wb.add_format({"num_format": "0.0%"})
    num2 = wb.add_format({"num_format": "0.00"})
    used: set[str] = set()
    zone_note = _("Times: {zone}").format(zone=tz)

    def table(ws: Any, row: int, headers: list[str], widths: list[int]) -> None:
        for j, (h, wd) in enumerate(zip(headers, widths)):
            ws.write(row, j, h, head)
            ws.set_column(j, j, wd)

    # --- Summary ---------------------------------------------------------------
    ws = wb.add_worksheet(_sheet_name(_("Summary"), used))
    ws.write(0, 0, _("Production report"), title)
    ws.write(1, 0, _("Period") + ": " + (period.label() if period else logs[0]["name"]))
    ws.write(2, 0, _("Generated") + ": " + (_iso(utcnow(), tz) or ""))
    ws.write(3, 0, zone_note)
    hdr = [_("Session"), _("Name"), _("Started"), _("Finished"), _("Target"), _("Count"), _("Difference"),
           _("Status"), _("Captures"), _("Approved"), _("Rejected"), _("Pending"), _("Defects"),
           _("Manual corrections"), _("Approve rate")]
    table(ws, 5, hdr, [24, 18, 19, 19, 8, 8, 10, 10, 9, 9, 9, 9, 8, 11, 10])
    r = 6
    for lg in logs:
        sm = lg["summary"]
        ws.write(r, 0, lg["session_id"])
        ws.write(r, 1, lg["name"])
        for j, key in ((2, "started_at"), (3, "finished_at")):
            v = _local_naive(lg[key])
            ws.write_datetime(r, j, v, dtf) if v else ws.write_blank(r, j, None)
        for j, v in enumerate([lg["target"], lg["count"], sm["difference"]], start=4):
            ws.write_number(r, j, v)
        ws.write(r, 7, _(lg["status"]))
        for j, v in enumerate([sm["captures"], sm["approved"], sm["rejected"], sm["pending"], sm["defects"],
                               sm["manual_corrections"]], start=8):
            ws.write_number(r, j, v)
        ws.write_formula(r, 14, f"=IF(J{r + 1}+K{r + 1}=0,\"\",J{r + 1}/(J{r + 1}+K{r + 1}))", pct)
        r += 1
    last = r - 1
    ws.write(r, 0, _("Total"), bold)
    for j in (4, 5, 6, 8, 9, 10, 11, 12, 13):
        col = xlsxwriter.utility.xl_col_to_name(j)
        ws.write_formula(r, j, f"=SUM({col}7:{col}{r})", bold)
    sname = ws.get_name()
    # chart data block (defect types, reviews) to the right of the table
    types, reviews = defect_and_review_totals(logs)
    dr = r + 3
    ws.write(dr, 0, _("Defect type"), head)
    ws.write(dr, 1, _("Defects"), head)
    for i, (t, n) in enumerate(sorted(types.items(), key=lambda kv: -kv[1])):
        ws.write(dr + 1 + i, 0, t)
        ws.write_number(dr + 1 + i, 1, n)
    rr = dr
    ws.write(rr, 3, _("Review"), head)
    ws.write(rr, 4, _("Captures"), head)
    for i, k in enumerate(("approved", "rejected", "pending")):
        ws.write(rr + 1 + i, 3, _(k))
        ws.write_number(rr + 1 + i, 4, reviews[k])

    ch = wb.add_chart({"type": "column"})
    ch.add_series({"name": _("Target"), "categories": [sname, 6, 1, last, 1], "values": [sname, 6, 4, last, 4]})
    ch.add_series({"name": _("Count"), "categories": [sname, 6, 1, last, 1], "values": [sname, 6, 5, last, 5]})
    ch.set_title({"name": _("Target vs actual")})
    ch.set_size({"width": 560, "height": 300})
    ws.insert_chart(dr + 10, 0, ch)
    if types:
        ct = wb.add_chart({"type": "bar"})
        ct.add_series({"name": _("Defects"), "categories": [sname, dr + 1, 0, dr + len(types), 0],
                       "values": [sname, dr + 1, 1, dr + len(types), 1]})
        ct.set_title({"name": _("Defect types")})
        ct.set_legend({"none": True})
        ct.set_size({"width": 480, "height": 300})
        ws.insert_chart(dr + 10, 6, ct)
    cp = wb.add_chart({"type": "pie"})
    cp.add_series({"name": _("Review"), "categories": [sname, rr + 1, 3, rr + 3, 3],
                   "values": [sname, rr + 1, 4, rr + 3, 4], "data_labels": {"percentage": True},
                   "points": [{"fill": {"color": "#2E9E44"}}, {"fill": {"color": "#D33F3F"}},
                              {"fill": {"color": "#A0A0A0"}}]})
    cp.set_title({"name": _("Approve / reject")})
    cp.set_size({"width": 400, "height": 300})
    ws.insert_chart(dr + 10, 13, cp)
    progress(0.4, "summary")

    # --- Count events + line chart -----------------------------------------------
    we = wb.add_worksheet(_sheet_name(_("Count events"), used))
    table(we, 0, [_("Session"), _("Time"), _("Kind"), _("Change"), _("Count"), _("Reason"), _("User"),
                  _("Sheet #"), _("Confidence"), _("Technical detail")], [24, 19, 9, 8, 8, 30, 12, 8, 10, 40])
    r = 1
    line = wb.add_chart({"type": "scatter", "subtype": "straight"})
    for lg in logs:
        first = r
        for e in lg["events"]:
            we.write(r, 0, lg["session_id"])
            v = _local_naive(e["time"])
            we.write_datetime(r, 1, v, dtf) if v else None
            we.write(r, 2, _(e["kind"]))
            we.write_number(r, 3, e["delta"])
            we.write_number(r, 4, e["count_after"])
            # an automatic count's reason is the engine's own English ("texture NCC -0.02"): the
            # reader gets words in their language, the internals go to the last column
            if e["kind"] == "auto":
                we.write(r, 5, _("Sheet detected by the camera"))
                we.write(r, 9, e["reason"] or "")
            else:
                we.write(r, 5, e["reason"])
            we.write(r, 6, e["user"])
            if e["capture_index"] is not None:
                we.write_number(r, 7, e["capture_index"])
            if e["confidence"] is not None:
                we.write_number(r, 8, e["confidence"], num2)
            r += 1
        if r > first and len(line.series) < 8:   # a readable chart: at most 8 sessions
            line.add_series({"name": lg["name"], "categories": [we.get_name(), first, 1, r - 1, 1],
                             "values": [we.get_name(), first, 4, r - 1, 4], "marker": {"type": "none"}})
    line.set_title({"name": _("Count over time")})
    line.set_x_axis({"name": _("Time") + f" ({tz})", "date_axis": True, "num_format": "hh:mm"})
    line.set_y_axis({"name": _("Count")})
    line.set_size({"width": 640, "height": 320})
    if line.series:
        we.insert_chart(1, 10, line)
    we.freeze_panes(1, 0)
    progress(0.5, "events")

    # --- Captures ------------------------------------------------------------------
    wc = wb.add_worksheet(_sheet_name(_("Captures"), used))
    table(wc, 0, [_("Session"), _("Sheet #"), _("Captured"), _("File"), _("Review"), _("Reviewed by"),
                  _("Defects"), _("Defect types"), _("Length (mm)"), _("Width (mm)")],
          [24, 8, 19, 28, 10, 12, 8, 24, 11, 11])
    r = 1
    for lg in logs:
        for c in lg["captures"]:
            wc.write(r, 0, lg["session_id"])
            wc.write_number(r, 1, c["index"])
            v = _local_naive(c["captured_at"])
            wc.write_datetime(r, 2, v, dtf) if v else None
            wc.write(r, 3, c["file"])
            wc.write(r, 4, _(c["review"]))
            wc.write(r, 5, c["reviewed_by"])
            wc.write_number(r, 6, c["defects"])
            wc.write(r, 7, ", ".join(c["defect_types"]))
            if c["length_mm"] is not None:
                wc.write_number(r, 8, c["length_mm"], num2)
            if c["width_mm"] is not None:
                wc.write_number(r, 9, c["width_mm"], num2)
            r += 1
    if r > 1:
        wc.autofilter(0, 0, r - 1, 9)
    wc.freeze_panes(1, 0)
    progress(0.6, "captures")

    # --- Defects with thumbnails ---------------------------------------------------------
    wd = wb.add_worksheet(_sheet_name(_("Defects"), used))
    table(wd, 0, [_("Thumbnail"), _("Session"), _("Sheet #"), _("Type"), _("Score"), "x1", "y1", "x2", "y2",
                  _("Area (px)"), _("Area (mm²)"), _("Crop file"), _("Mask file"), _("Model")],
          [int(thumb_px / 6) + 2, 24, 8, 16, 7, 6, 6, 6, 6, 9, 9, 28, 28, 14])
    r = 1
    n_def = sum(len(lg["defects_found"]) for lg in logs) or 1
    done = 0
    for lg in logs:
        for d in lg["defects_found"]:
            wd.set_row(r, thumb_px * 0.75 + 4)   # points; the thumbnail fits inside the row
            src = _image_file(paths, lg, d["crop"])
            data = _thumb(src, thumb_px) if src else None
            if data is None:  # no crop on disk: cut the box out of the capture instead
                cap = _image_file(paths, lg, d["capture_file"])
                data = _crop_thumb(cap, d["bbox"], thumb_px) if cap else None
            if data:
                wd.insert_image(r, 0, "thumb.png", {"image_data": io.BytesIO(data), "x_offset": 2, "y_offset": 2,
                                                     "object_position": 1})
            wd.write(r, 1, lg["session_id"])
            wd.write_number(r, 2, d["capture_index"])
            wd.write(r, 3, d["type"])
            wd.write_number(r, 4, d["score"], num2)
            for j, v in enumerate(d["bbox"], start=5):
                wd.write_number(r, j, v)
            if d.get("area_px") is not None:
                wd.write_number(r, 9, d["area_px"])
            if d.get("area_mm2") is not None:
                wd.write_number(r, 10, d["area_mm2"], num2)
            wd.write(r, 11, d["crop"])
            wd.write(r, 12, d["mask"])
            wd.write(r, 13, d["model_version"])
            r += 1
            done += 1
            if done % 50 == 0:
                progress(0.6 + 0.3 * done / n_def, "defects")
    wd.freeze_panes(1, 0)

    # --- Measurements ------------------------------------------------------------------
    wm = wb.add_worksheet(_sheet_name(_("Measurements"), used))
    table(wm, 0, [_("Session"), _("Sheet #"), _("Length (mm)"), _("Width (mm)"), _("Length (px)"), _("Width (px)"),
                  _("Angle (°)"), _("mm per px"), _("Stack height (mm)"), _("Parallax compensated"), _("Measured")],
          [24, 8, 11, 11, 11, 11, 9, 10, 12, 12, 19])
    r = 1
    for lg in logs:
        for m in lg["measurements"]:
            wm.write(r, 0, lg["session_id"])
            wm.write_number(r, 1, m["capture_index"])
            for j, k in enumerate(("length_mm", "width_mm", "length_px", "width_px", "angle_deg", "mm_per_px",
                                   "stack_height_mm"), start=2):
                if m.get(k) is not None:
                    wm.write_number(r, j, m[k], num2 if k != "mm_per_px" else None)
            wm.write(r, 9, _("yes") if m["parallax_compensated"] else _("no"))
            v = _local_naive(m.get("measured_at"))
            wm.write_datetime(r, 10, v, dtf) if v else None
            r += 1
    wm.freeze_panes(1, 0)
    wb.close()
    progress(0.95, "xlsx")
    return buf.getvalue()
