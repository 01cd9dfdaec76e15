"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): an engineer
uploads a frame on the Calibration page, drags a box on the plotly image whose diagonal
is the reference line, enters the real length and saves; K lands in the database."""
from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import pytest

from browser import MARKS, launch, running_app

ROOT = Path(__file__).resolve().parent.parent
PIN = "cal-browser-77"
pytestmark = MARKS


@pytest.fixture
def server(data_dir):
    with running_app(data_dir, MSM_ENGINEER_PIN=PIN) as app:
        yield app.url



def test_drag_a_line_on_the_frame_and_save_k(server, data_dir, tmp_path):
    from playwright.sync_api import sync_playwright
    from core.synthetic.stills import Camera, SheetScene, render
    frame = tmp_path / "frame.png"
    r = render(SheetScene(length_mm=1200, width_mm=600, angle_deg=0), Camera(640, 480, 300, 2000), seed=2)
    cv2.imwrite(str(frame), r.image)
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server, wait_until="domcontentloaded")
        # through app.py's navigation (a deep link would run the page without the app context)
        nav = page.get_by_role("link", name=re.compile("^(Calibration|Kalibrasi)$"))
        nav.wait_for(timeout=60_000)
        nav.click()
        try:
            page.get_by_label(re.compile("Your name|Nama Anda")).wait_for(timeout=60_000)
        except Exception:
            page.screenshot(path="/tmp/cal_debug.png", full_page=True)
            print(page.inner_text("body")[:2000])
            raise
        page.get_by_label(re.compile("Your name|Nama Anda")).fill("Budi")
        page.get_by_label(re.compile("PIN")).fill(PIN)
        page.get_by_role("button", name=re.compile("Sign in|Masuk")).click()
        page.get_by_text(re.compile("Upload an image|Unggah gambar")).first.wait_for(timeout=30_000)
        page.get_by_text(re.compile("Upload an image|Unggah gambar")).first.click()
        # the radio reruns the page: hand the file to the uploader drawn after that rerun
        page.get_by_text(re.compile(r"Image \(PNG or JPEG\)|Gambar \(PNG atau JPEG\)")).wait_for(timeout=30_000)
        page.wait_for_timeout(1500)
        page.locator("input[type=file]").first.set_input_files(str(frame))
        page.get_by_role("button", name=re.compile("Use this image|Gunakan gambar ini")).click()
        plot = page.locator(".js-plotly-plot .nsewdrag").first
        plot.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)
        box = plot.bounding_box()
        # drag across the middle of the frame: a box whose diagonal is the reference line
        x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3
        x1, y1 = box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.7
        page.mouse.move(x0, y0)
        page.mouse.down()
        page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
        page.mouse.move(x1, y1, steps=5)
        page.mouse.up()
        x2_in = page.get_by_label("x2")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and float(x2_in.input_value() or 0) == 0:
            page.wait_for_timeout(300)
        xs = [float(page.get_by_label(k).input_value()) for k in ("x1", "y1", "x2", "y2")]
        assert xs[2] > xs[0] + 100 and xs[3] > xs[1] + 50, xs       # the box's diagonal, in image pixels
        page.get_by_label(re.compile("Real length|Panjang sebenarnya")).fill("1000")
        page.get_by_label(re.compile("Real length|Panjang sebenarnya")).press("Enter")
        page.wait_for_timeout(800)
        page.get_by_role("button", name=re.compile("^(Save calibration|Simpan kalibrasi)$")).click()
        page.get_by_text(re.compile("Calibration saved|Kalibrasi disimpan")).wait_for(timeout=30_000)
        page.screenshot(path=str(tmp_path / "calibration.png"), full_page=True)
        body = page.inner_text("body")
        browser.close()
    assert "Traceback" not in body
    shots = ROOT / "docs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    (shots / "calibration.png").write_bytes((tmp_path / "calibration.png").read_bytes())
    from core.platform.storage import Database
    db = Database()
    k = db.load_settings().calibration.mm_per_px
    length_px = ((xs[2] - xs[0]) ** 2 + (xs[3] - xs[1]) ** 2) ** 0.5
    assert k == pytest.approx(1000 / length_px, rel=0.01)
    db.dispose()
