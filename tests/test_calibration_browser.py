"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): an engineer
uploads a frame on the Calibration page, clicks the two ends of a reference bar (the clicks
snap to the bar's ends to a fraction of a pixel), enters its real length and saves: K lands
in the database, right (the old box-diagonal tool made a horizontal line into the frame's
diagonal, K 36 % off). Then the 4-point plane by four clicks. Each action answers in
well under the old 6 s."""
from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser import MARKS, box_of, launch, running_app

ROOT = Path(__file__).resolve().parent.parent
PIN = "cal-browser-77"
pytestmark = MARKS
W, H = 800, 500
BAR = (100, 200, 700, 260)          # pixels x 100..699, y 200..259: 600 px from edge to edge


@pytest.fixture
def server(data_dir):
    with running_app(data_dir, MSM_ENGINEER_PIN=PIN) as app:
        yield app.url


def bar_frame(path: Path) -> None:
    rng = np.random.default_rng(5)
    img = np.clip(rng.normal(50, 4, (H, W)), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = BAR
    img[y1:y2, x1:x2] = 190
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))


def sign_in_and_upload(page, server, frame):
    page.goto(server, wait_until="domcontentloaded")
    nav = page.get_by_role("link", name=re.compile("^(Calibration|Kalibrasi)$"))
    nav.wait_for(timeout=60_000)
    nav.click()
    page.get_by_label(re.compile("Your name|Nama Anda")).wait_for(timeout=60_000)
    page.get_by_label(re.compile("Your name|Nama Anda")).fill("Budi")
    page.get_by_label(re.compile("PIN")).fill(PIN)
    page.get_by_role("button", name=re.compile("Sign in|Masuk")).click()
    page.get_by_text(re.compile("Upload an image|Unggah gambar")).first.wait_for(timeout=30_000)
    page.get_by_text(re.compile("Upload an image|Unggah gambar")).first.click()
    # the radio reruns the page: hand the file to the uploader drawn after that rerun
    page.get_by_text(re.compile(r"Image \(PNG or JPEG\)|Gambar \(PNG atau JPEG\)")).wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    page.locator("input[type=file]").first.set_input_files(str(frame))
    t0 = time.monotonic()
    page.get_by_role("button", name=re.compile("Use this image|Gunakan gambar ini")).click()
    page.get_by_text(re.compile(r"^(Frame|Bingkai): 800 × 500 px")).wait_for(timeout=30_000)
    took = time.monotonic() - t0             # the page answered; the picture's iframe may still load
    img = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
    img.wait_for(timeout=30_000)
    return img, took


def click_at(page, img, fx, fy):
    """Click the frame pixel (fx, fy) in the displayed picture."""
    img.scroll_into_view_if_needed()
    b = box_of(img)
    page.mouse.click(b["x"] + (fx + 0.5) * b["width"] / W, b["y"] + (fy + 0.5) * b["height"] / H)


def wait_value(page, label, pred, timeout_s=10):
    box = page.get_by_label(label, exact=True).first
    try:
        box.wait_for(timeout=timeout_s * 1000)
    except Exception:
        raise AssertionError(page.inner_text("body")[-3000:]) from None
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        try:   # the page reruns under us: the input can be replaced between two looks
            v = float((box.input_value(timeout=2000) or "0").replace(",", ""))
        except Exception:
            v = 0.0
        if pred(v):
            return v, time.monotonic() - t0
        page.wait_for_timeout(50)
    raise AssertionError(f"{label} stayed at 0: " + page.inner_text("body")[-2000:])


def test_two_clicks_snap_to_the_bar_ends_and_k_is_right(server, data_dir, tmp_path):
    from playwright.sync_api import sync_playwright
    frame = tmp_path / "frame.png"
    bar_frame(frame)
    timings = {}
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        img, timings["use image"] = sign_in_and_upload(page, server, frame)
        page.wait_for_timeout(500)
        # a little off both ends of the bar, and not on the same row: the clicks snap to the ends
        t0 = time.monotonic()
        click_at(page, img, 104, 228)
        x1, _ = wait_value(page, "x1", lambda v: v > 0)
        timings["click 1"] = time.monotonic() - t0
        img = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
        page.wait_for_timeout(300)
        t0 = time.monotonic()
        click_at(page, img, 696, 231)
        x2, _ = wait_value(page, "x2", lambda v: v > 0)
        timings["click 2"] = time.monotonic() - t0
        # each field is its own element of the page's rerun: y2 may arrive after x2 (CI once read
        # y2 = 0 right after x2 had its value), so wait for both rows' y as well
        y1, _ = wait_value(page, "y1", lambda v: v > 0)
        y2, _ = wait_value(page, "y2", lambda v: v > 0)
        assert x1 == pytest.approx(99.5, abs=0.15) and x2 == pytest.approx(699.5, abs=0.15), (x1, x2)
        assert y1 == pytest.approx(228, abs=1.5) and y2 == pytest.approx(231, abs=1.5), (y1, y2)
        # zoom 4× (the view centres on the last click) and set end 2 again, a little off the
        # bar's end: the zoomed view maps back to frame pixels and snaps to the same edge
        page.get_by_text(re.compile("^(End|Ujung) 2$")).click()
        page.wait_for_timeout(500)
        page.get_by_text("4×", exact=True).first.click()
        page.wait_for_timeout(800)
        zimg = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
        zimg.scroll_into_view_if_needed()
        b = box_of(zimg)
        x0 = min(max(round(x2 - 100), 0), W - 200)           # the 200 × 125 px crop around end 2
        y0 = min(max(round(y2 - 62.5), 0), H - 125)
        page.mouse.click(b["x"] + (697 - x0 + 0.5) * b["width"] / 200, b["y"] + (236 - y0 + 0.5) * b["height"] / 125)
        wait_value(page, "y2", lambda v: abs(v - 236) < 1.5)
        x2z = float(page.get_by_label("x2", exact=True).input_value())
        assert x2z == pytest.approx(699.5, abs=0.15), x2z
        page.get_by_text("1×", exact=True).first.click()
        page.wait_for_timeout(500)
        length = page.get_by_label(re.compile("Real length|Panjang sebenarnya"))
        length.fill("1000")
        length.press("Enter")
        page.get_by_text(re.compile(r"→ K = ")).wait_for(timeout=10_000)
        t0 = time.monotonic()
        page.get_by_role("button", name=re.compile("^(Save calibration|Simpan kalibrasi)$")).click()
        page.get_by_text(re.compile("Calibration saved|Kalibrasi disimpan")).wait_for(timeout=30_000)
        timings["save"] = time.monotonic() - t0

        # the plane: four clicks around the bar's corners, in order (the tab stays open across the reruns)
        page.get_by_role("tab", name=re.compile("Plane|Bidang")).click()
        pimg = page.frame_locator("iframe[title*='streamlit_image_coordinates']").last.locator("img#image")
        pimg.wait_for(timeout=30_000)
        corners = [(100, 200), (699, 200), (699, 259), (100, 259)]
        for i, (fx, fy) in enumerate(corners):
            pimg = page.frame_locator("iframe[title*='streamlit_image_coordinates']").last.locator("img#image")
            page.wait_for_timeout(300)
            click_at(page, pimg, fx, fy)
            label = re.compile(rf"^(Point|Titik) {i + 1} x$")
            wait_value(page, label, lambda v, fx=fx: abs(v - fx) <= 1.0)
        for i, (fx, fy) in enumerate(corners):
            v = float(page.get_by_label(re.compile(rf"^(Point|Titik) {i + 1} y$")).input_value())
            assert v == pytest.approx(fy, abs=1.0)
        body = page.inner_text("body")
        browser.close()
    assert "Traceback" not in body
    from core.platform.storage import Database
    db = Database()
    k = db.load_settings().calibration.mm_per_px
    db.dispose()
    assert k == pytest.approx(1000 / 600, rel=0.003), k            # the old tool: 36 % off
    print("calibration timings (s):", {n: round(t, 2) for n, t in timings.items()})
    # < 1 s each on a quiet machine; this shared 2-core one gets a margin (the old page: ≈ 6 s)
    assert max(timings.values()) < 3.0, timings
