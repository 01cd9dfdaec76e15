"""Defect Analysis: sessions in the sidebar, a thumbnail gallery, a detail view with
[Auto-Detect Defect] / [Measure Dimension], mask overlay, Approve / Reject, and
[Analyse whole session] as a background job.

Thin view over :mod:`core.qa.defects`: every model run happens in a background job
(:class:`core.platform.jobs.JobRunner`), so the page never blocks on a model, and a reloaded page
finds the job's progress again in the database. Analysis is refused while a counting
session runs (the Jetson cannot hold the sheet detector and SAM 2 at once); while it
runs, counting is paused and the models are swapped (``enter_analysis``).
"""
from __future__ import annotations

import cv2
import streamlit as st

from core.platform import i18n
from core.platform.paths import safe_join
from core.qa import defects as D
from pages.common import ctx, friendly_error

c = ctx()
_ = c._

PAGE_SIZE = 24
COLS = 6
POLL_S = 1.0

st.title(_("Defect Analysis"))


# --- state of the rest of the product -------------------------------------------------------
def _counting_active() -> bool:
    w = c.worker
    if w is None:
        return False
    try:
        sess = w.status().session
        return bool(sess is not None and sess.is_active)
    except Exception:
        return False


def _runner():
    if c.jobs is not None:
        return c.jobs
    return _fallback_runner(c.db.url)


@st.cache_resource(show_spinner=False)
def _fallback_runner(_url: str):
    # only when app.py provides no shared runner (one per process, never per page run)
    from core.platform.jobs import JobRunner
    return JobRunner(c.db)


def _get_locator():
    det = None
    if c.models is not None:
        det = c.models.defect_locator()
    if det is None:
        p = D.active_model_path(c.paths, c.db)
        if p is None:
            return None
        from core.models.manager import YoloRunner
        det = YoloRunner.load(p, prefer_onnx=c.settings.models.prefer_onnx)
    return D.make_locator(det, c.settings)


def _get_segmenter():
    if c.models is not None:
        seg = c.models.segmenter()
        if seg is not None:
            return seg
    from core.qa.segment import find_sam2_checkpoint, load_segmenter
    return load_segmenter(find_sam2_checkpoint(c.paths.weights))


def _before() -> None:
    w, m = c.worker, c.models
    if w is not None and getattr(w, "pause_for_analysis", None):
        if w.pause_for_analysis() is False:
            raise RuntimeError("a counting session is running; finish it before defect analysis")
    if m is not None and getattr(m, "enter_analysis", None):
        m.enter_analysis()


def _after() -> None:
    w, m = c.worker, c.models
    if m is not None and getattr(m, "leave_analysis", None):
        m.leave_analysis()
    if w is not None and getattr(w, "resume_after_analysis", None):
        w.resume_after_analysis()


def _submit(session_id: str, capture_ids=None) -> None:
    try:
        D.submit_session_analysis(_runner(), c.db, c.paths, session_id, _get_locator, _get_segmenter,
                                  mm_per_px=float(c.settings.calibration.mm_per_px or 0.0),
                                  before=_before, after=_after, capture_ids=capture_ids)
    except Exception as e:
        friendly_error(c, e, "Defect analysis could not start")


# --- deep link ?session=…&capture=… : a reload (a new browser session) opens the same sheet ---
def _open_deep_link() -> None:
    if st.session_state.get("_def_link_read"):
        return
    st.session_state["_def_link_read"] = True
    want_s, want_c = st.query_params.get("session"), st.query_params.get("capture")
    if not want_s:
        return
    s = next((x for x in D.gallery_sessions(c.db, "") if x.id == want_s), None)
    if s is None:
        return
    st.session_state.update(def_search="", def_day=c.dt(s.started_at).split(" ")[0], def_session=s.id,
                            def_sel_session=s.id)
    try:
        cap = int(want_c) if want_c else None
    except ValueError:
        cap = None
    if cap is not None:
        from core.platform.storage import CaptureRow
        with c.db.session() as db_s:
            row = db_s.get(CaptureRow, cap)
            if row is not None and row.session_id == s.id:
                st.session_state["def_sel"] = cap


_open_deep_link()


# --- the reviewer: the signed-in engineer, else a name this browser remembers (a cookie) -------
REVIEWER_COOKIE = "msm_reviewer"


if "def_reviewer" not in st.session_state:
    from urllib.parse import unquote

    from pages.auth_gate import signed_in
    kept = st.context.cookies.get(REVIEWER_COOKIE)
    st.session_state["def_reviewer"] = signed_in() or (unquote(kept) if isinstance(kept, str) else "")


def _store_reviewer_cookie(name: str) -> None:
    """Keep the reviewer's name in a cookie of this browser (``st.context.cookies`` reads it
    back on the next visit). Drawn on every run with the same content, the zero-height
    component stays mounted, so its script runs once per new name and is never cut short."""
    if not name:
        return
    import json

    import streamlit.components.v1 as components
    components.html("<script>document.cookie = %s + '=' + encodeURIComponent(%s) + "
                    "'; path=/; max-age=31536000; SameSite=Lax';</script>"
                    % (json.dumps(REVIEWER_COOKIE), json.dumps(name)), height=0)


# --- sidebar: sessions by date / name ---------------------------------------------------------
with st.sidebar:
    st.subheader(_("Sessions"))
    text = st.text_input(_("Search by name"), key="def_search")
    sessions = D.gallery_sessions(c.db, text)
    if not sessions:
        st.info(_("No sessions yet. Start one on the Live Monitoring page."))
        st.stop()
    by_day: dict[str, list] = {}
    for s in sessions:
        by_day.setdefault(c.dt(s.started_at).split(" ")[0], []).append(s)
    days = list(by_day)
    day = st.selectbox(_("Date"), days, key="def_day")
    opts = by_day[day]
    labels = {s.id: "{n} · {t} · {k}".format(n=s.name, t=c.dt(s.started_at, with_date=False),
                                             k=c.num(s.count)) for s in opts}
    sid = st.radio(_("Session"), [s.id for s in opts], format_func=labels.get, key="def_session")

sess = next(s for s in opts if s.id == sid)
if st.session_state.get("def_sel_session") != sid:   # another session: back to its gallery
    st.session_state["def_sel_session"] = sid
    st.session_state.pop("def_sel", None)
busy = _counting_active()
if busy:
    st.warning(_("Defect analysis is disabled while a counting session runs. Finish the session first."))

st.subheader("{name} — {n} / {t}".format(name=sess.name, n=c.num(sess.count), t=c.num(sess.target)))


# --- batch job: progress survives a reload (read back from the database) ----------------------
def _job_key(j) -> tuple | None:
    return None if j is None else (j.id, j.status)


job_now = D.latest_job(_runner(), sid)
st.session_state["def_job_seen"] = _job_key(job_now)   # what this page run has drawn
running = job_now is not None and job_now.status == "running"


def _covers(job, cap_id: int) -> bool:
    ids = (job.params or {}).get("capture_ids")
    return ids is None or cap_id in ids


@st.fragment(run_every=POLL_S)
def job_panel(cap_id: int | None = None, cap_index: int | None = None) -> None:
    """Progress while a job runs; when a job starts or ends, the whole page runs again, so the
    sheet in view, the gallery and the buttons show the new state without a reload. The
    banner speaks of what is on screen: the sheet in view, or the whole session."""
    # one replaceable slot: when the job ends, nothing of the running state (a Cancel button)
    # lingers under the banner
    with st.empty().container():
        _job_panel_body(cap_id, cap_index)


def _job_panel_body(cap_id: int | None, cap_index: int | None) -> None:
    job = D.latest_job(_runner(), sid)
    if _job_key(job) != st.session_state.get("def_job_seen"):
        st.rerun()
    if job is None:
        return
    if job.status == "running":
        st.progress(job.progress, text=_("Analysing… {p} %").format(p=c.num(job.progress * 100)))
        if st.button(_("Cancel"), key="def_cancel"):
            _runner().cancel(job.id)
        return
    ids = (job.params or {}).get("capture_ids")
    if cap_id is not None and not _covers(job, cap_id):
        return                                   # the last job was about other sheets
    r = job.result or {}
    if job.status == "done":
        failed = [f for f in r.get("failed", []) if cap_id is None or f.get("capture_id") == cap_id]
        if cap_id is not None or (ids is not None and len(ids) == 1):
            one = cap_id if cap_id is not None else ids[0]
            if not failed:
                n = len(D.capture_defects(c.db, one))
                idx = cap_index if cap_id is not None else _capture_index(one)
                st.success(_("Sheet #{n} analysed: {d} defects.").format(n=c.num(idx), d=c.num(n)))
        else:
            st.success(_("Analysis finished: {a} of {n} captures, {d} defects ({seg}).").format(
                a=c.num(r.get("analysed", 0)), n=c.num(r.get("captures", 0)), d=c.num(r.get("defects", 0)),
                seg=r.get("segmenter", "")))
        no_sheet = [x for x in r.get("no_sheet", []) if cap_id is None or x == cap_id]
        if no_sheet:
            st.info(_("{n} captures show no sheet (or its edges are not clear): not analysed.").format(
                n=c.num(len(no_sheet))))
        for f in failed:
            st.warning(f.get("message", ""))
    elif job.status == "failed":
        st.error(_("Analysis failed: {why}").format(why=job.message))
    elif job.status == "cancelled":
        st.info(_("Analysis was cancelled."))


def _capture_index(cap_id: int) -> int:
    from core.platform.storage import CaptureRow
    with c.db.session() as s:
        row = s.get(CaptureRow, cap_id)
        return row.index if row is not None else 0


sel = st.session_state.get("def_sel")
if sel is None:
    if st.button(_("Analyse whole session"), disabled=busy or running, type="primary", key="def_batch"):
        _submit(sid)
        st.rerun()
    job_panel()
    st.query_params.from_dict({"session": sid})
else:
    st.query_params.from_dict({"session": sid, "capture": str(sel)})


# --- detail view ----------------------------------------------------------------------------
def detail(cap_id: int) -> None:
    from core.platform.storage import CaptureRow
    with c.db.session() as s:
        row = s.get(CaptureRow, cap_id)
    if row is None:
        st.warning(_("This capture no longer exists."))
        return
    if st.button(_("← Back to gallery"), key="def_back"):
        st.session_state.pop("def_sel", None)
        st.rerun()
    job_panel(row.id, row.index)
    st.markdown("**" + _("Sheet #{n}").format(n=c.num(row.index)) + "** · " + c.dt(row.created_at))
    try:
        img = D.load_image(safe_join(c.paths.sessions, row.path))
    except (D.BadImage, ValueError) as e:
        st.error(_("This capture cannot be shown: {why}").format(why=str(e)))
        img = None
    b1, b2, b3, b4 = st.columns(4)
    if b1.button(_("Auto-Detect Defect"), disabled=busy or running or img is None, key="def_auto"):
        _submit(row.session_id, [row.id])
        st.rerun()
    measure = b2.button(_("Measure Dimension"), disabled=img is None, key="def_measure")
    st.text_input(_("Reviewer name"), key="def_reviewer", max_chars=60,
                  placeholder=_("Your name, recorded with approve / reject"))
    reviewer = " ".join(str(st.session_state.get("def_reviewer") or "").split())[:60]
    _store_reviewer_cookie(reviewer)
    decision = ("approved" if b3.button(_("Approve"), icon=":material/check_circle:", key="def_ok") else
                "rejected" if b4.button(_("Reject"), icon=":material/cancel:", key="def_ng") else None)
    if decision is not None:
        if not reviewer:
            st.error(_("Enter your name as reviewer first: it is recorded with the decision."))
        else:
            D.set_review(c.db, row.id, decision, reviewer)
            st.rerun()
    if row.review != "pending":
        text = _("Approved by {who} at {when}") if row.review == "approved" else _("Rejected by {who} at {when}")
        st.caption(text.format(who=row.reviewed_by or "–", when=c.dt(row.reviewed_at)))
    if img is None:
        return
    defects = D.capture_defects(c.db, row.id)
    overlay = D.capture_outputs_dir(c.paths, row.path) / "overlay.jpg"
    # the overlay shows the analysed outline too, so it is worth showing with no defect on it
    show = st.toggle(_("Mask overlay"), value=True, key="def_overlay", disabled=not overlay.exists())
    if show and overlay.exists() and row.analysed_at is not None:
        st.image(str(overlay), width="content")
    else:
        st.image(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), width="content")
    if measure:
        try:
            from pages.measure_view import show_measure
        except ImportError:
            st.info(_("Measurement is not available in this build."))
        else:
            try:
                show_measure(c, row, img)
            except Exception as e:
                friendly_error(c, e, "Measurement failed")
    if row.analysed_at is None:
        st.caption(_("Not analysed yet."))
        return
    status = D.capture_status(c.paths, row.path, row.index)
    if status.get("sheet_found") is False:
        st.warning(_(status.get("message") or D.NO_SHEET_MSG))
        return
    if not defects:
        st.success(_("No defects found ({when}).").format(when=c.dt(row.analysed_at)))
        return
    st.markdown("**" + _("Defects: {n}").format(n=c.num(len(defects))) + "**")
    calibrated = any(d.area_mm2 is not None for d in defects)
    table = [{_("Type"): i18n.defect_label(d.type, c.lang), _("Score"): c.num(d.score, 2),
              _("Box [x1, y1, x2, y2]"): "[" + ", ".join(c.num(v) for v in (d.x1, d.y1, d.x2, d.y2)) + "]",
              _("Area (px)"): c.num(d.area_px),
              _("Area (mm²)"): c.num(d.area_mm2, 1) if d.area_mm2 is not None else "–",
              _("Segmenter"): d.segmenter} for d in defects]
    if not calibrated:
        st.caption(_("Not calibrated: areas in pixels only (see Calibration)."))
    st.dataframe(table, hide_index=True)
    crops = [d for d in defects if d.crop_path and (c.paths.sessions / d.crop_path).exists()]
    if crops:
        cols = st.columns(min(6, len(crops)))
        for i, d in enumerate(crops[:24]):
            cols[i % len(cols)].image(str(c.paths.sessions / d.crop_path), caption=i18n.defect_label(d.type, c.lang), width="content")


if sel is not None:
    try:
        detail(int(sel))
    except Exception as e:
        friendly_error(c, e, "The capture could not be shown")
    st.stop()


# --- gallery: paginated thumbnail grid --------------------------------------------------------
total = D.count_captures(c.db, sid)
if total == 0:
    st.info(_("This session has no captures."))
    st.stop()
pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
page = 1
if pages > 1:
    page = int(st.columns([1, 4])[0].number_input(_("Page (of {n})").format(n=c.num(pages)), min_value=1,
                                                  max_value=pages, value=1, step=1, key=f"def_page_{sid}"))
st.caption(_("{n} captures").format(n=c.num(total)))
items = D.list_captures(c.db, sid, (page - 1) * PAGE_SIZE, PAGE_SIZE)
# Material icons (a font Streamlit ships), not emoji: a station without an emoji font showed empty boxes
badge = {"approved": ":material/check_circle:", "rejected": ":material/cancel:", "pending": ""}
cols = st.columns(COLS)
for i, it in enumerate(items):
    with cols[i % COLS]:
        th = D.thumbnail(c.paths, it.path)
        if th is not None:
            st.image(str(th), width="stretch")
        else:
            st.warning(_("Image missing or unreadable"))
        label = "#{n} {b}".format(n=it.index, b=badge.get(it.review, ""))
        if it.analysed_at is not None:
            if it.n_defects == 1:
                label += " · " + _("1 defect")
            else:
                label += " · " + (_("{n} defects").format(n=c.num(it.n_defects)) if it.n_defects else _("OK"))
        if st.button(label, key=f"def_open_{it.id}", width="stretch"):
            st.session_state["def_sel"] = it.id
            st.rerun()
