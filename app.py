"""Metal Sheet Monitor — Streamlit entry point.

Wires navigation and the process-wide cached objects: the database, the owner of the
counting worker PROCESS (:class:`core.live.process.LiveOwner`: starts, watches and restarts
it, serves the one shared video stream; shared by every browser tab, stopped on eviction
through ``on_release``) and the model manager (which swaps YOLO and SAM 2 in and out).
Pages only read the worker's state and call ``core``.
"""
from __future__ import annotations

import json

import streamlit as st

from core.platform import i18n
from core.platform import log as _log
from core.platform.health import schedule_maintenance
from core.platform.paths import Paths
from core.platform.storage import Database
from pages.common import AppContext, leave_legacy_pages_mode

st.set_page_config(page_title="Metal Sheet Monitor", page_icon=":material/stacks:", layout="wide")
leave_legacy_pages_mode()


@st.cache_resource
def get_db() -> Database:
    Paths.from_env().ensure()
    return Database()


def _stop_worker(worker) -> None:
    worker.stop()


@st.cache_resource(on_release=_stop_worker)
def get_worker():
    """The owner of THE counting worker process of this app (every tab shares it); the
    worker resumes an open session after a restart. ``MSM_SOURCE`` (demo, a file or
    rtsp://…) sets the source a station starts on (default: the bundled demo clip);
    ``MSM_STREAM_PORT`` the port of the live video stream (default 8502, or any free port
    when 8502 is taken)."""
    import os

    from core.live.process import LiveOwner
    host = st.get_option("server.address") or "0.0.0.0"
    w = LiveOwner(get_db(), Paths.from_env(), source=os.environ.get("MSM_SOURCE") or None,
                  station=os.environ.get("MSM_STATION", ""),    # several stations on one database
                  stream_host=host, stream_port=int(os.environ["MSM_STREAM_PORT"]) if os.environ.get("MSM_STREAM_PORT")
                  else None)
    w.start()
    return w


def _release_models(manager) -> None:
    manager.close()


def _unload_model(model) -> None:
    from core.models.manager import unload_model
    unload_model(model)


# One cached loader per model slot, so the manager's eviction of a slot (.clear()) drops
# exactly that cache entry and on_release frees the model: YOLO and SAM 2 swap, never pile up.
@st.cache_resource(on_release=_unload_model, show_spinner=False)
def _load_sheet_model(key: tuple, _factory):
    return _factory()


@st.cache_resource(on_release=_unload_model, show_spinner=False)
def _load_defect_model(key: tuple, _factory):
    return _factory()


@st.cache_resource(on_release=_unload_model, show_spinner=False)
def _load_segmenter_model(key: tuple, _factory):
    return _factory()


class _StreamlitModelCache:
    """core.models.manager.ModelCache backed by st.cache_resource (core never imports streamlit)."""
    loaders = {"sheet": _load_sheet_model, "defect": _load_defect_model, "segmenter": _load_segmenter_model}

    def get(self, slot, key, factory):
        return self.loaders[slot](key, factory)

    def evict(self, slot):
        self.loaders[slot].clear()


@st.cache_resource(on_release=_release_models)
def get_model_manager():
    from core.models.manager import ModelManager
    mm = ModelManager(get_db(), Paths.from_env(), cache=_StreamlitModelCache())
    # the counting worker process loads its own sheet detector (core.live.process.serve)
    return mm


@st.cache_resource
def get_job_runner():
    # ONE runner per process: a second JobRunner would mark the first one's running jobs failed
    from core.platform.jobs import JobRunner
    return JobRunner(get_db())


db = get_db()
settings = db.load_settings()
_log.setup(tz=settings.ui.timezone)   # log lines in plant local time with the zone
schedule_maintenance(db, Paths.from_env(), settings)   # daily retention + smart clean (one stat() when not due)
if "lang" not in st.session_state:
    st.session_state["lang"] = settings.ui.language
with st.sidebar:
    st.selectbox(":material/language:", list(i18n.LANGUAGES), key="lang", format_func=i18n.LANGUAGES.get,
                 help=i18n.translator(st.session_state["lang"])("Language"))
lang = st.session_state["lang"]
_ = i18n.translator(lang)
if lang != "en":
    # Streamlit's uploader has no text options: its "Upload" button reads in the chosen language
    # (CSS), and its English "200MB per file • …" line is hidden (our labels state limits and types)
    st.html("<style>[data-testid=stFileUploaderDropzone] button [data-testid=stMarkdownContainer] p"
            "{font-size:0 !important}[data-testid=stFileUploaderDropzone] button "
            "[data-testid=stMarkdownContainer] p::after{content:%s;font-size:0.875rem}"
            "[data-testid=stFileUploaderDropzoneInstructions]{display:none !important}</style>"
            % json.dumps(_("Upload")))
try:  # fail closed: a station without its worker, models or job runner does not pretend to run
    worker, models, jobs = get_worker(), get_model_manager(), get_job_runner()
except Exception as e:
    import logging
    logging.getLogger("msm.app").exception("start-up failed")
    st.error(_("The station could not start: {why}").format(why=" ".join(str(e).split())[:300]))
    st.stop()
st.session_state["_ctx"] = AppContext(db=db, paths=Paths.from_env(), settings=settings, lang=lang,
                                      tz=settings.ui.timezone, worker=worker, models=models, jobs=jobs)

pg = st.navigation([
    st.Page("pages/live.py", title=_("Live Monitoring"), icon=":material/videocam:", url_path="live", default=True),
    st.Page("pages/defects.py", title=_("Defect Analysis"), icon=":material/search:", url_path="defects"),
    st.Page("pages/calibration.py", title=_("Calibration"), icon=":material/straighten:", url_path="calibration"),
    st.Page("pages/dashboard.py", title=_("Dashboard"), icon=":material/monitoring:", url_path="dashboard"),
    st.Page("pages/models.py", title=_("Models"), icon=":material/neurology:", url_path="models"),
    st.Page("pages/settings.py", title=_("Settings"), icon=":material/settings:", url_path="settings"),
])
pg.run()
