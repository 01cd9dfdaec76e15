"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): the Settings
page is closed to operators, opens with the engineer PIN, saves a camera change that lands in
the database with the engineer's name in the audit trail, and shows the health panel.
The screenshot is kept in ``docs/screenshots/settings.png``."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PIN = "browser-8642"
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(data_dir):
    from core.storage import Database
    db = Database()                       # English UI, so the assertions read the msgids
    st = db.load_settings()
    st.ui.language = "en"
    db.save_settings(st, who="test")
    db.dispose()
    port = _free_port()
    env = dict(os.environ, MSM_DATA_DIR=str(data_dir), MSM_ENGINEER_PIN=PIN)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.3)
    try:
        assert proc.poll() is None, "streamlit exited"
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_settings_in_a_real_browser(server, data_dir):
    from playwright.sync_api import sync_playwright
    shots = ROOT / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
            page.goto(server, timeout=60_000)
            # let the first page finish its run before navigating (a click during the very
            # first script run can land on Streamlit's legacy pages/ view)
            page.get_by_role("heading", name="Live Monitoring").wait_for(timeout=60_000)
            time.sleep(1.0)
            page.get_by_role("link", name="Settings").click()
            page.get_by_text("Engineer access").wait_for(timeout=60_000)
            assert page.get_by_text("Save camera and thresholds").count() == 0    # closed to operators

            page.get_by_label("Your name (for the audit trail)").fill("Budi")
            page.get_by_label("PIN or password", exact=True).fill("wrong-pin")
            page.get_by_role("button", name="Sign in").click()
            page.get_by_text("Wrong PIN or password.").wait_for(timeout=30_000)

            page.get_by_label("Your name (for the audit trail)").fill("Budi")
            page.get_by_label("PIN or password", exact=True).fill(PIN)
            page.get_by_role("button", name="Sign in").click()
            page.get_by_role("button", name="Save camera and thresholds").wait_for(timeout=60_000)

            url = page.get_by_role("textbox", name="RTSP URL")
            url.fill("rtsp://admin:hidden@10.9.8.7:554/line1")
            url.press("Tab")
            page.get_by_role("button", name="Save camera and thresholds").click()
            page.get_by_text("saved: 1 setting(s) changed", exact=False).wait_for(timeout=30_000)

            page.get_by_role("tab", name="Audit trail").click()
            page.get_by_role("tab", name="Health").click()
            page.get_by_text("Counting FPS").wait_for(timeout=30_000)
            time.sleep(1.0)
            page.screenshot(path=str(shots / "settings.png"), full_page=True)
        finally:
            b.close()
    from core.engineering import audit_trail
    from core.storage import Database
    db = Database()
    try:
        assert db.load_settings().camera.rtsp_url == "rtsp://admin:hidden@10.9.8.7:554/line1"
        a = audit_trail(db)[0]
        assert (a.key, a.who) == ("camera.rtsp_url", "Budi")
    finally:
        db.dispose()
