"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): the Settings
page is closed to operators, opens with the engineer PIN, saves a camera change that lands in
the database with the engineer's name in the audit trail, and shows the health panel.
Screenshots stay in the test's temporary folder."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser import MARKS, box_of, english_station, launch, open_page, open_settings_signed_in, running_app

ROOT = Path(__file__).resolve().parent.parent
PIN = "browser-8642"
pytestmark = MARKS


@pytest.fixture
def server(data_dir):
    english_station(data_dir)             # English UI, so the assertions read the msgids
    with running_app(data_dir, MSM_ENGINEER_PIN=PIN) as app:
        yield app.url



def test_settings_in_a_real_browser(server, data_dir, tmp_path):
    from playwright.sync_api import sync_playwright
    shots = tmp_path              # tests never write into docs/ (`make screenshots` does)
    with sync_playwright() as p:
        b = launch(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
            page.goto(server, timeout=60_000)
            # let the first page finish its run before navigating (a click during the very
            # first script run can land on Streamlit's legacy pages/ view)
            page.get_by_role("heading", name="Live Monitoring").wait_for(timeout=60_000)
            time.sleep(1.0)
            open_page(page, "Settings", "text=Engineer access")
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
            flash = page.get_by_text("saved: 1 setting(s) changed", exact=False)
            flash.wait_for(timeout=30_000)
            # the counter watches the demo clip, not this camera: no "applied", the reason instead
            said = flash.inner_text()
            assert "did not switch" in said and "Applied to the running counter" not in said, said

            page.get_by_role("tab", name="Audit trail").click()
            page.get_by_role("tab", name="Health").click()
            page.get_by_text("Counting FPS").wait_for(timeout=30_000)
            time.sleep(1.0)
            page.screenshot(path=str(shots / "settings.png"), full_page=True)
        finally:
            b.close()
    from core.platform.engineering import audit_trail
    from core.platform.storage import Database
    db = Database()
    try:
        assert db.load_settings().camera.rtsp_url == "rtsp://admin:hidden@10.9.8.7:554/line1"
        a = audit_trail(db)[0]
        assert (a.key, a.who) == ("camera.rtsp_url", "Budi")
    finally:
        db.dispose()


def test_counting_area_and_mask_drawn_on_the_live_frame(server, data_dir):
    """Settings → Counting area: two clicks on the live frame span the area (the numbers
    follow), Save stores it; in mask mode three clicks outline a part to ignore, which is
    stored as the mask PNG the worker reads."""
    import re

    import cv2
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
            open_settings_signed_in(page, server, "Sari", PIN)
            page.get_by_role("tab", name="Counting area").click()
            cap = page.get_by_text(re.compile(r"The frame is [\d.,]+ × [\d.,]+ px")).first
            cap.wait_for(timeout=30_000)
            fw, fh = (int(v.replace(",", "").replace(".", "")) for v in
                      re.search(r"([\d.,]+) × ([\d.,]+) px", cap.inner_text()).groups())
            img = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
            img.wait_for(timeout=30_000)

            def click(fx: float, fy: float) -> None:
                bb = box_of(img)
                page.mouse.click(bb["x"] + fx * bb["width"], bb["y"] + fy * bb["height"])
                time.sleep(1.5)                  # the click reruns the page

            click(0.2, 0.25)
            click(0.8, 0.75)
            x1 = page.get_by_label("Left (px)")
            deadline = time.time() + 20
            while abs(int(x1.input_value()) - 0.2 * fw) > 3 and time.time() < deadline:
                time.sleep(0.5)
            got = [int(page.get_by_label(n).input_value()) for n in ("Left (px)", "Top (px)", "Right (px)", "Bottom (px)")]
            want = [0.2 * fw, 0.25 * fh, 0.8 * fw, 0.75 * fh]
            assert all(abs(g - w) <= 3 for g, w in zip(got, want)), (got, want)
            page.get_by_role("button", name="Save counting area").click()
            page.get_by_text("saved", exact=False).first.wait_for(timeout=30_000)

            page.get_by_text("a point around a part to ignore").click()
            time.sleep(1.5)
            img = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
            for fx, fy in ((0.3, 0.3), (0.45, 0.3), (0.45, 0.5)):
                click(fx, fy)
            page.get_by_role("button", name="Ignore the outlined part").click()
            deadline = time.time() + 30
            mask = data_dir / "masks" / "counting_mask.png"
            while not mask.exists() and time.time() < deadline:
                time.sleep(0.5)
        finally:
            b.close()
    from core.platform.storage import Database
    db = Database()
    try:
        s = db.load_settings()
        assert s.counting.roi is not None and all(abs(g - w) <= 3 for g, w in zip(s.counting.roi, want))
        assert s.counting.mask_path
    finally:
        db.dispose()
    m = cv2.imread(str(data_dir / s.counting.mask_path), cv2.IMREAD_GRAYSCALE)
    assert m.shape == (fh, fw)
    assert m[int(0.35 * fh), int(0.42 * fw)] == 0 and m[int(0.9 * fh), int(0.9 * fw)] == 255
