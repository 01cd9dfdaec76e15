"""Dashboard (supervisor): sessions table with filters, production recap charts, and
reports (JSON / CSV / Excel / PDF / ZIP archive) per session or for a date range.

A thin view over :mod:`core.reports`. [Generate Report] runs as a background job
(:class:`core.platform.jobs.JobRunner`) with progress, so the page never blocks and a reloaded page
still offers the files it produced.
"""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

import core.reports as reports
from core.platform import i18n
from core.platform.storage import utcnow
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
POLL_S = 1.0
STATUSES = ("active", "paused", "finished")
FORMAT_LABELS = {"pdf": "PDF", "xlsx": "Excel (XLSX)", "json": "JSON", "csv": "CSV", "zip": "ZIP"}

st.title(_("Dashboard"))

# ----------------------------------------------------------------------------- filters
today = i18n.to_local(utcnow(), c.tz).date()
f1, f2 = st.columns([2, 2])
picked = f1.date_input(_("Date range"), value=(today - timedelta(days=30), today), key="dash_range",
                       help=_("Sessions started on these days (plant time, both days included)."))
statuses = f2.multiselect(_("Status"), STATUSES, default=list(STATUSES), format_func=_,
                          key=f"dash_status_{c.lang}")   # per language: multiselect chips keep old labels
if isinstance(picked, (list, tuple)):
    d_from = picked[0] if picked else None
    d_to = picked[1] if len(picked) > 1 else d_from
else:
    d_from = d_to = picked

try:
    sessions = reports.list_sessions(c.db, d_from, d_to, statuses or list(STATUSES), c.tz)
    recap = reports.production_recap(c.db, [s.id for s in sessions], c.tz)
except reports.ReportError as e:
    st.error(_("The sessions cannot be listed: {why}").format(why=e))
    st.stop()
except Exception as e:  # database trouble: one message, the details go to the log
    friendly_error(c, e, "Loading the sessions failed")
    st.stop()

# ----------------------------------------------------------------------------- headline figures
m1, m2, m3, m4, m5 = st.columns(5)
m1.metric(_("Sessions"), c.num(len(sessions)))
m2.metric(_("Sheets counted"), c.num(sum(s.count for s in sessions)),
          help=_("From count events, manual corrections included."))
m3.metric(_("Target"), c.num(sum(s.target for s in sessions)))
m4.metric(_("Approve rate"), "–" if recap.approve_rate is None else c.num(100 * recap.approve_rate, 1) + " %")
m5.metric(_("Defects"), c.num(sum(s.defects for s in sessions)))

# ----------------------------------------------------------------------------- sessions table
st.subheader(_("Sessions"))
if not sessions:
    st.info(_("No sessions in this date range. Start one on the Live Monitoring page, or widen the range."))
else:
    rows = [{
        _("Name"): s.name, _("Started"): c.dt(s.started_at), _("Finished"): c.dt(s.finished_at),
        _("Target"): s.target, _("Count"): s.count, _("Status"): _(s.status), _("Defects"): s.defects,
        _("Rejects"): s.rejects, _("Captures"): s.captures,
        _("Exported"): c.dt(s.exported_at) if s.exported_at else "", _("Session"): s.id,
    } for s in sessions]
    st.dataframe(rows, hide_index=True, width="stretch", key="dash_table")

# ----------------------------------------------------------------------------- production recap
if sessions:
    st.subheader(_("Production recap"))
    t_day, t_target, t_defects, t_review, t_timeline = st.tabs([
        _("Sheets per day and shift"), _("Target vs actual"), _("Defect types"), _("Approve / reject"),
        _("Count over time")])
    with t_day:
        if recap.per_shift:
            st.caption(_("Shifts: A 06–14, B 14–22, C 22–06 (plant time); a night-shift sheet belongs to the day "
                         "its shift started."))
            a, b = st.columns([3, 2])
            # days as categories with the language's date ("29 Nov 2026"): a date axis of one day
            # showed clock times ("23:59:59.9996 … 00:00:00.0004")
            per_day = [dict(r, day=i18n.fmt_date(r["day"], c.lang)) for r in recap.per_shift]
            days = list(dict.fromkeys(i18n.fmt_date(r["day"], c.lang) for r in sorted(recap.per_shift,
                                                                                   key=lambda r: r["day"])))
            fig = px.bar(per_day, x="day", y="sheets", color="shift", barmode="stack",
                         labels={"day": _("Day"), "sheets": _("Sheets"), "shift": _("Shift")},
                         category_orders={"shift": list(reports.SHIFT_NAMES), "day": days})
            fig.update_xaxes(type="category")
            fig.update_layout(title=_("Sheets per day"), height=340, margin=dict(t=40, b=10))
            a.plotly_chart(fig, width="stretch", key="chart_day")
            per_shift: dict[str, int] = {n: 0 for n in reports.SHIFT_NAMES}
            for r in recap.per_shift:
                per_shift[r["shift"]] += r["sheets"]
            fig = px.bar(x=list(per_shift), y=list(per_shift.values()), labels={"x": _("Shift"), "y": _("Sheets")})
            fig.update_layout(title=_("Sheets per shift"), height=340, margin=dict(t=40, b=10))
            b.plotly_chart(fig, width="stretch", key="chart_shift")
        else:
            st.info(_("No sheets counted yet."))
    with t_target:
        tva = recap.target_vs_actual
        fig = go.Figure([go.Bar(name=_("Target"), x=[r["name"] for r in tva], y=[r["target"] for r in tva],
                                marker_color="#9DB4D3"),
                         go.Bar(name=_("Count"), x=[r["name"] for r in tva], y=[r["count"] for r in tva],
                                marker_color=["#D33F3F" if r["count"] != r["target"] else "#2F5D9B" for r in tva])])
        fig.update_layout(barmode="group", height=360, margin=dict(t=20, b=10))
        st.plotly_chart(fig, width="stretch", key="chart_target")
    with t_defects:
        if recap.defect_types:
            fig = px.bar(x=list(recap.defect_types.values()),
                         y=[i18n.defect_label(k, c.lang) for k in recap.defect_types], orientation="h",
                         labels={"x": _("Defects"), "y": _("Type")})
            fig.update_layout(height=340, margin=dict(t=20, b=10), yaxis={"categoryorder": "total ascending"})
            st.plotly_chart(fig, width="stretch", key="chart_defects")
        else:
            st.info(_("No defects found in these sessions."))
    with t_review:
        rv = {k: recap.reviews.get(k, 0) for k in ("approved", "rejected", "pending")}
        if sum(rv.values()):
            a, b = st.columns([2, 1])
            fig = go.Figure(go.Pie(labels=[_(k) for k in rv], values=list(rv.values()), hole=0.45,
                                   marker_colors=["#2E9E44", "#D33F3F", "#A0A0A0"], sort=False))
            fig.update_layout(height=320, margin=dict(t=20, b=10))
            a.plotly_chart(fig, width="stretch", key="chart_review")
            b.metric(_("Approve rate"), "–" if recap.approve_rate is None else c.num(100 * recap.approve_rate, 1) + " %")
            b.metric(_("Reject rate"), "–" if recap.reject_rate is None else c.num(100 * recap.reject_rate, 1) + " %")
            b.caption(_("Of the captures reviewed so far ({n} still pending).").format(n=c.num(rv["pending"])))
        else:
            st.info(_("No captures yet."))
    with t_timeline:
        by_id = {s.id: s for s in sessions}
        sid = st.selectbox(_("Session"), list(by_id), key="dash_timeline_session",
                           format_func=lambda i: f"{by_id[i].name} · {c.dt(by_id[i].started_at)}")
        tl = reports.count_timeline(c.db, sid, c.tz) if sid else []
        if tl:
            fig = go.Figure(go.Scatter(x=[e["time"] for e in tl], y=[e["count"] for e in tl], mode="lines",
                                       line_shape="hv", name=_("Count")))
            man = [e for e in tl if e["kind"] != "auto"]
            if man:
                fig.add_trace(go.Scatter(x=[e["time"] for e in man], y=[e["count"] for e in man], mode="markers",
                                         marker=dict(color="#D33F3F", size=10, symbol="x"), name=_("Manual correction"),
                                         text=[e["reason"] for e in man], hovertemplate="%{text}"))
            fig.add_hline(y=by_id[sid].target, line_dash="dot", annotation_text=_("Target"))
            fig.update_layout(height=340, margin=dict(t=20, b=10), xaxis_title=_("Time") + f" ({c.tz})",
                              yaxis_title=_("Count"))
            # numbers only: plotly's own month names are English in every language
            fig.update_xaxes(tickformat="%d/%m %H:%M", hoverformat="%d/%m/%Y %H:%M:%S")
            st.plotly_chart(fig, width="stretch", key="chart_timeline")
        else:
            st.info(_("This session has no count events yet."))

# ----------------------------------------------------------------------------- reports
st.subheader(_("Reports"))
if sessions:
    by_id = {s.id: s for s in sessions}
    if c.jobs is not None and not st.session_state.get("_dash_form_restored"):
        # a new browser session (a reload): the form shows what the last report was for, so its
        # downloads stay offered — and only under the selection they belong to
        st.session_state["_dash_form_restored"] = True
        last = c.jobs.latest("report", 1)
        p = (last[0].params or {}) if last else {}
        ids_p, fmts_p = list(p.get("session_ids") or []), [f for f in p.get("formats") or [] if f in FORMAT_LABELS]
        if fmts_p and len(ids_p) == 1 and ids_p[0] in by_id:
            st.session_state.update(dash_scope="session", dash_report_session=ids_p[0], dash_formats=fmts_p)
        elif fmts_p and ids_p and set(ids_p) == set(by_id):
            st.session_state.update(dash_scope="range", dash_formats=fmts_p)
    scope = st.radio(_("Report for"), ["session", "range"], horizontal=True, key="dash_scope",
                     format_func=lambda v: _("One session") if v == "session" else _("All sessions in the date range"))
    if scope == "session":
        rep_sid = st.selectbox(_("Session"), list(by_id), key="dash_report_session",
                               format_func=lambda i: f"{by_id[i].name} · {c.dt(by_id[i].started_at)}")
        ids, dfrom, dto = [rep_sid], None, None
    else:
        ids = [s.id for s in reversed(sessions)]
        dfrom = d_from.isoformat() if isinstance(d_from, date) else None
        dto = d_to.isoformat() if isinstance(d_to, date) else None
        st.caption(_("{n} sessions, {a} – {b}").format(n=c.num(len(ids)), a=dfrom or "…", b=dto or "…"))
    formats = st.multiselect(_("Formats"), list(FORMAT_LABELS), default=["pdf", "xlsx"], key="dash_formats",
                             format_func=FORMAT_LABELS.get)
    if st.button(_("Generate Report"), type="primary", key="dash_generate", disabled=not formats or not ids):
        if c.jobs is None:
            st.error(_("Background jobs are not available in this app process."))
        else:
            c.jobs.submit("report", reports.report_job, session_ids=ids, formats=formats, date_from=dfrom,
                          date_to=dto, lang=c.lang, tz=c.tz)
else:
    ids, formats = [], []
    st.caption(_("Reports need at least one session in the date range."))


def _job_result(j) -> None:
    """Downloads of a finished report job (the files live in data/exports, so a reload keeps them)."""
    if j.status == "failed":
        st.error(_("The report failed: {err}").format(err=j.message))
        return
    if j.status == "cancelled":
        st.warning(_("The report was cancelled."))
        return
    st.success(_("Report ready ({when}).").format(when=c.dt(j.updated_at)))
    files = j.result.get("files", [])
    cols = st.columns(max(1, len(files)))
    for col, f in zip(cols, files):
        p = Path(f["path"])
        if not p.is_file():
            col.caption(_("{name}: the file is gone").format(name=f["name"]))
            continue
        # deferred data: the file is read only when the button is clicked, not on every rerun
        col.download_button(_("Download {fmt}").format(fmt=FORMAT_LABELS.get(f["format"], f["format"])),
                            data=lambda p=p: p.read_bytes(), file_name=f["name"], key=f"dl_{j.id}_{f['format']}",
                            on_click="ignore",
                            help=_("{size} KB, made in {s} s").format(size=c.num(f["bytes"] / 1024),
                                                                       s=c.num(f["seconds"], 1)))


@st.fragment(run_every=POLL_S)
def _poll_report_job(job_id: str) -> None:
    """Progress of a running report job; when it ends, one full rerun shows the downloads."""
    j = c.jobs.get(job_id)
    if j is None or j.finished:
        st.rerun()
    st.progress(j.progress, text=_("Generating the report…") + f" {c.num(100 * j.progress)} % · {j.message}")
    if st.button(_("Cancel"), key="dash_cancel"):
        c.jobs.cancel(job_id)


if c.jobs is not None:
    latest = c.jobs.latest("report", 1)
    if latest and latest[0].status == "running":
        _poll_report_job(latest[0].id)    # polls only while a job runs
    elif latest:
        p = latest[0].params or {}
        # downloads only for what the form shows now: another selection must not be one click
        # away from the previous job's files
        if list(p.get("session_ids") or []) == list(ids) and sorted(p.get("formats") or []) == sorted(formats):
            _job_result(latest[0])
