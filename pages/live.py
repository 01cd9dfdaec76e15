"""Live Monitoring: the video on the left, the session on the right.

Thin view over :class:`core.live.process.LiveOwner` (one per app, shared by every tab), the
handle on the counting worker PROCESS: the page reads its published status and sends
commands. Buttons send a command with an id and show "sent" until the worker confirms
(a click is never dropped). The video is one MJPEG stream (``<img>``) served by the app
from frames the worker encoded once for all viewers; no page rerun touches the video.

What changes every second (counter, state, source line, log) is drawn by ``live_view.js``, a
components-v2 component that polls the stream server's ``/status.json``: Streamlit reruns the
session panel only when the component reports a structural change (see :func:`struct_key`),
never once per second per tab.
"""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.live import alerts
from core.live.process import session_from_dict
from core.live.sessions import SessionError
from core.live.worker import DEMO, UploadError, validate_upload
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
w = c.worker

ACK_WAIT_S = 2.0        # a click waits up to this long for the worker's confirmation, then shows "sent"
VIDEO_FPS = 10          # frames/s of the MJPEG stream for this tab
HIDDEN_FPS = 1          # … while the tab is in the background
POLL_MS = 500           # the component reads /status.json this often (no Streamlit rerun)
HIDDEN_POLL_MS = 5000   # … while the tab is in the background
ALERT_SHOW_S = 6.0      # keep a fired alert's audio element mounted long enough to play

st.title(_("Live Monitoring"))
if w is None:
    st.error(_("The counting worker is not available. Check the server log."))
    st.stop()


def _err(exc: BaseException) -> None:
    """One clear message: our own errors are translated, anything else goes to the log."""
    if isinstance(exc, (SessionError, UploadError)):
        st.error(exc.translated(_))
    else:
        friendly_error(c, exc, "The action failed")


# --- the self-updating parts: one components-v2 component, mounted twice -------------------------
_ASSETS = Path(__file__).resolve().parent
live_view = st.components.v2.component(
    "msm_live_view", js=(_ASSETS / "live_view.js").read_text(encoding="utf-8"),
    css=(_ASSETS / "live_view.css").read_text(encoding="utf-8"), isolate_styles=False)


def _labels() -> dict:
    """Every text the component shows, translated here (the script only fills in numbers)."""
    return {
        "states": {"idle": _("idle"), "connecting": _("connecting"), "live": _("live"),
                   "reconnecting": _("reconnecting"), "stalled": _("stalled"), "ended": _("ended"),
                   "error": _("error")},
        "source_line": _("Source: {src} — {state}"), "outages": _("outages: {n}"), "fps": _("{fps} frames/s"),
        "restarting": _("The counting process is restarting; counting resumes where it stopped."),
        "unreachable": _("The camera cannot be reached. The counter keeps trying and goes on by itself when the "
                         "video is back; the session stays open."),
        "stalled": _("The camera stopped sending pictures. The counter waits for the video; the session stays open."),
        "slow": _("Counting is slower than the video source: {fps} of {src} frames/s."),
        "detail": _("Technical detail: {why}"),
        "status_lost": _("no status from the server"),
        "active": _("Monitoring active"), "paused": _("Paused"), "waiting": _("Waiting for the camera"),
        "video_alt": _("Live video"),
        "over": _("Over target: {n} sheets too many."), "log": _("Log"), "no_sheets": _("No sheets yet."),
        "log_auto": _("{time} — Sheet #{n} detected"), "log_fix": _("{time} — Correction {d} → {n} ({why})"),
    }


def struct_key(st_json: dict) -> str:
    """What the panel was drawn for (the script's ``structKey``): when the polled status
    differs, the panel reruns once."""
    s = st_json.get("session")
    return (f"{s['id']}|{s['status']}|{'over' if s['count'] > s['target'] else ''}" if s else "none") \
        + "|" + (st_json.get("last_command") or "")


def _view_data(mode: str, snap: dict) -> dict:
    base = stream_base()
    return {"mode": mode, "lang": c.lang, "labels": _labels(), "initial": snap,
            "status_url": f"{base}/status.json" if base else None,
            "stream_url": f"{base}/stream.mjpg" if base else None, "fps": VIDEO_FPS, "hidden_fps": HIDDEN_FPS,
            "poll_ms": POLL_MS, "hidden_poll_ms": HIDDEN_POLL_MS, "rendered": struct_key(snap)}


def _noop() -> None:
    """The trigger only asks for the rerun; what changed is read from the worker's status."""


def _play(kind: str, sess_id: str) -> None:
    """Remember an alert once per tab; the audio element plays it in the browser."""
    fired = st.session_state.setdefault("live_alerts", {})
    key = f"{sess_id}:{kind}"
    if key not in fired:
        fired[key] = time.time()
    st.session_state["live_alert"] = kind


def _render_audio(sess_id: str) -> None:
    fired = st.session_state.get("live_alerts", {})
    for key, at in list(fired.items()):
        sid, kind = key.split(":", 1)
        if sid == sess_id and time.time() - at < ALERT_SHOW_S:
            p = alerts.sound_path(kind, c.settings, c.paths)
            # the sound plays; the player itself ("0:00 / 0:00") is hidden (CSS on the keyed container)
            with st.container(key=f"live_audio_{kind}"):
                st.audio(p.read_bytes(), format=alerts.mime_type(p), autoplay=True)
    st.html("<style>[class*='st-key-live_audio_']{display:none !important}</style>")


# --- the right-hand column: status, counter, controls, log -------------------------------------
# Buttons act in on_click callbacks: they run before the (fragment) rerun, so what is drawn
# afterwards already shows the new state; messages wait in session state for that rerun.
def _do(action: str, *args) -> None:
    """Send the command; wait a moment for the confirmation so the rerun usually shows the
    new state at once, else the panel shows "sent" until the worker acknowledges."""
    st.session_state.pop("live_msg", None)      # a message stays until the next action
    if action != "ask_finish":
        st.session_state.pop("live_confirm_finish", None)
    if action == "ask_finish":                  # FINISH asks once before it ends the session
        st.session_state["live_confirm_finish"] = True
        return
    if action == "cancel_finish":
        return
    kw = {"delta": args[0], "reason": st.session_state.get("live_reason", ""), "user": c.user} \
        if action == "correct" else {}
    try:
        cid = w.submit(action, **kw)
    except Exception as e:   # the database refused the command: say so, never a traceback
        import logging
        logging.getLogger("msm.ui").exception("live action %s could not be sent", action)
        st.session_state["live_msg"] = _("The action failed") + f": {e}"
        return
    st.session_state["live_pending"] = {"id": cid, "action": action}
    w.wait(cid, ACK_WAIT_S)
    _settle()


def _settle() -> bool:
    """Handle the pending command's acknowledgement; True while it is still unconfirmed."""
    pend = st.session_state.get("live_pending")
    if not pend:
        return False
    cmd = w.command(pend["id"])
    if cmd is not None and not cmd.acked:
        return True
    st.session_state.pop("live_pending", None)
    if cmd is None:
        return False
    if cmd.status == "error":
        err = cmd.error
        st.session_state["live_msg"] = _(err.get("msgid") or "The action failed").format(**(err.get("args") or {}))
    elif pend["action"] == "finish":
        done = session_from_dict(cmd.result.get("session"))
        if done is not None:
            st.session_state["live_finished"] = done.id
            kind = alerts.alert_kind_for_finish(done.count, done.target)
            st.session_state["live_alert"] = kind or "finish_ok"
            if kind:
                _play(kind, done.id)
    return False


def _session_panel(had_session: bool) -> None:
    """Reruns only when its component says something structural changed (or a button was
    clicked); the counter and the state in between are updated by the component itself."""
    pending = _settle()
    s = w.status()
    snap = w.status_json(s)
    sess = s.session
    if (sess is not None) != had_session:
        st.rerun()      # started/finished here or in another tab: redraw the whole page
    live_view(key="live_panel", data=_view_data("panel", snap), on_update_change=_noop)
    msg = st.session_state.get("live_msg")
    if msg:
        st.error(msg)
    if sess is None:
        done = st.session_state.get("live_finished")
        if done is not None:
            _finished_panel(done)
        return
    st.session_state["live_count"] = sess.count
    if sess.count > sess.target:      # the panel reruns when the count crosses the target
        _play("over_target", sess.id)
    _render_audio(sess.id)

    b1, b2 = st.columns(2)
    # while a command waits for its confirmation the buttons are off: a second click
    # cannot queue a contradicting command, and the first one is never lost
    if sess.is_active:
        b1.button(_("PAUSE"), key="live_pause", width="stretch", on_click=_do, args=("pause",), disabled=pending)
    else:
        b1.button(_("RESUME"), key="live_resume", width="stretch", on_click=_do, args=("resume",),
                  disabled=pending)
    b2.button(_("FINISH SESSION"), key="live_finish", type="primary", width="stretch",
              on_click=_do, args=("ask_finish",), disabled=pending)
    if st.session_state.get("live_confirm_finish") and not pending:
        st.warning(_("Finish the session now at {n} / {t}?").format(n=c.num(sess.count), t=c.num(sess.target)))
        f1, f2 = st.columns(2)
        f1.button(_("Yes, finish"), key="live_finish_yes", type="primary", width="stretch",
                  on_click=_do, args=("finish",))
        f2.button(_("Cancel"), key="live_finish_no", width="stretch", on_click=_do, args=("cancel_finish",))
    if pending:
        st.caption(":orange[●] " + _("Sent: waiting for the counter to confirm…"))

    # keyed: the section keeps its open/closed state across the panel's reruns
    with st.expander(_("Manual correction"), key="live_correction"):
        st.text_input(_("Reason"), key="live_reason", placeholder=_("e.g. sheet missed by the camera"))
        m1, m2 = st.columns(2)
        m1.button("+1", key="live_plus", width="stretch", on_click=_do, args=("correct", +1), disabled=pending)
        m2.button("−1", key="live_minus", width="stretch", on_click=_do, args=("correct", -1), disabled=pending)
    live_view(key="live_log", data=_view_data("log", snap))



def _finished_panel(session_id: str) -> None:
    from core.live.sessions import session_status
    try:
        done = session_status(c.db, session_id)
    except SessionError:
        return
    kind = alerts.alert_kind_for_finish(done.count, done.target)
    msg = _("Session '{name}' finished: {n} / {t}.").format(name=done.name, n=c.num(done.count),
                                                             t=c.num(done.target))
    if kind == "finish_under":
        st.warning(msg + " " + _("Under target: {n} sheets missing.").format(n=c.num(done.target - done.count)))
    elif kind == "finish_over":
        st.error(msg + " " + _("Over target: {n} sheets too many.").format(n=c.num(done.count - done.target)))
    else:
        st.success(msg + " " + _("Target reached."))
    _render_audio(done.id)
    try:
        import json

        from core.reports.sessionlog import build_session_log
        data = json.dumps(build_session_log(c.db, session_id, c.tz), ensure_ascii=False, indent=2)
        st.download_button(_("Download the JSON log"), data=data.encode("utf-8"),
                           file_name=f"{session_id}.json", mime="application/json", key="live_dl_json")
    except ImportError:
        st.caption(_("The JSON log is not available yet."))
    except Exception as e:
        friendly_error(c, e, "The JSON log could not be built")


def start_form() -> None:
    """Source choice and the session inputs (only while no session is open)."""
    s = w.status()
    # open whenever the counter has no live picture (also while its process starts)
    with st.expander(_("Video source"), expanded=s.source_status != "live"):
        kinds = {"demo": _("Demo clip"), "file": _("Upload a video file"), "rtsp": _("RTSP camera")}
        kind = st.radio(_("Source"), list(kinds), format_func=kinds.get, horizontal=True, key="live_src_kind")
        try:
            if kind == "demo":
                if st.button(_("Use the demo clip"), key="live_use_demo"):
                    w.set_source(DEMO)
                    st.rerun()
            elif kind == "file":
                limit = c.settings.storage.max_upload_mb
                up = st.file_uploader(_("Video file (max {n} MB)").format(n=c.num(limit)), key="live_upload",
                                      type=[e.lstrip(".") for e in (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")])
                if up is not None and st.button(_("Use this file"), key="live_use_file"):
                    dest = validate_upload(up.getvalue(), up.name, c.paths, limit)
                    w.set_source(str(dest))
                    st.rerun()
            else:
                url = st.text_input(_("RTSP address"), value=c.settings.camera.rtsp_url,
                                    placeholder="rtsp://192.168.1.10:554/stream1", key="live_rtsp")
                if st.button(_("Connect"), key="live_use_rtsp"):
                    w.set_source(url)
                    st.rerun()
        except Exception as e:
            _err(e)

    with st.form("live_start", border=True):
        name = st.text_input(_("Session name"), key="live_name", placeholder="Batch-A")
        target = st.text_input(_("Max count target"), value="100", key="live_target")
        go = st.form_submit_button(_("START SESSION"), type="primary", width="stretch")
    if go:
        try:
            w.start_session(name, target, user=c.user)
        except Exception as e:
            _err(e)
        else:
            st.session_state.pop("live_finished", None)
            st.session_state.pop("live_alert", None)
            st.rerun()


# --- the left-hand column: the video ----------------------------------------------------------
def stream_base() -> str | None:
    """Where this browser fetches the MJPEG stream and the status: ``MSM_STREAM_URL`` (behind
    a proxy), else the host the browser used for the app, on the stream server's port."""
    import os
    base = os.environ.get("MSM_STREAM_URL", "").rstrip("/")
    if not base:
        port = getattr(w, "stream_port", None)
        if not port:
            return None
        host = (st.context.headers.get("Host") or "127.0.0.1").rsplit(":", 1)[0] if st.context.headers \
            else "127.0.0.1"
        base = f"http://{host}:{port}"
    return base


def video() -> None:
    """The video and the source line: one component that keeps its stream connection across
    reruns (keyed), slows it to 1 frame/s while the tab is hidden and polls the status."""
    if stream_base() is None:
        st.info(_("The video stream is not available; counting goes on."))
    live_view(key="live_video", data=_view_data("video", w.status_json()))


# without the stream server (its port taken) nothing polls the status: the panel then reruns
# itself every 2 s, as it did before the component
session_panel = st.fragment(run_every=None if stream_base() else 2.0)(_session_panel)
status = w.status()
left, right = st.columns([3, 2], gap="large")
with left:
    video()
with right:
    busy = status.session is not None
    # above the fragment: elements after a self-refreshing fragment may be dropped on its reruns
    st.page_link("pages/defects.py", label=_("Defect check"), icon=":material/search:", disabled=busy,
                 help=_("Disabled while a session runs (memory).") if busy else None)
    if status.session is None:
        start_form()
    session_panel(status.session is not None)
