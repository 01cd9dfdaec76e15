"""Live Monitoring: the video on the left, the session on the right.

Thin view over :class:`core.live.worker.CountingWorker` (one per process, shared by every tab):
it reads the worker's status and latest frame and calls its session methods. Nothing here
waits for a model or the counting loop. The video goes through streamlit-webrtc
(server-side frames, receive-only); until WebRTC plays — or when it cannot connect — a
polling image (``st.fragment(run_every=…)``) shows the same frames.
"""
from __future__ import annotations

import time

import streamlit as st

from core.live import alerts
from core.live.sessions import SessionError, recent_log
from core.live.worker import DEMO, UploadError, validate_upload
from pages.common import ctx, friendly_error

c = ctx()
_ = c._
w = c.worker

REFRESH_S = 1.0         # counter/log refresh
VIDEO_REFRESH_S = 0.5   # polling-image fallback
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


def _status_line(s) -> None:
    labels = {"idle": _("idle"), "connecting": _("connecting"), "live": _("live"),
              "reconnecting": _("reconnecting"), "stalled": _("stalled"), "ended": _("ended"),
              "error": _("error")}
    # coloured bullets render in any browser font (emoji need an emoji font)
    icon = {"live": ":green[●]", "connecting": ":orange[●]", "reconnecting": ":orange[●]", "stalled": ":orange[●]",
            "error": ":red[●]"}.get(s.source_status, ":gray[●]")
    text = _("Source: {src} — {state}").format(src=s.source_label or "–",
                                                state=labels.get(s.source_status, s.source_status))
    if s.outages:
        text += " · " + _("outages: {n}").format(n=c.num(s.outages))
    if s.fps and s.source_status == "live":        # a dead camera has no frame rate (it showed a stale one)
        text += " · " + _("{fps} frames/s").format(fps=c.num(s.fps, 1))
    st.caption(f"{icon} {text}")
    # a source problem is said as one, in the reader's language; the raw (technical) reason after it
    if s.source_status in ("reconnecting", "error"):
        st.warning(_("The camera cannot be reached. The counter keeps trying and goes on by itself when the "
                     "video is back; the session stays open."))
    elif s.source_status == "stalled":
        st.warning(_("The camera stopped sending pictures. The counter waits for the video; the session stays open."))
    if s.source_status in ("reconnecting", "stalled", "error") and s.source_message:
        st.caption(_("Technical detail: {why}").format(why=s.source_message))


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
    st.session_state.pop("live_msg", None)      # a message stays until the next action
    if action != "ask_finish":
        st.session_state.pop("live_confirm_finish", None)
    try:
        if action == "pause":
            w.pause()
        elif action == "resume":
            w.resume()
        elif action == "correct":
            w.correct(args[0], st.session_state.get("live_reason", ""), user=c.user)
        elif action == "ask_finish":             # FINISH asks once before it ends the session
            st.session_state["live_confirm_finish"] = True
        elif action == "cancel_finish":
            pass
        elif action == "finish":
            done = w.finish()
            st.session_state["live_finished"] = done.id
            kind = alerts.alert_kind_for_finish(done.count, done.target)
            st.session_state["live_alert"] = kind or "finish_ok"
            if kind:
                _play(kind, done.id)
    except (SessionError, UploadError) as e:
        st.session_state["live_msg"] = e.translated(_)
    except Exception as e:   # never a traceback on the page
        import logging
        logging.getLogger("msm.ui").exception("live action %s failed", action)
        st.session_state["live_msg"] = _("The action failed") + f": {e}"


@st.fragment(run_every=REFRESH_S)
def session_panel(had_session: bool) -> None:
    s = w.status()
    sess = s.session
    if (sess is not None) != had_session:
        st.rerun()      # started/finished here or in another tab: redraw the whole page
    msg = st.session_state.get("live_msg")
    if msg:
        st.error(msg)
    if sess is None:
        done = st.session_state.get("live_finished")
        if done is not None:
            _finished_panel(done)
        return
    over = sess.count > sess.target
    color = "#d1242f" if over else "#1a7f37"
    state_text = _("Monitoring active") if s.monitoring else _("Paused")
    state_color = "#1a7f37" if s.monitoring else "#d1242f"
    if sess.is_active and s.source_status in ("connecting", "reconnecting", "stalled", "error"):
        state_text, state_color = _("Waiting for the camera"), "#b35900"    # not "Paused": nobody paused
    st.markdown(f"<div style='font-weight:600;color:{state_color}'>● {state_text}</div>", unsafe_allow_html=True)
    st.markdown(f"**{sess.name}**")
    st.markdown(f"<div data-testid='live-counter' style='font-size:4.5rem;font-weight:800;line-height:1;"
                f"color:{color}'>{c.num(sess.count)} / {c.num(sess.target)}</div>", unsafe_allow_html=True)
    st.session_state["live_count"] = sess.count
    if over:
        st.error(_("Over target: {n} sheets too many.").format(n=c.num(sess.count - sess.target)))
        _play("over_target", sess.id)
    _render_audio(sess.id)

    b1, b2 = st.columns(2)
    if sess.is_active:
        b1.button(_("PAUSE"), key="live_pause", width="stretch", on_click=_do, args=("pause",))
    else:
        b1.button(_("RESUME"), key="live_resume", width="stretch", on_click=_do, args=("resume",))
    b2.button(_("FINISH SESSION"), key="live_finish", type="primary", width="stretch",
              on_click=_do, args=("ask_finish",))
    if st.session_state.get("live_confirm_finish"):
        st.warning(_("Finish the session now at {n} / {t}?").format(n=c.num(sess.count), t=c.num(sess.target)))
        f1, f2 = st.columns(2)
        f1.button(_("Yes, finish"), key="live_finish_yes", type="primary", width="stretch",
                  on_click=_do, args=("finish",))
        f2.button(_("Cancel"), key="live_finish_no", width="stretch", on_click=_do, args=("cancel_finish",))

    # keyed: the section keeps its open/closed state across the panel's reruns
    with st.expander(_("Manual correction"), key="live_correction"):
        st.text_input(_("Reason"), key="live_reason", placeholder=_("e.g. sheet missed by the camera"))
        m1, m2 = st.columns(2)
        m1.button("+1", key="live_plus", width="stretch", on_click=_do, args=("correct", +1))
        m2.button("−1", key="live_minus", width="stretch", on_click=_do, args=("correct", -1))

    _log_feed(sess.id)


def _log_feed(session_id: str) -> None:
    st.markdown("**" + _("Log") + "**")
    lines = []
    for e in recent_log(c.db, session_id, limit=12):
        when = c.dt(e.at, with_date=False)
        if e.kind == "auto":
            lines.append(_("{time} — Sheet #{n} detected").format(time=when, n=c.num(e.count_after)))
        else:
            lines.append(_("{time} — Correction {d} → {n} ({why})").format(
                time=when, d=f"{e.delta:+d}", n=c.num(e.count_after), why=e.reason))
    st.code("\n".join(lines) if lines else _("No sheets yet."), language=None)


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
        from core.reports.reports import build_session_log
        import json
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
    with st.expander(_("Video source"), expanded=s.source_status in ("idle", "error", "ended", "reconnecting")):
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
@st.fragment(run_every=VIDEO_REFRESH_S)
def polling_video() -> None:
    jpeg = w.latest_jpeg(max_width=960)
    if jpeg is None:
        st.info(_("Waiting for video…"))
    else:
        st.image(jpeg, width="stretch")


def webrtc_video() -> bool:
    """The live feed through streamlit-webrtc; True when it is playing."""
    try:
        import av
        import numpy as np
        from streamlit_webrtc import WebRtcMode, create_video_source_track, webrtc_streamer
    except ImportError:
        return False
    blank = np.zeros((360, 640, 3), np.uint8)

    def next_frame(pts, time_base):  # runs in the WebRTC thread, never in the counting loop
        img = w.latest_frame()
        if img is None:
            img = blank
        elif img.shape[1] > 960:
            import cv2
            img = cv2.resize(img, (960, int(img.shape[0] * 960 / img.shape[1])), interpolation=cv2.INTER_AREA)
        return av.VideoFrame.from_ndarray(img, format="bgr24")

    try:
        track = create_video_source_track(next_frame, key="live_video", fps=10)
        rtc = webrtc_streamer(key="live_webrtc", mode=WebRtcMode.RECVONLY, source_video_track=track,
                              media_stream_constraints={"video": True, "audio": False},
                              desired_playing_state=True)
        return bool(rtc.state.playing)
    except Exception as e:   # WebRTC unavailable: the polling image carries on alone
        import logging
        logging.getLogger("msm.ui").warning("WebRTC unavailable: %s", e)
        return False


status = w.status()
left, right = st.columns([3, 2], gap="large")
with left:
    use_rtc = st.toggle(_("WebRTC video"), value=True, key="live_use_webrtc",
                        help=_("Turn off when the video does not play (a plain image is shown)."))
    playing = webrtc_video() if use_rtc else False
    if not playing:
        polling_video()
    _status_line(status)
with right:
    busy = status.session is not None
    # above the fragment: elements after a self-refreshing fragment may be dropped on its reruns
    st.page_link("pages/defects.py", label=_("Defect check"), icon=":material/search:", disabled=busy,
                 help=_("Disabled while a session runs (memory).") if busy else None)
    if status.session is None:
        start_form()
    session_panel(status.session is not None)
