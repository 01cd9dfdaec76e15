"""The engineer gate for the Settings and Models pages.

Call ``require_engineer(c)`` at the top of a page: it returns the engineer's name when
this browser session has signed in (and not been idle for too long); otherwise it shows
the sign-in form and stops the page. Operators never see it on the Live page.

Example (in a page):
    >>> from pages.common import ctx            # doctest: +SKIP
    >>> c = ctx(); who = require_engineer(c)    # doctest: +SKIP
"""
from __future__ import annotations

import time
from typing import Optional

import streamlit as st

from core.platform.auth import ENV_VAR, SECRETS_KEY, EngineerAuth

IDLE_TIMEOUT_S = 30 * 60
_KEY = "_engineer"


def _secret_from_streamlit() -> Optional[str]:
    """``engineer_pin`` from ``.streamlit/secrets.toml`` if there is one (never in the repo)."""
    try:
        v = st.secrets.get(SECRETS_KEY)
    except Exception:  # no secrets file at all is the normal case
        return None
    return str(v) if v else None


def signed_in() -> Optional[str]:
    """The engineer signed in in this browser session, or None."""
    s = st.session_state.get(_KEY)
    if not s or time.time() - s.get("seen", 0) > IDLE_TIMEOUT_S:
        st.session_state.pop(_KEY, None)
        return None
    s["seen"] = time.time()
    return s["name"]


def sign_out() -> None:
    st.session_state.pop(_KEY, None)


def require_engineer(c) -> str:
    """Return the engineer's name, or show the sign-in form and stop the page."""
    _ = c._
    who = signed_in()
    if who:
        c.user = who
        with st.sidebar:
            st.caption(_("Signed in as engineer: {name}").format(name=who))
            if st.button(_("Sign out"), key="engineer_sign_out"):
                sign_out()
                st.rerun()
        return who

    auth = EngineerAuth(c.db)
    try:
        auth.ensure_initial(secret_from_secrets=_secret_from_streamlit())
    except ValueError:
        st.error(_("The engineer PIN given in {var} or in Streamlit secrets is too short "
                   "(at least 4 characters). Fix it and restart the app.").format(var=ENV_VAR))
        st.stop()
    st.subheader(_("Engineer access"))
    if not auth.is_configured():
        st.warning(_("No engineer PIN is set. Set the environment variable {var} (or '{key}' in "
                     ".streamlit/secrets.toml) and restart the app.").format(var=ENV_VAR, key=SECRETS_KEY))
        st.stop()

    st.info(_("This page is for engineers. Enter the engineer PIN or password."))
    with st.form("engineer_login", clear_on_submit=True):
        name = st.text_input(_("Your name (for the audit trail)"), max_chars=60, key="engineer_name")
        pin = st.text_input(_("PIN or password"), type="password", max_chars=128, key="engineer_pin")
        submitted = st.form_submit_button(_("Sign in"))
    if submitted:
        res = auth.verify(pin or "")
        if res.ok:
            clean = " ".join(str(name or "").split())[:60] or "engineer"
            st.session_state[_KEY] = {"name": clean, "seen": time.time()}
            c.db.log(f"engineer signed in: {clean}")
            st.rerun()
        elif res.wait_s > 0:
            st.error(_("Too many wrong attempts. Try again in {s} s.").format(s=c.num(res.wait_s, 0)))
        elif res.failed_count == 0:  # nothing stored after all (race with another station)
            st.error(_("No engineer PIN is set."))
        else:
            st.error(_("Wrong PIN or password."))
    st.stop()
    return ""  # not reached; keeps type checkers calm
