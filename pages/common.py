"""What every page needs: the app context (database, settings, worker, model manager,
language and time zone) that ``app.py`` builds on each run, plus small UI helpers.

Pages stay thin: they read state from ``core`` objects and call ``core`` functions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import streamlit as st

from core.platform import i18n
from core.platform.paths import Paths
from core.platform.settings import Settings
from core.platform.storage import Database


@dataclass
class AppContext:
    db: Database
    paths: Paths
    settings: Settings
    lang: str
    tz: str
    worker: Any = None          # core.live.worker.CountingWorker (shared by every tab)
    models: Any = None          # core.models.manager.ModelManager
    jobs: Any = None            # core.platform.jobs.JobRunner (one per process: background jobs)
    user: str = "operator"

    @property
    def _(self) -> Callable[[str], str]:
        return i18n.translator(self.lang)

    def num(self, x: float | int | None, decimals: int = 0) -> str:
        return i18n.fmt_number(x, self.lang, decimals)

    def dt(self, d: datetime | None, with_date: bool = True) -> str:
        return i18n.fmt_dt(d, self.tz, with_date=with_date)


def leave_legacy_pages_mode() -> None:
    """Run app.py's ``st.navigation`` from the very first run of a process.

    A process's first run sees the ``pages/`` folder and takes Streamlit's legacy multipage
    path: it can run a page without app.py (a direct ``/settings`` link), and widgets made
    during that run lose their state on the next one (the station's default language did).
    Leave that mode and run again on the same URL before anything is drawn."""
    from streamlit.runtime.pages_manager import PagesManager
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def ctx() -> AppContext:
    """The context app.py put in session state (pages never build their own)."""
    c = st.session_state.get("_ctx")
    if c is None:
        leave_legacy_pages_mode()   # a direct /settings link on a fresh process
        _ = i18n.translator(st.session_state.get("lang", "id"))
        st.error(_("The app context is missing: open the app through app.py."))
        st.stop()
    return c


def friendly_error(c: AppContext, exc: BaseException, what: str) -> None:
    """One clear message for the user; the traceback goes to the log, never the page."""
    import logging
    logging.getLogger("msm.ui").exception("%s failed", what)
    st.error(f"{c._(what)}: {exc}")
