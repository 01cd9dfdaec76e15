"""Calibration (engineers): pixels → mm from a reference line, the lens from checkerboard
frames, a tilted camera's plane from 4 points, K typed directly, the camera geometry used
for parallax, and a history with roll back. A thin view over :mod:`core.qa.calibration`.

The frame comes from the live camera (the counting worker's latest frame), a session's
capture, or an uploaded image; the active lens model is applied to it before lines and
points are picked, as it is before measuring.
"""
from __future__ import annotations

import copy
from typing import Callable

import cv2
import numpy as np
import streamlit as st
from sqlalchemy import select

from core.platform.paths import safe_join
from core.platform.storage import CaptureRow, SessionRow
from core.qa import calibration as cal
from pages.auth_gate import require_engineer
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
who = require_engineer(c)

st.title(_("Calibration"))

flash = st.session_state.pop("_cal_flash", None)
if flash:
    st.success(flash)


def _flash(msg: str) -> None:
    st.session_state["_cal_flash"] = msg
    st.rerun()


# --- what is active ---------------------------------------------------------------------------
active = cal.active_calibration(c.db)
settings = c.db.load_settings()
if active is None and settings.calibration.mm_per_px <= 0:
    st.warning(_("Not calibrated yet: measurements are in pixels only."))
elif active is None:
    st.info(_("Active K: {k} mm/px (entered in the settings).").format(k=c.num(settings.calibration.mm_per_px, 4)))
else:
    extras = [_(x) for x in ("lens", "plane") if (active.details or {}).get(x)]
    st.info(_("Active K: {k} mm/px · {method} · {when} · {who}").format(
        k=c.num(active.mm_per_px, 4), method=_(active.method), when=c.dt(active.created_at),
        who=active.created_by or "–") + ((" · " + _("corrected: {what}").format(what=", ".join(extras))) if extras else ""))


# --- the frame ------------------------------------------------------------------------------------
def _decode(data: bytes) -> np.ndarray | None:
    arr = np.frombuffer(data, np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_COLOR) if arr.size else None
    return img if img is not None and img.size else None


def _set_frame(img: np.ndarray) -> None:
    """A new frame: the points picked on the previous one no longer apply."""
    st.session_state["cal_frame"] = img
    for k in ("cal_line_have", "cal_line_focus", "cal_pl_have", "cal_pl_focus"):
        st.session_state.pop(k, None)


def _pick_frame() -> None:
    st.subheader(_("Frame"))
    sources = ["live", "capture", "upload"]
    labels = {"live": _("Live camera"), "capture": _("A capture"), "upload": _("Upload an image")}
    src = st.radio(_("Take the frame from"), sources, format_func=labels.get, horizontal=True, key="cal_src")
    if src == "live":
        get = getattr(c.worker, "latest_frame", None)
        frame = None
        if callable(get):
            try:
                frame = get(annotated=False)
            except Exception:       # a worker without frames or mid-restart: say so, don't crash
                frame = None
        if frame is None:
            st.info(_("No live frame now: the camera is not running. Use a capture or upload an image."))
        elif st.button(_("Take this frame"), key="cal_take_live"):
            _set_frame(np.ascontiguousarray(frame).copy())
            st.rerun()
    elif src == "capture":
        with c.db.session() as s:
            sessions = list(s.scalars(select(SessionRow).order_by(SessionRow.started_at.desc()).limit(50)))
        if not sessions:
            st.info(_("No sessions with captures yet."))
            return
        sid = st.selectbox(_("Session"), [x.id for x in sessions], key="cal_session",
                           format_func=lambda i: next(f"{x.name} · {c.dt(x.started_at)}" for x in sessions if x.id == i))
        with c.db.session() as s:
            caps = list(s.scalars(select(CaptureRow).where(CaptureRow.session_id == sid).order_by(CaptureRow.index)))
        if not caps:
            st.info(_("This session has no captures."))
            return
        cid = st.selectbox(_("Capture"), [x.id for x in caps], key="cal_capture",
                           format_func=lambda i: _("Sheet #{n}").format(n=next(x.index for x in caps if x.id == i)))
        if st.button(_("Use this capture"), key="cal_take_capture"):
            row = next(x for x in caps if x.id == cid)
            try:
                img = cv2.imread(str(safe_join(c.paths.sessions, row.path)), cv2.IMREAD_COLOR)
            except ValueError:
                img = None
            if img is None:
                st.error(_("This capture's image cannot be read."))
            else:
                _set_frame(img)
                st.rerun()
    else:
        up = st.file_uploader(_("Image (PNG or JPEG)"), type=["png", "jpg", "jpeg", "bmp"], key="cal_upload")
        if up is not None and st.button(_("Use this image"), key="cal_take_upload"):
            img = _decode(up.getvalue())
            if img is None:
                st.error(_("This file is not an image that can be read."))
            else:
                _set_frame(img)
                st.rerun()


_pick_frame()
raw = st.session_state.get("cal_frame")
lens = cal.Corrector(lens=(active.details or {}).get("lens")) if active is not None else cal.Corrector()
frame = None
if raw is not None:
    frame = lens.undistort(raw)
    fh, fw = frame.shape[:2]
    st.caption(_("Frame: {w} × {h} px").format(w=c.num(fw), h=c.num(fh)) +
               (" · " + _("lens-corrected") if frame is not raw else ""))


VIEW_W = 960          # the image sent to the browser: small enough to draw at once


def _click_view(img: np.ndarray, key: str, focus: tuple[float, float] | None,
                on_point: Callable[[float, float], None]) -> None:
    """Show ``img`` as a clickable picture (``streamlit-image-coordinates``), zoomed around
    ``focus`` at the chosen zoom; a click calls ``on_point(x, y)`` in frame pixels (pixel
    centres are integers) from the widget's callback, before the next run draws anything."""
    from streamlit_image_coordinates import streamlit_image_coordinates
    h, w = img.shape[:2]
    zoom = int(st.segmented_control(_("Zoom"), [1, 2, 4, 8], default=1, format_func=lambda z: f"{z}×",
                                    key=f"{key}_zoom") or 1)
    cw, ch = max(1, int(round(w / zoom))), max(1, int(round(h / zoom)))
    fx, fy = focus if focus is not None else (w / 2, h / 2)
    x0 = int(min(max(round(fx - cw / 2), 0), w - cw))
    y0 = int(min(max(round(fy - ch / 2), 0), h - ch))
    crop = img[y0:y0 + ch, x0:x0 + cw]
    dw = min(VIEW_W, w)
    dh = max(1, int(round(ch * dw / cw)))
    # enlarging: nearest neighbour, so single pixels stay visible to click on
    disp = cv2.resize(crop, (dw, dh), interpolation=cv2.INTER_NEAREST if dw >= cw else cv2.INTER_AREA)

    def clicked() -> None:
        v = st.session_state.get(f"{key}_img")
        if not v or v.get("unix_time") == st.session_state.get(f"{key}_t"):
            return
        st.session_state[f"{key}_t"] = v.get("unix_time")
        sx, sy = cw / float(v.get("width") or dw), ch / float(v.get("height") or dh)
        on_point(x0 + (float(v["x"]) + 0.5) * sx - 0.5, y0 + (float(v["y"]) + 0.5) * sy - 0.5)

    streamlit_image_coordinates(cv2.cvtColor(disp, cv2.COLOR_BGR2RGB), key=f"{key}_img", width=dw,
                                image_format="JPEG", jpeg_quality=90, cursor="crosshair", on_click=clicked)


def _snap(p: tuple[float, float], key: str) -> tuple[float, float]:
    if not st.session_state.get(f"{key}_snap", True):
        return p
    return cal.snap_to_edge(frame, p, radius=max(4.0, 8.0 * fw / VIEW_W / max(1, st.session_state.get(f"{key}_zoom") or 1)))


def _mark(img: np.ndarray, pts: list[tuple[float, float]], closed: bool = False) -> np.ndarray:
    out = img.copy()
    th = max(1, fw // 800)
    ip = [(int(round(x)), int(round(y))) for x, y in pts]
    if len(ip) >= 2:
        cv2.polylines(out, [np.array(ip, np.int32).reshape(-1, 1, 2)], closed, (0, 200, 255), th, cv2.LINE_AA)
    for i, p in enumerate(ip):
        cv2.drawMarker(out, p, (0, 0, 255), cv2.MARKER_CROSS, 12 * th, th, cv2.LINE_AA)
        cv2.putText(out, str(i + 1), (p[0] + 6 * th, p[1] - 6 * th), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * th,
                    (0, 0, 255), th, cv2.LINE_AA)
    return out


t_line, t_board, t_plane, t_manual, t_geo, t_hist = st.tabs([
    _("Reference line"), _("Checkerboard (lens)"), _("Plane (4 points)"), _("Enter K"), _("Camera geometry"),
    _("History")], key="cal_tabs")

# --- reference line ------------------------------------------------------------------------------
with t_line:
    if frame is None:
        st.info(_("Take a frame first."))
    else:
        st.caption(_("Click one end of the reference object, then the other (zoom in for precision; each click "
                     "snaps to the nearest edge), enter its real length, check the preview, then save."))
        o1, o2 = st.columns([2, 1])
        end = o1.radio(_("The next click sets"), [1, 2], horizontal=True, key="cal_end",
                       format_func=lambda i: _("End {n}").format(n=i))
        o2.toggle(_("Snap to the nearest edge"), value=True, key="cal_line_snap")
        p1 = (float(st.session_state.get("cal_x1", 0.0)), float(st.session_state.get("cal_y1", 0.0)))
        p2 = (float(st.session_state.get("cal_x2", 0.0)), float(st.session_state.get("cal_y2", 0.0)))
        have = st.session_state.get("cal_line_have", 0)
        shown = [p1, p2][:have] if have else []
        focus = st.session_state.get("cal_line_focus")
        def line_point(x: float, y: float, end: int = end, have: int = have) -> None:
            x, y = _snap((x, y), "cal_line")
            x, y = min(max(x, 0.0), fw - 1.0), min(max(y, 0.0), fh - 1.0)
            st.session_state.update({f"cal_x{end}": round(x, 2), f"cal_y{end}": round(y, 2),
                                     "cal_line_have": max(have, end), "cal_line_focus": (x, y),
                                     "cal_end": 2 if end == 1 else 1})

        _click_view(_mark(frame, shown), "cal_line", focus, line_point)
        q = st.columns(4)
        for i, k in enumerate(("x1", "y1", "x2", "y2")):
            q[i].number_input(k, 0.0, float(fw if k[0] == "x" else fh), step=0.5, format="%.2f", key=f"cal_{k}",
                              on_change=lambda: st.session_state.update(cal_line_have=2))
        length = st.number_input(_("Real length of the reference (mm)"), value=None, min_value=None,
                                 step=1.0, key="cal_len", placeholder=_("e.g. 1000"))
        px = float(np.hypot(p2[0] - p1[0], p2[1] - p1[1]))
        if px > 0 and length:
            st.caption(_("Line {px} px → K = {k} mm/px").format(px=c.num(px, 1), k=c.num(float(length) / px, 4)))
        if st.button(_("Save calibration"), type="primary", key="cal_line_save"):
            try:
                lc = cal.line_calibration(p1, p2, length)
                cal.save_calibration(c.db, "line", lc.mm_per_px,
                                     {"line": {"p1": list(lc.p1), "p2": list(lc.p2), "length_mm": lc.length_mm,
                                               "length_px": lc.length_px, "image_size": [fw, fh]}}, who=who)
            except cal.CalibrationError as e:
                st.error(e.translated(_) + " " + _("The previous calibration stays active."))
            except Exception as e:
                friendly_error(c, e, "Saving the calibration failed")
            else:
                _flash(_("Calibration saved: K = {k} mm/px.").format(k=c.num(lc.mm_per_px, 4)))

# --- checkerboard -----------------------------------------------------------------------------------
with t_board:
    st.caption(_("Show a printed checkerboard in several positions (corners and centre of the view, some tilted). "
                 "The lens model is applied before every measurement."))
    b = st.columns(3)
    cols = b[0].number_input(_("Inner corners across"), 3, 40, 9, key="cal_cb_cols")
    rows = b[1].number_input(_("Inner corners down"), 3, 40, 6, key="cal_cb_rows")
    square = b[2].number_input(_("Square size (mm)"), value=25.0, step=1.0, key="cal_cb_square")
    frames: list = st.session_state.setdefault("cal_cb_frames", [])
    a1, a2 = st.columns(2)
    if a1.button(_("Add the current frame"), disabled=raw is None, key="cal_cb_add"):
        frames.append(raw.copy())       # the raw frame: the lens model is what we are computing
    if a2.button(_("Clear the frames"), disabled=not frames, key="cal_cb_clear"):
        frames.clear()
    ups = st.file_uploader(_("Or upload frames"), type=["png", "jpg", "jpeg", "bmp"], accept_multiple_files=True,
                           key="cal_cb_upload")
    uploaded = []
    for u in ups or []:
        img = _decode(u.getvalue())
        if img is None:
            st.warning(_("{name} is not an image that can be read; skipped.").format(name=u.name))
        else:
            uploaded.append(img)
    all_frames = frames + uploaded
    st.caption(_("{n} frame(s) ready.").format(n=c.num(len(all_frames))))
    plane_opts = [-1] + list(range(len(all_frames)))
    plane_i = st.selectbox(_("The board lies flat on the calibration plane in frame"), plane_opts, key="cal_cb_plane",
                           format_func=lambda i: _("none (keep the current K)") if i < 0 else f"#{i + 1}")
    if st.button(_("Calibrate the lens"), type="primary", disabled=not all_frames, key="cal_cb_run"):
        try:
            with st.spinner(_("Finding the board and calibrating…")):
                lc = cal.checkerboard_calibration(all_frames, (int(cols), int(rows)), square,
                                                  plane_frame=None if plane_i < 0 else int(plane_i))
            k = lc.mm_per_px or (active.mm_per_px if active is not None else settings.calibration.mm_per_px)
            if not k:
                raise cal.CalibrationError("No K yet: pick the frame in which the board lies on the calibration "
                                           "plane, or calibrate a reference line first.")
            cal.save_calibration(c.db, "checkerboard", k, {"lens": lc.to_details()}, who=who)
        except cal.CalibrationError as e:
            st.error(e.translated(_) + " " + _("The previous calibration stays active."))
        except Exception as e:
            friendly_error(c, e, "The lens calibration failed")
        else:
            frames.clear()
            _flash(_("Lens calibrated from {n} frame(s), reprojection error {e} px; K = {k} mm/px.").format(
                n=c.num(len(lc.frames_used)), e=c.num(lc.rms_px, 2), k=c.num(k, 4)))

# --- plane -----------------------------------------------------------------------------------------------
with t_plane:
    if frame is None:
        st.info(_("Take a frame first."))
    else:
        st.caption(_("For a camera that is not perfectly perpendicular: the 4 corners of a known rectangle lying on "
                     "the calibration plane, in order around it."))
        o1, o2 = st.columns([2, 1])
        nxt = o1.radio(_("The next click sets"), [0, 1, 2, 3], horizontal=True, key="cal_pl_next",
                       format_func=lambda i: _("Point {n}").format(n=i + 1))
        o2.toggle(_("Snap to the nearest edge"), value=False, key="cal_pl_snap")
        have = st.session_state.get("cal_pl_have", 0)
        pts = [(float(st.session_state.get(f"cal_pl_x{i}", 0.0)), float(st.session_state.get(f"cal_pl_y{i}", 0.0)))
               for i in range(4)]
        def plane_point(x: float, y: float, nxt: int = nxt, have: int = have) -> None:
            x, y = _snap((x, y), "cal_pl")
            x, y = min(max(x, 0.0), fw - 1.0), min(max(y, 0.0), fh - 1.0)
            st.session_state.update({f"cal_pl_x{nxt}": round(x, 2), f"cal_pl_y{nxt}": round(y, 2),
                                     "cal_pl_have": max(have, nxt + 1), "cal_pl_focus": (x, y),
                                     "cal_pl_next": (nxt + 1) % 4})

        _click_view(_mark(frame, pts[:have], closed=have == 4), "cal_pl", st.session_state.get("cal_pl_focus"),
                    plane_point)
        for i in range(4):
            q = st.columns(2)
            q[0].number_input(_("Point {n} x").format(n=i + 1), 0.0, float(fw), step=0.5, format="%.2f",
                              key=f"cal_pl_x{i}", on_change=lambda: st.session_state.update(cal_pl_have=4))
            q[1].number_input(_("Point {n} y").format(n=i + 1), 0.0, float(fh), step=0.5, format="%.2f",
                              key=f"cal_pl_y{i}", on_change=lambda: st.session_state.update(cal_pl_have=4))
        r1, r2 = st.columns(2)
        wmm = r1.number_input(_("Rectangle side 1 → 2 (mm)"), value=None, step=1.0, key="cal_pl_w")
        hmm = r2.number_input(_("Rectangle side 2 → 3 (mm)"), value=None, step=1.0, key="cal_pl_h")
        if st.button(_("Save plane calibration"), type="primary", key="cal_pl_save"):
            try:
                pc = cal.plane_calibration(pts, wmm, hmm, (fw, fh))
                cal.save_calibration(c.db, "plane", pc.mm_per_px, {"plane": pc.to_details()}, who=who)
            except cal.CalibrationError as e:
                st.error(e.translated(_) + " " + _("The previous calibration stays active."))
            except Exception as e:
                friendly_error(c, e, "Saving the calibration failed")
            else:
                _flash(_("Plane calibration saved: the top view has K = {k} mm/px.").format(k=c.num(pc.mm_per_px, 4)))

# --- K typed directly -------------------------------------------------------------------------------------------
with t_manual:
    st.caption(_("If you know K (mm per pixel at the calibration plane), enter it here."))
    k_in = st.number_input(_("K (mm per pixel)"), value=None, step=0.01, format="%.5f", key="cal_k")
    if st.button(_("Save K"), key="cal_k_save"):
        try:
            if k_in is None:
                raise cal.CalibrationError("Enter K first.")
            cal.save_calibration(c.db, "manual", float(k_in), {}, who=who)
        except cal.CalibrationError as e:
            st.error(e.translated(_) + " " + _("The previous calibration stays active."))
        else:
            _flash(_("Calibration saved: K = {k} mm/px.").format(k=c.num(float(k_in), 4)))

# --- camera geometry (parallax) --------------------------------------------------------------------------------
with t_geo:
    st.caption(_("Parallax: the top of a tall stack is closer to the camera and looks larger. Sizes are scaled by "
                 "(C − h) / C, with h = sheet count × sheet thickness − the calibration plane's height."))
    g = settings.calibration
    with st.form("cal_geo"):
        cam_h = st.number_input(_("Camera height C above the calibration plane (mm)"), 1.0, 50_000.0,
                                float(g.camera_height_mm), step=10.0, key="cal_geo_c")
        thick = st.number_input(_("Sheet thickness (mm)"), 0.0, 200.0, float(g.sheet_thickness_mm), step=0.1,
                                key="cal_geo_t")
        plane_h = st.number_input(_("Height of the calibration plane above the stack's base (mm)"), 0.0, 10_000.0,
                                  float(g.plane_height_mm), step=1.0, key="cal_geo_p")
        if st.form_submit_button(_("Save geometry")):
            if plane_h >= cam_h:
                st.error(_("The calibration plane must be below the camera."))
            else:
                new = copy.deepcopy(c.db.load_settings())
                new.calibration.camera_height_mm, new.calibration.sheet_thickness_mm = float(cam_h), float(thick)
                new.calibration.plane_height_mm = float(plane_h)
                try:
                    c.db.save_settings(new, who=who)
                except ValueError as e:
                    st.error(_("Not saved: {problems}").format(problems=str(e)))
                else:
                    _flash(_("Camera geometry saved."))

# --- history + roll back -----------------------------------------------------------------------------------------
with t_hist:
    hist = cal.calibration_history(c.db)
    if not hist:
        st.info(_("No calibrations yet."))
    else:
        st.dataframe([{_("#"): h.id, _("When"): c.dt(h.created_at), _("Method"): _(h.method),
                       _("K (mm/px)"): c.num(h.mm_per_px, 4), _("By"): h.created_by or "–",
                       _("Active"): "✓" if h.active else ""} for h in hist], hide_index=True)
        older = [h.id for h in hist if not h.active]
        if older:
            back = st.selectbox(_("Roll back to"), older, key="cal_back",
                                format_func=lambda i: next(f"#{h.id} · {c.dt(h.created_at)} · {c.num(h.mm_per_px, 4)}"
                                                           for h in hist if h.id == i))
            if st.button(_("Roll back"), key="cal_back_go"):
                try:
                    row = cal.rollback(c.db, int(back), who=who)
                except cal.CalibrationError as e:
                    st.error(e.translated(_))
                else:
                    _flash(_("Rolled back to calibration #{n}: K = {k} mm/px.").format(n=row.id,
                                                                                       k=c.num(row.mm_per_px, 4)))
