"""Settings (engineers only): camera, thresholds, counting area, alert sounds, storage,
health and the audit trail. A thin view over :mod:`core.platform.engineering`, :mod:`core.platform.health`
and :mod:`core.platform.auth`; every change is saved with who/when/old → new and handed to the
running counting worker without a restart."""
from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import available_timezones

import numpy as np
import streamlit as st

from core.counting.engine import station_model
from core.platform import engineering as eng
from core.platform import health
from core.platform.auth import EngineerAuth
from pages.auth_gate import require_engineer
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
who = require_engineer(c)

st.title(_("Settings"))
st.page_link("pages/calibration.py", label=_("Calibration (pixels → mm) is on its own page"), icon=":material/straighten:")


def _current():
    """A fresh copy from the database, so two engineers never overwrite each other's fields."""
    return copy.deepcopy(c.db.load_settings())


def _save(new, what: str) -> None:
    """Persist + push to the worker; one clear message either way."""
    try:
        res = eng.apply_settings(c.db, new, who=who, worker=c.worker)
    except ValueError as e:
        st.error(_("Not saved: {problems}").format(problems=str(e)))
        return
    except Exception as e:  # database down etc.: one message, details in the log
        friendly_error(c, e, "Saving the settings failed")
        return
    if not res.changed:
        st.info(_("Nothing changed."))
        return
    parts = [_("{what} saved: {n} setting(s) changed.").format(what=what, n=len(res.changed))]
    # "applied" only for what the running counter really took: a camera address it does not
    # watch did not switch anything (it said "applied" while the demo clip kept playing)
    camera_only = all(k.startswith("camera.") for k in res.changed)
    if res.camera_kept:
        parts.append(_("The running counter did not switch: it is watching {src}, not the configured camera. "
                       "Choose the RTSP camera on the Live page to use it.").format(src=res.camera_kept))
    if res.applied_live and not (camera_only and res.camera_kept):
        parts.append(_("Applied to the running counter."))
    elif res.live_error:
        parts.append(_("The running counter could not take it now ({err}); it applies at the next start.")
                     .format(err=res.live_error))
    else:
        parts.append(_("It applies when counting starts."))
    if res.source_reopened:
        parts.append(_("The camera was reopened with the new settings."))
    if res.camera_deferred:
        parts.append(_("The camera change applies after the current session is finished."))
    st.session_state["_settings_flash"] = tuple(parts)
    st.rerun()


flash = st.session_state.pop("_settings_flash", None)
if flash:
    st.success(" ".join(flash))

AREA_VIEW_W = 960        # the frame as sent to the browser for clicking


def _draw_area(frame, s, mask_img, fw: int, fh: int) -> None:
    """The live frame, clickable: two clicks span the counting area (they fill the numbers
    above, then Save), or clicks outline a part of the frame to ignore (the mask)."""
    import cv2
    from streamlit_image_coordinates import streamlit_image_coordinates
    mode = st.segmented_control(_("A click on the frame sets"), ["area", "mask"], default="area", key="roi_mode",
                                format_func={"area": _("a corner of the counting area"),
                                             "mask": _("a point around a part to ignore")}.get) or "area"
    corners = st.session_state.setdefault("roi_corners", [])
    poly = st.session_state.setdefault("roi_poly", [])
    shown = [int(st.session_state[k]) for k in ("roi_x1", "roi_y1", "roi_x2", "roi_y2")]
    view = eng.roi_preview(frame, shown if shown != [0, 0, fw, fh] else None, mask_img)
    th = max(2, fw // 400)
    for x, y in corners:
        cv2.drawMarker(view, (int(x), int(y)), (0, 200, 255), cv2.MARKER_CROSS, 10 * th, th)
    if poly:
        pts = np.array([[int(x), int(y)] for x, y in poly], np.int32).reshape(-1, 1, 2)
        cv2.polylines(view, [pts], len(poly) >= 3, (0, 0, 255), th, cv2.LINE_AA)
    dw = min(AREA_VIEW_W, fw)

    def clicked() -> None:
        v = st.session_state.get("roi_img")
        if not v or v.get("unix_time") == st.session_state.get("_roi_img_t"):
            return
        st.session_state["_roi_img_t"] = v.get("unix_time")
        sx = fw / float(v.get("width") or dw)
        x, y = (float(v["x"]) + 0.5) * sx - 0.5, (float(v["y"]) + 0.5) * sx - 0.5
        if st.session_state.get("roi_mode", "area") == "mask":
            st.session_state["roi_poly"] = st.session_state.get("roi_poly", []) + [(x, y)]
            return
        pts = st.session_state.get("roi_corners", []) + [(x, y)]
        if len(pts) == 2:           # the second corner: the numbers above show the new area
            box = eng.roi_from_corners(pts[0], pts[1], fw, fh)
            st.session_state.update(dict(zip(("roi_x1", "roi_y1", "roi_x2", "roi_y2"), box)))
            pts = []
        st.session_state["roi_corners"] = pts

    st.caption(_("Preview: the dimmed part is ignored. Click two corners of the counting area, then save; or "
                 "switch to the mask and click around a part of the frame to ignore."))
    streamlit_image_coordinates(cv2.cvtColor(view, cv2.COLOR_BGR2RGB), key="roi_img", width=dw,
                                image_format="JPEG", jpeg_quality=85, cursor="crosshair", on_click=clicked)
    if mode == "mask":
        k1, k2 = st.columns(2)
        if k1.button(_("Ignore the outlined part"), disabled=len(poly) < 3, key="roi_poly_save"):
            try:
                s.counting.mask_path = eng.save_mask(c.paths, eng.mask_from_polygon(poly, fw, fh), "drawn.png")
            except eng.InputError as e:
                st.error(e.translated(_))
            else:
                st.session_state["roi_poly"] = []
                _save(s, _("Counting area"))
        if k2.button(_("Clear the points"), disabled=not poly, key="roi_poly_clear"):
            st.session_state["roi_poly"] = []
            st.rerun()


t_cam, t_roi, t_sound, t_store, t_health, t_audit, t_access, t_teach = st.tabs([
    _("Camera & thresholds"), _("Counting area"), _("Alert sounds"), _("Storage"), _("Health"),
    _("Audit trail"), _("Access"), _("Teach mode")], key="settings_tabs")   # keyed: a click keeps its tab

# ----------------------------------------------------------------------------- camera + thresholds
with t_cam:
    s = _current()
    with st.form("settings_camera"):
        st.subheader(_("Camera"))
        url = st.text_input(_("RTSP URL"), value=s.camera.rtsp_url, placeholder="rtsp://user:pass@192.168.1.10:554/stream1",
                            help=_("Leave empty to use the bundled demo clip."), key="set_rtsp")
        col1, col2, col3 = st.columns(3)
        width = col1.number_input(_("Width (px, 0 = as the camera sends)"), 0, 7680, int(s.camera.width), step=16,
                                  key="set_width")
        height = col2.number_input(_("Height (px, 0 = as the camera sends)"), 0, 4320, int(s.camera.height), step=16,
                                   key="set_height")
        fps = col3.number_input(_("FPS limit"), 1.0, 120.0, float(min(max(s.camera.fps_limit, 1.0), 120.0)), step=1.0,
                                key="set_fps")
        st.subheader(_("Thresholds"))
        motion = st.slider(_("Motion sensitivity"), 0.0, 1.0, float(s.counting.motion_sensitivity), 0.05,
                           help=_("Higher reacts to smaller movements; lower ignores more noise."), key="set_motion")
        sheet_conf = st.slider(_("Sheet detector confidence"), 0.0, 1.0, float(s.counting.sheet_confidence), 0.05,
                               key="set_sheet_conf")
        defect_conf = st.slider(_("Defect detector confidence"), 0.0, 1.0, float(s.models.defect_confidence), 0.05,
                                key="set_defect_conf")
        settle = st.slider(_("Stillness before counting (s)"), 0.05, 2.0, float(min(max(s.counting.settle_s, 0.05), 2.0)),
                           0.05, key="set_settle")
        verifiers = ["auto", "model_free", "detector"]
        verifier = st.selectbox(_("Sheet verifier"), verifiers,
                                index=verifiers.index(s.counting.verifier) if s.counting.verifier in verifiers else 0,
                                format_func=lambda v: {"auto": _("Automatic"), "model_free": _("Image change only"),
                                                       "detector": _("Detector")}[v], key="set_verifier")
        st.subheader(_("Language and time zone"))
        col4, col5 = st.columns(2)
        langs = ["id", "en"]
        lang = col4.selectbox(_("Default language"), langs, index=langs.index(s.ui.language) if s.ui.language in langs else 0,
                              format_func={"id": "Bahasa Indonesia", "en": "English"}.get, key="set_lang")
        zones = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
        tz = col5.selectbox(_("Plant time zone"), zones, index=zones.index(s.ui.timezone) if s.ui.timezone in zones else 0,
                            key="set_tz")
        if st.form_submit_button(_("Save camera and thresholds"), type="primary"):
            try:
                s.camera.rtsp_url = eng.validate_camera_url(url)
            except eng.InputError as e:
                st.error(e.translated(_))
            else:
                s.camera.width, s.camera.height, s.camera.fps_limit = int(width), int(height), float(fps)
                s.counting.motion_sensitivity, s.counting.sheet_confidence = float(motion), float(sheet_conf)
                s.models.defect_confidence, s.counting.settle_s = float(defect_conf), float(settle)
                s.counting.verifier = verifier
                s.ui.language, s.ui.timezone = lang, tz
                _save(s, _("Camera and thresholds"))

    # --- defect analysis: per-class confidences and the physical scale (engineer only: this page)
    s = _current()
    from core.qa import defects as D
    shipped = D.shipped_thresholds(D.active_model_path(c.paths, c.db), c.paths)
    overrides = dict(s.models.defect_class_confidence or {})
    with st.form("settings_defects"):
        st.subheader(_("Defect analysis"))
        st.caption(_("Per-class confidence a defect needs to be reported. The defaults ship with the model, "
                     "chosen for a stated precision (Models page, Defect thresholds)."))
        classes = sorted(set(shipped) | set(overrides)) or ["crazing", "inclusion", "patches", "pitted_surface",
                                                            "rolled-in_scale", "scratches"]
        cols = st.columns(3)
        vals = {}
        for i, cls in enumerate(classes):
            cur = float(overrides.get(cls, shipped.get(cls, s.models.defect_confidence)))
            vals[cls] = cols[i % 3].number_input(cls, 0.0, 1.0, cur, 0.01, format="%.2f", key=f"set_defconf_{cls}")
        col_a, col_b, col_c = st.columns(3)
        tile_mm = col_a.number_input(_("Sheet shown by one locator tile (mm)"), 10.0, 5000.0,
                                     float(s.models.defect_tile_mm), 10.0, key="set_tile_mm",
                                     help=_("The physical scale defects are looked for at."))
        assumed = col_b.number_input(_("Sheet width when not calibrated (mm)"), 50.0, 10000.0,
                                     float(s.models.assumed_sheet_width_mm), 10.0, key="set_assumed_w",
                                     help=_("Used for the scale until a calibration gives K."))
        margin = col_c.number_input(_("Margin inside the sheet edge (mm)"), 0.0, 500.0,
                                    float(s.models.sheet_margin_mm), 1.0, key="set_sheet_margin")
        if st.form_submit_button(_("Save defect analysis"), type="primary"):
            # only what differs from the model's shipped table is an override
            s.models.defect_class_confidence = {k: round(float(v), 3) for k, v in vals.items()
                                                if k not in shipped or abs(float(v) - shipped[k]) > 1e-3}
            s.models.defect_tile_mm, s.models.assumed_sheet_width_mm = float(tile_mm), float(assumed)
            s.models.sheet_margin_mm = float(margin)
            _save(s, _("Defect analysis"))

# ----------------------------------------------------------------------------- counting area
with t_roi:
    s = _current()
    frame = eng.reference_frame(c.paths, c.worker)
    fh, fw = (frame.shape[:2] if frame is not None else (int(s.camera.height or 720), int(s.camera.width or 1280)))
    st.caption(_("Only sheets inside this rectangle are counted. The frame is {w} × {h} px.")
               .format(w=c.num(fw), h=c.num(fh)))
    roi = s.counting.roi or [0, 0, fw, fh]
    roi_keys = ("roi_x1", "roi_y1", "roi_x2", "roi_y2")
    reload_ = st.session_state.pop("_roi_reload", False)   # after a save: show what was stored
    for k, v in zip(roi_keys, roi):
        if reload_ or k not in st.session_state:
            st.session_state[k] = int(v)
    with st.form("settings_roi"):
        r1, r2, r3, r4 = st.columns(4)
        x1 = r1.number_input(_("Left (px)"), 0, 20000, key="roi_x1")
        y1 = r2.number_input(_("Top (px)"), 0, 20000, key="roi_y1")
        x2 = r3.number_input(_("Right (px)"), 0, 20000, key="roi_x2")
        y2 = r4.number_input(_("Bottom (px)"), 0, 20000, key="roi_y2")
        b1, b2 = st.columns(2)
        save_roi = b1.form_submit_button(_("Save counting area"), type="primary")
        reset_roi = b2.form_submit_button(_("Use the whole frame"))
    if save_roi or reset_roi:
        try:
            s.counting.roi = None if reset_roi else eng.parse_roi(x1, y1, x2, y2, fw, fh)
        except eng.InputError as e:
            st.error(e.translated(_))
        else:
            st.session_state["_roi_reload"] = True
            _save(s, _("Counting area"))
    mask_img = None
    if s.counting.mask_path:
        import cv2
        mask_img = cv2.imread(str(c.paths.data / s.counting.mask_path), cv2.IMREAD_GRAYSCALE)
    if frame is not None:
        _draw_area(frame, s, mask_img, fw, fh)
    else:
        st.info(_("No frame to preview yet: start the camera or add the demo clip."))
    with st.expander(_("Mask image (optional)")):
        st.caption(_("A black-and-white PNG of the frame size: white = counted, black = ignored."))
        up = st.file_uploader(_("Mask PNG"), type=["png", "jpg", "jpeg"], key="roi_mask_upload")
        m1, m2 = st.columns(2)
        if m1.button(_("Use this mask"), disabled=up is None, key="roi_mask_save"):
            try:
                s.counting.mask_path = eng.save_mask(c.paths, up.getvalue(), up.name)
            except eng.InputError as e:
                st.error(e.translated(_))
            else:
                _save(s, _("Counting area"))
        if m2.button(_("Remove the mask"), disabled=not s.counting.mask_path, key="roi_mask_clear"):
            s.counting.mask_path = ""
            _save(s, _("Counting area"))

# ----------------------------------------------------------------------------- alert sounds
with t_sound:
    s = _current()
    labels = {"over_target": _("Over target (during a session)"),
              "finish_under": _("Sound A — finished under target"),
              "finish_over": _("Sound B — finished over target")}
    for kind, field_name in eng.SOUND_KINDS.items():
        st.markdown(f"**{labels[kind]}**")
        current = getattr(s.alerts, field_name)
        try:
            from core.live.alerts import mime_type, sound_path
            p = sound_path(kind, s, c.paths)
            st.audio(p.read_bytes(), format=mime_type(p))
            st.caption(_("Custom sound: {name}").format(name=current) if current else _("Built-in sound"))
        except Exception:  # the alerts module is optional for this page
            st.caption(current or _("Built-in sound"))
        up = st.file_uploader(_("Upload .mp3 or .wav"), type=["mp3", "wav"], key=f"snd_up_{kind}")
        a1, a2 = st.columns(2)
        if a1.button(_("Use this sound"), disabled=up is None, key=f"snd_save_{kind}"):
            try:
                name = eng.save_sound(c.paths, kind, up.getvalue(), up.name)
            except eng.InputError as e:
                st.error(e.translated(_))
            else:
                setattr(s.alerts, field_name, name)
                _save(s, _("Alert sounds"))
        if a2.button(_("Restore the built-in sound"), disabled=not current, key=f"snd_reset_{kind}"):
            setattr(s.alerts, field_name, "")
            _save(s, _("Alert sounds"))
        st.divider()

# ----------------------------------------------------------------------------- storage
with t_store:
    s = _current()
    disk = health.check_disk(c.paths, s)
    st.metric(_("Free disk space"), f"{c.num(disk.free_gb, 1)} GB",
              help=_("On {path}, of {total} GB").format(path=disk.path, total=c.num(disk.total_gb, 0)))
    if not disk.ok:
        st.error(disk.localized(_, c.lang))
    with st.form("settings_storage"):
        min_free = st.number_input(_("Refuse new sessions below (GB free)"), 0.0, 10000.0, float(s.storage.min_free_gb),
                                   step=0.5, key="set_min_free")
        keep_days = st.number_input(_("Keep raw captures of finished sessions for (days)"), 1, 36500,
                                    int(max(1, s.storage.retention_days)), key="set_retention")
        max_up = st.number_input(_("Largest video upload (MB)"), 1, 100000, int(s.storage.max_upload_mb), key="set_max_up")
        if st.form_submit_button(_("Save storage settings"), type="primary"):
            s.storage.min_free_gb, s.storage.retention_days, s.storage.max_upload_mb = float(min_free), int(keep_days), int(max_up)
            _save(s, _("Storage settings"))
    st.subheader(_("Retention"))
    st.caption(_("Deletes the raw capture images of sessions finished more than {d} days ago. Defect crops, "
                 "reports and the database stay. Sessions never exported or archived are kept unless you "
                 "tick the box below.").format(d=c.num(s.storage.retention_days)))
    force = st.checkbox(_("Also sessions that were never exported or archived"), key="ret_force")
    r1, r2 = st.columns(2)
    dry = r1.button(_("Preview"), key="ret_preview")
    run = r2.button(_("Delete old raw captures"), type="primary", key="ret_run")
    if dry or run:
        try:
            rep = health.apply_retention(c.db, c.paths, s, force=force, dry_run=bool(dry))
        except Exception as e:
            friendly_error(c, e, "Retention failed")
        else:
            if run:
                c.db.log(f"retention by {who}: {rep.files_removed} files, {rep.bytes_freed} bytes", "info")
            action = {"purged": _("deleted"), "would_purge": _("would be deleted"),
                      "kept_not_exported": _("kept: not exported or archived"), "already_clean": _("nothing to delete")}
            if not rep.items:
                st.info(_("No finished session is older than {d} days.").format(d=c.num(rep.days)))
            else:
                st.dataframe([{_("Session"): i.name, _("Files"): i.files,
                               _("Finished"): c.dt(datetime.fromisoformat(i.finished_at)) if i.finished_at else "–",
                               _("MB"): c.num(i.bytes / 2**20, 1), _("Result"): action.get(i.action, i.action)}
                              for i in rep.items], hide_index=True)
            if run:
                st.success(_("{n} files deleted, {mb} MB freed.").format(n=c.num(rep.files_removed),
                                                                         mb=c.num(rep.bytes_freed / 2**20, 1)))

# ----------------------------------------------------------------------------- health
def _status_label(status: str) -> str:
    return {"idle": _("idle"), "connecting": _("connecting"), "live": _("live"), "reconnecting": _("reconnecting"),
            "stalled": _("stalled"), "ended": _("ended"), "error": _("error"), "running": _("running"),
            "stopped": _("stopped"), "unknown": _("unknown")}.get(status, status)


with t_health:
    @st.fragment(run_every=5)
    def _health_panel() -> None:
        snap = health.snapshot(c.paths, c.settings, c.worker)
        m = st.columns(4)
        m[0].metric(_("CPU"), f"{c.num(snap.cpu_percent, 0)} %", help=_("{n} cores, load {load}")
                    .format(n=snap.cpu_count, load=" / ".join(c.num(x, 2) for x in snap.load_avg)))
        m[1].metric(_("RAM"), f"{c.num(snap.ram_percent, 0)} %",
                    help=_("{used} of {total} GB; this app {rss} MB").format(
                        used=c.num(snap.ram_used_gb, 1), total=c.num(snap.ram_total_gb, 1), rss=c.num(snap.process_rss_mb, 0)))
        m[2].metric(_("Disk free"), f"{c.num(snap.disk.free_gb, 1)} GB")
        t = snap.max_temperature_c
        m[3].metric(_("Temperature"), f"{c.num(t, 0)} °C" if t is not None else "–")
        if snap.gpus:
            for g in snap.gpus:
                vram = (f"{c.num(g.vram_used_mb, 0)} / {c.num(g.vram_total_mb, 0)} MB"
                        if g.vram_total_mb else "–")
                st.write(_("GPU {name} ({src}): load {load} %, VRAM {vram}, {temp} °C").format(
                    name=g.name, src=g.source, load=c.num(g.util_percent, 0), vram=vram, temp=c.num(g.temperature_c, 0)))
        else:
            st.caption(_("No GPU found (CPU only)."))
        cam = snap.camera
        k = st.columns(4)
        k[0].metric(_("Camera"), _status_label(cam.status) if cam.available else _("no counting worker"))
        k[1].metric(_("Counting FPS"), c.num(cam.fps, 1))
        k[2].metric(_("Decision latency"), f"{c.num(cam.latency_ms, 0)} ms" if cam.latency_ms is not None else "–",
                    help=_("From the scene being still again to the count: the stillness wait plus the check "
                           "of the last decision."))
        up_h = snap.process_uptime_s / 3600
        k[3].metric(_("Uptime"), _("{h} h").format(h=c.num(up_h, 1)),
                    help=_("System up {d} days").format(d=c.num(snap.system_uptime_s / 86400, 1)))
        if cam.last_error:
            st.warning(_(cam.last_error))
        if not snap.disk.ok:
            st.error(snap.disk.localized(_, c.lang))
        if snap.ram_percent >= 90:
            st.warning(_("RAM is {p} % used.").format(p=c.num(snap.ram_percent, 0)))
        if t is not None and t >= 85:
            st.warning(_("The device is hot: {t} °C.").format(t=c.num(t, 0)))
        st.caption(_("Updated {t}").format(t=c.dt(datetime.fromisoformat(snap.at))))

    _health_panel()

# ----------------------------------------------------------------------------- audit trail
with t_audit:
    rows = eng.audit_trail(c.db, limit=200)
    if not rows:
        st.info(_("No settings have been changed yet."))
    else:
        def _show(v):
            if isinstance(v, str) and "://" in v:
                return eng.redact_url(v)
            return "–" if v is None or v == "" else str(v)
        st.dataframe([{_("When"): c.dt(a.at), _("Who"): a.who, _("Setting"): a.key,
                       _("Old"): _show(a.old), _("New"): _show(a.new)} for a in rows],
                     hide_index=True, width="stretch")

# ----------------------------------------------------------------------------- access
with t_access:
    st.caption(_("Change the engineer PIN or password (at least 4 characters)."))
    with st.form("change_pin", clear_on_submit=True):
        old = st.text_input(_("Current PIN"), type="password", key="pin_old")
        new1 = st.text_input(_("New PIN"), type="password", key="pin_new1")
        new2 = st.text_input(_("New PIN again"), type="password", key="pin_new2")
        if st.form_submit_button(_("Change PIN")):
            if new1 != new2:
                st.error(_("The two new PINs differ."))
            else:
                res = EngineerAuth(c.db).change(old or "", new1 or "")
                if res.ok:
                    c.db.log(f"engineer PIN changed by {who}")
                    st.success(_("The PIN was changed."))
                elif res.wait_s > 0:
                    st.error(_("Too many wrong attempts. Try again in {s} s.").format(s=c.num(res.wait_s, 0)))
                elif res.failed_count:
                    st.error(_("Wrong PIN or password."))
                else:
                    st.error(_("The new PIN is too short or too long (4 to 128 characters)."))

# ----------------------------------------------------------------------------- teach mode (issue 12)
with t_teach:
    from core.live import cycles as teach_cycles
    st.caption(_("Every counting decision is kept with the cues that made it. Run a few minutes of real "
                 "placements, tick the cycles in which a sheet was really laid, confirm, and fit the counter "
                 "to this station. Nothing changes until you save; a save can be undone."))
    recent = teach_cycles.recent(c.db, limit=30)
    if not recent:
        st.info(_("No counting cycles recorded yet: count a few sheets in a session first."))
    else:
        with st.form("teach_labels"):
            truth = {}
            for cy in recent:
                verdict = _("counted") if cy.accepted else _("not counted")
                mark = "" if cy.label is None else (" ✓" if cy.label == 1 else " ✗")
                label = _("Cycle {id} · {time} · {verdict} (p {p}){mark}").format(
                    id=cy.id, time=c.dt(cy.wall_time), verdict=verdict, p=c.num(cy.probability, 2), mark=mark)
                default = bool(cy.accepted) if cy.label is None else cy.label == 1
                truth[cy.id] = st.checkbox(label, value=default, key=f"teach_cy_{cy.id}",
                                           help=_("Ticked = a sheet was really laid in this cycle."))
            st.caption(_("True count of these cycles: the ticked ones."))
            if st.form_submit_button(_("Confirm these cycles"), type="primary"):
                for cid, v in truth.items():
                    teach_cycles.set_label(c.db, cid, 1 if v else 0, source="engineer")
                c.db.log(f"teach mode: {len(truth)} cycles confirmed by {who} ({sum(truth.values())} sheets)")
                st.session_state["_settings_flash"] = (
                    _("{n} cycles confirmed: {k} sheets.").format(n=len(truth), k=sum(truth.values())),)
                st.session_state.pop("_teach_fit", None)
                st.rerun()
    b1, b2, b3 = st.columns(3)
    if b1.button(_("Fit to these cycles"), key="teach_fit"):
        try:
            st.session_state["_teach_fit"] = teach_cycles.fit_station(c.db)
        except ValueError:
            st.warning(_("Confirm cycles with a sheet and cycles without one first."))
    fit_res = st.session_state.get("_teach_fit")
    if fit_res is not None:
        m = st.columns(4)
        m[0].metric(_("Precision now"), c.num(fit_res.before.precision * 100, 0) + " %")
        m[1].metric(_("Recall now"), c.num(fit_res.before.recall * 100, 0) + " %")
        m[2].metric(_("Precision after the fit"), c.num(fit_res.after.precision * 100, 0) + " %")
        m[3].metric(_("Recall after the fit"), c.num(fit_res.after.recall * 100, 0) + " %")
        st.caption(_("On {n} confirmed cycles ({k} with a sheet).").format(n=fit_res.after.n,
                                                                          k=fit_res.after.positives))
    if b2.button(_("Save the fit"), disabled=fit_res is None, key="teach_save"):
        try:
            teach_cycles.save_fit(c.db, fit_res.model, who=who, worker=c.worker)
            st.session_state.pop("_teach_fit", None)
            st.session_state["_settings_flash"] = (_("The counter now uses this station's fit."),)
            st.rerun()
        except Exception as e:
            friendly_error(c, e, "Saving the teach-mode fit failed")
    if b3.button(_("Undo the last teach-mode save"), key="teach_undo"):
        try:
            prev = teach_cycles.undo_fit(c.db, who=who, worker=c.worker)
            st.session_state["_settings_flash"] = (
                _("Restored the default counting rule.") if prev is None else _("Restored the previous fit."),)
            st.rerun()
        except ValueError:
            st.info(_("There is no teach-mode save to undo."))
    cur = _current().counting
    if cur.cue_model and station_model(cur) is None:
        st.caption(_("This station's saved fit was made for an older set of cues and is not used: the default "
                     "counting rule is in use. Teach again to fit this station."))
    else:
        st.caption(_("In use: this station's fit.") if cur.cue_model else _("In use: the default counting rule."))
