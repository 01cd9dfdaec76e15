"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): an engineer signs
in on the Models page and uploads a
segmentation model as a sheet detector — it is refused with one clear message and nothing
is registered. (AppTest cannot drive st.file_uploader; the browser can.)
"""
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
PIN = "gate-4321"
pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium not installed")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(data_dir):
    port = _free_port()
    env = dict(os.environ, MSM_DATA_DIR=str(data_dir), MSM_ENGINEER_PIN=PIN)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert proc.poll() is None, "streamlit exited"
            time.sleep(0.5)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_upload_of_a_segmentation_model_is_refused(server, tmp_path, data_dir):
    import core.offline
    core.offline.prepare()
    from playwright.sync_api import sync_playwright
    from ultralytics import YOLO
    seg = tmp_path / "seg.pt"
    YOLO("yolo11n-seg.yaml").save(str(seg))
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = b.new_page(viewport={"width": 1400, "height": 1400})
        pg.goto(server, timeout=60000)
        # wait for app.py's own navigation (Streamlit first shows a plain list of pages/ files)
        pg.wait_for_selector("a:has-text('Live Monitoring'), a:has-text('Pemantauan Langsung')", timeout=90000)
        for _attempt in range(4):
            pg.locator("a:has-text('Model')").first.click(timeout=60000)
            try:
                pg.wait_for_selector("input[type=password]", timeout=20000)
                break
            except Exception:
                pg.screenshot(path=str(tmp_path / f"attempt{_attempt}.png"))
                continue
        pg.locator("input[type=text]").last.fill("Budi")
        pg.locator("input[type=password]").fill(PIN)
        pg.locator("button[data-testid=stBaseButton-secondaryFormSubmit]").first.click()
        pg.wait_for_selector("input[type=file]", state="attached", timeout=60000)
        pg.locator("input[type=file]").set_input_files(str(seg))
        pg.wait_for_timeout(1500)
        pg.locator("button[data-testid=stBaseButton-secondaryFormSubmit]").filter(
            has_text="Validate").first.click()
        err = pg.wait_for_selector("text=is a segmentation model", timeout=60000)
        assert "metal-sheet detector needs a detection model" in err.inner_text()
        pg.screenshot(path=str(tmp_path / "models.png"), full_page=True)
        b.close()
    from core.models import Registry
    from core.paths import Paths
    from core.storage import Database
    assert [m.name for m in Registry(Database(), Paths.from_env()).list()] == ["metal_sheet"]
