"""Models: registered versions per task, activate / roll back, upload a model (validated
before it is registered), and train a detector in the background with live metrics.

Thin view over :mod:`core.models.manager` (registry, model manager) and :mod:`core.models.training`.
Training runs as a child process inside a background job (:class:`core.platform.jobs.JobRunner`),
so the page never blocks, cancel really stops it, and a reloaded page finds it again.
"""
from __future__ import annotations

import streamlit as st

from core.models.manager import TASKS, ModelError, Registry
from core.platform.paths import atomic_write_bytes, slugify
from pages.auth_gate import require_engineer
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
who = require_engineer(c)     # swapping and training models is an engineer's job

TASK_LABELS = {"sheet": _("Metal-sheet detector"), "defect": _("Defect locator"), "sam2": _("SAM 2 segmenter")}
POLL_S = 2.0

st.title(_("Models"))


def _registry() -> Registry:
    return c.models.registry if c.models is not None else Registry(c.db, c.paths)


def _runner():
    if getattr(c, "jobs", None) is not None:
        return c.jobs
    return _fallback_runner(c.db.url)


@st.cache_resource(show_spinner=False)
def _fallback_runner(_url: str):
    # only when app.py provides no shared runner (one per process, never per page run)
    from core.platform.jobs import JobRunner
    return JobRunner(c.db)


reg = _registry()


def _map50(metrics: dict):
    """The reported mAP50: held-out when there is one; NEU-DET val (``map50``) for the locator."""
    return metrics.get("heldout_mAP50", metrics.get("mAP50", metrics.get("map50")))

# --- what is loaded now ----------------------------------------------------------------------
if c.models is not None:
    mem = c.models.memory()
    mode = _("counting") if mem["mode"] == "counting" else _("analysis")
    resident = ", ".join(mem["resident"]) or _("none")
    st.caption(_("Mode: {mode} · loaded: {resident} · process memory {rss} MB").format(
        mode=mode, resident=resident, rss=c.num(mem["rss_mb"], 0)))
    for slot, msg in c.models.problems.items():
        st.warning("{}: {}".format(slot, msg))

# --- versions --------------------------------------------------------------------------------
st.subheader(_("Versions"))
if st.session_state.get("models_flash"):
    st.success(st.session_state.pop("models_flash"))
versions = reg.list()
if not versions:
    st.info(_("No model is registered yet. Put model files in weights/ or train one below."))
else:
    rows = []
    for m in versions:
        rows.append({
            _("Task"): TASK_LABELS.get(m.task, m.task),
            _("Name"): m.name,
            _("Version"): m.version,
            _("Active"): bool(m.active),          # a check box: no emoji font needed
            _("Source"): _(m.source),
            "mAP50": c.num(_map50(m.metrics), 3) if isinstance(_map50(m.metrics), (int, float)) else "",
            _("Created"): c.dt(m.created_at),
            "SHA-256": m.sha256[:12] + "…",
            _("File"): m.stored_path,
        })
    st.dataframe(rows, hide_index=True, width="stretch")

    col_t, col_v, col_a, col_r = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    task = col_t.selectbox(_("Task"), [t for t in TASKS if reg.list(t)], format_func=TASK_LABELS.get,
                           key="models_task")
    choices = [m.version for m in reg.list(task)] if task else []
    version = col_v.selectbox(_("Version"), choices, key="models_version")
    if col_a.button(_("Activate"), disabled=not version, key="models_activate"):
        try:
            reg.activate(task, version)
            c.db.log(f"model {task} {version} activated by {who}")
            st.session_state["models_flash"] = _("{task}: version {version} is active.").format(
                task=TASK_LABELS[task], version=version)
            st.rerun()   # the table and the manager pick up the change; the message survives the rerun
        except ModelError as e:
            st.error(_("The version could not be activated: {why}").format(why=e))
    if col_r.button(_("Roll back"), disabled=not task, key="models_rollback"):
        try:
            mv = reg.rollback(task)
            c.db.log(f"model {task} rolled back to {mv.version} by {who}")
            st.session_state["models_flash"] = _("{task}: rolled back to version {version}.").format(
                task=TASK_LABELS[task], version=mv.version)
            st.rerun()
        except ModelError as e:
            st.error(_("Rolling back failed: {why}").format(why=e))

# --- defect thresholds ---------------------------------------------------------------------------
def _threshold_table() -> None:
    """Per-class confidences of the active defect locator: the shipped table (chosen for a
    stated precision on the selection split, reported on NEU-DET val) and Settings' overrides."""
    from core.qa import defects as D
    st.subheader(_("Defect thresholds"))
    path = D.active_model_path(c.paths, c.db)
    info = D.shipped_threshold_table(path, c.paths)
    overrides = c.settings.models.defect_class_confidence or {}
    if not info and not overrides:
        st.info(_("The active defect locator ships no per-class thresholds; every class uses {conf}.").format(
            conf=c.num(c.settings.models.defect_confidence, 2)))
        return
    if info:
        st.caption(_("Chosen for precision ≥ {p} on {on}; precision and recall reported on {rep}.").format(
            p=c.num(info.get("target_precision", 0), 2), on=info.get("chosen_on", ""),
            rep=info.get("reported_on", "")))
    rows = []
    classes = list((info.get("classes") or {}).keys()) or sorted(overrides)
    for cls in classes:
        row = (info.get("classes") or {}).get(cls, {})
        sel, val = row.get("selection") or {}, row.get("val") or {}
        conf = overrides.get(cls, row.get("conf"))

        def f(v):
            return c.num(v, 2) if isinstance(v, (int, float)) else "–"
        rows.append({_("Class"): cls, _("Confidence"): f(conf),
                     _("Set by"): _("Settings") if cls in overrides else _("Model"),
                     _("Precision (selection)"): f(sel.get("precision")), _("Recall (selection)"): f(sel.get("recall")),
                     _("Precision (val)"): f(val.get("precision")), _("Recall (val)"): f(val.get("recall"))})
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(_("Change a class's confidence on the Settings page (Defect analysis)."))


try:
    _threshold_table()
except Exception as e:   # a broken manifest must not take the page down
    friendly_error(c, e, "The threshold table could not be shown")

# --- upload --------------------------------------------------------------------------------------
st.subheader(_("Upload a model"))
with st.form("models_upload", clear_on_submit=True):
    up_task = st.selectbox(_("Task"), list(TASKS), format_func=TASK_LABELS.get, key="models_up_task")
    up = st.file_uploader(_("Model file (.pt)"), type=["pt"], key="models_up_file")
    submitted = st.form_submit_button(_("Validate and register"))
if submitted:
    if up is None:
        st.error(_("Choose a .pt file first."))
    else:
        tmp = c.paths.uploads / "models" / slugify(up.name.rsplit(".", 1)[0], 60)
        tmp = tmp.with_suffix(".pt")
        try:
            atomic_write_bytes(tmp, up.getvalue())
            with st.spinner(_("Checking the model…")):
                mv = reg.register_upload(tmp, up_task, name=up.name.rsplit(".", 1)[0])
            c.db.log(f"model {up_task} {mv.version} uploaded by {who} ({up.name}, sha256 {mv.sha256[:12]})")
            msg = (_("Registered {name} as version {version}; it is active.") if mv.active else
                   _("Registered {name} as version {version}. Activate it above to use it."))
            st.success(msg.format(name=mv.name, version=mv.version))
        except ModelError as e:
            st.error(_("The model was refused: {reason}").format(reason=str(e)))
        except Exception as e:  # disk full etc.: one message, nothing lost
            friendly_error(c, e, "Upload failed")
        finally:
            tmp.unlink(missing_ok=True)

# --- training ------------------------------------------------------------------------------------
st.subheader(_("Train a detector"))
runner = _runner()
running = [j for j in runner.latest("train", 20) if j.status == "running"]


def _train_key(jobs: list) -> tuple | None:
    return (jobs[0].id, jobs[0].status) if jobs else None


# what this page run shows; the status fragment reruns the page when the newest job starts or ends
st.session_state["models_train_seen"] = _train_key(runner.latest("train", 1))
with st.form("models_train"):
    col1, col2 = st.columns(2)
    t_task = col1.selectbox(_("Task"), ["sheet", "defect"], format_func=TASK_LABELS.get, key="models_train_task")
    t_data = col2.text_input(_("Dataset"), value="synthetic:600",
                             help=_("A folder with data.yaml (e.g. a Roboflow export), or synthetic:N"))
    col3, col4, col5, col6 = st.columns(4)
    t_model = col3.text_input(_("Start from"), value="yolo11n.yaml",
                              help=_("yolo11n.yaml trains from scratch; a .pt path fine-tunes"))
    t_epochs = col4.number_input(_("Epochs"), 1, 500, 30)
    t_imgsz = col5.number_input(_("Image size"), 64, 1280, 320, step=32)
    t_batch = col6.number_input(_("Batch"), 1, 128, 16)
    start = st.form_submit_button(_("Start training"), disabled=bool(running))
if start:
    from core.models.training import training_job
    heldout = "synthetic-heldout:200" if t_data.strip().startswith("synthetic:") else None
    jid = runner.submit("train", training_job, data=t_data.strip(), model=t_model.strip(), epochs=int(t_epochs),
                        imgsz=int(t_imgsz), batch=int(t_batch), task=t_task, heldout=heldout)
    st.session_state["models_job"] = jid
    c.db.log(f"training {jid} started by {who}: {t_data.strip()}, {int(t_epochs)} epochs")
    st.rerun()


@st.fragment(run_every=POLL_S)
def training_status() -> None:
    jobs = runner.latest("train", 5)
    if _train_key(jobs) != st.session_state.get("models_train_seen"):
        st.rerun()      # a job ended: the versions table, the buttons and this panel all change
    if not jobs:
        st.caption(_("No training job yet."))
        return
    job = jobs[0]
    res = job.result or {}
    label = {"running": _("running"), "done": _("done"), "failed": _("failed"),
             "cancelled": _("cancelled")}.get(job.status, job.status)
    st.markdown(_("**Latest training job** {id} — {status}, started {when}").format(
        id=job.id, status=label, when=c.dt(job.created_at)))
    st.progress(float(job.progress), text=_("Epoch {epoch} of {epochs}").format(
        epoch=res.get("epoch", 0), epochs=res.get("epochs", job.params.get("epochs", "?"))))
    if job.status == "running":
        if st.button(_("Cancel training"), key=f"cancel_{job.id}"):
            if not runner.cancel(job.id):
                st.warning(_("This job belongs to another app process and cannot be cancelled here."))
    elif job.status == "failed":
        st.error(job.message)
    elif job.status == "done":
        m = res.get("metrics") or {}
        st.success(_("Training finished: mAP50 {map50} (held-out {heldout}). The new version is in the table above.")
                   .format(map50=c.num(m.get("mAP50"), 3), heldout=c.num(m.get("heldout_mAP50"), 3)))
    run_dir = res.get("run_dir")
    if run_dir:
        from core.models.training import read_results
        rows = read_results(run_dir)
        if rows:
            import plotly.graph_objects as go
            fig = go.Figure()
            ep = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
            for key, name in (("metrics/mAP50(B)", "mAP50"), ("metrics/mAP50-95(B)", "mAP50-95"),
                              ("metrics/precision(B)", _("precision")), ("metrics/recall(B)", _("recall"))):
                if key in rows[-1]:
                    fig.add_trace(go.Scatter(x=ep, y=[r.get(key) for r in rows], name=name, mode="lines+markers"))
            for key, name in (("train/box_loss", _("box loss")), ("val/box_loss", _("val box loss"))):
                if key in rows[-1]:
                    fig.add_trace(go.Scatter(x=ep, y=[r.get(key) for r in rows], name=name, yaxis="y2",
                                             line={"dash": "dot"}))
            fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                              xaxis_title=_("epoch"), yaxis={"range": [0, 1]},
                              yaxis2={"overlaying": "y", "side": "right", "showgrid": False},
                              legend={"orientation": "h"}, title=_("Live metrics"))
            st.plotly_chart(fig, key=f"chart_{job.id}")


try:
    training_status()
except Exception as e:  # the status view must never take the page down
    friendly_error(c, e, "Training status unavailable")
