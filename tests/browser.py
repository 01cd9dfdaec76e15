"""The real app in a real browser, for the browser tests: start ``streamlit run app.py``
on a free loopback port with its own data folder, and launch Debian's Chromium headless
(never a downloaded browser)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from needs import in_ci

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MARKS = [pytest.mark.browser, pytest.mark.slow,
         pytest.mark.skipif(not Path(CHROMIUM).exists() and not in_ci(),
                            reason="chromium not installed: run .ci/system-deps.sh")]


@dataclass
class RunningApp:
    url: str
    proc: subprocess.Popen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(data_dir: Path, timeout_s: float = 60, **env_extra: str) -> Iterator[RunningApp]:
    """The app on 127.0.0.1 with ``MSM_DATA_DIR=data_dir`` and ``env_extra``. Its output
    goes to a file beside the data folder (a pipe nobody reads would stall the app)."""
    port = free_port()
    env = dict(os.environ, MSM_DATA_DIR=str(data_dir), **env_extra)
    env.pop("DATABASE_URL", None)
    log_path = Path(data_dir).parent / f"streamlit-{port}.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, f"streamlit exited: {log_path.read_text()[-2000:]}"
        yield RunningApp(f"http://127.0.0.1:{port}/", proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def english_station(data_dir: Path) -> None:
    """Make English the station's default language (tests that read English labels)."""
    from core.platform.storage import Database
    db = Database()
    st = db.load_settings()
    st.ui.language = "en"
    db.save_settings(st, who="test")
    db.dispose()


def open_page(page, link_name, ready_selector: str, attempts: int = 4, wait_ms: int = 20_000) -> None:
    """Click a navigation link until the target page shows ``ready_selector``. The Live page
    reruns a polling fragment all the time, and a click that lands mid-rerun can be dropped."""
    for i in range(attempts):
        page.get_by_role("link", name=link_name).first.click(timeout=60_000)
        try:
            page.wait_for_selector(ready_selector, timeout=wait_ms)
            return
        except Exception:
            if i == attempts - 1:
                raise


def launch(playwright):
    """Headless Debian Chromium with the flags this closed network needs."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def open_settings_signed_in(page, url: str, name: str, pin: str) -> None:
    """Open the app at ``url``, go to Settings and sign in as engineer ``name``."""
    import time
    page.goto(url, timeout=60_000)
    page.get_by_role("heading", name="Live Monitoring").wait_for(timeout=60_000)
    time.sleep(1.0)                       # a click during the very first run can be dropped
    open_page(page, "Settings", "text=Engineer access")
    page.get_by_label("Your name (for the audit trail)").fill(name)
    page.get_by_label("PIN or password", exact=True).fill(pin)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Save camera and thresholds").wait_for(timeout=60_000)


def box_of(locator, timeout_s: float = 20) -> dict:
    """The locator's box on the page, once it has one. A click that reruns the page redraws
    the picture's iframe: for a moment the old element is gone and the new one not laid out,
    and ``bounding_box()`` answers ``None`` then."""
    deadline = time.time() + timeout_s
    while True:
        try:
            locator.wait_for(state="visible", timeout=max(1, int((deadline - time.time()) * 1000)))
            bb = locator.bounding_box()
        except Exception:
            if time.time() >= deadline:
                raise
            bb = None
        if bb is not None and bb["width"] > 0:
            return bb
        if time.time() >= deadline:
            raise AssertionError(f"no box for {locator} after {timeout_s} s")
        time.sleep(0.2)
