"""Headless Chromium on the running app (a real ``streamlit run`` subprocess, the shipped
defect model, the model-free segmenter): a QA inspector opens a sheet, runs Auto-Detect,
and the result appears on the sheet in view without a reload; the buttons come back; the
banner speaks of that sheet. The reviewer's name is recorded with the decision and
remembered by this browser; the badges are Material icons (no emoji font needed); the
``?session=…&capture=…`` link survives a reload. Nothing is mocked."""
from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from browser import MARKS, english_station, launch, open_page, running_app

ROOT = Path(__file__).resolve().parent.parent
pytestmark = MARKS
SID = "qa-browser-1"


@pytest.fixture
def qa_session(db, paths):
    from core.platform.storage import CaptureRow, SessionRow
    from core.synthetic.defects import render_synthetic_defect
    folder = "2026-11-21/" + SID
    d = paths.sessions / folder
    d.mkdir(parents=True)
    rng = np.random.default_rng(3)
    with db.session() as s:
        s.add(SessionRow(id=SID, name="QA browser", target=3, count=3, status="finished", folder=folder))
        s.flush()
        from core.synthetic.stills import Camera, SheetScene, render
        for i in range(1, 4):
            # a whole sheet on the floor (analysis looks at the sheet only), a scratch drawn on
            # its middle for the first two
            r = render(SheetScene(length_mm=1200, width_mm=600, angle_deg=5), Camera(640, 480, 300, 2000), seed=i)
            img = r.image
            if i < 3:
                xs, ys = r.truth.top_corners_px[:, 0], r.truth.top_corners_px[:, 1]
                cx, cy, hw, hh = xs.mean(), ys.mean(), (xs.max() - xs.min()) / 4, (ys.max() - ys.min()) / 4
                render_synthetic_defect(img[int(cy - hh):int(cy + hh), int(cx - hw):int(cx + hw)], "scratch", rng)
            cv2.imwrite(str(d / f"sheet_{i:04d}.jpg"), img)
            s.add(CaptureRow(session_id=SID, index=i, path=f"{folder}/sheet_{i:04d}.jpg"))
    english_station(paths.data)
    return SID


def _wait_text(page, pattern, timeout_s=60):
    page.get_by_text(re.compile(pattern)).first.wait_for(timeout=timeout_s * 1000)


def test_auto_detect_result_appears_without_reload_and_review_is_named(data_dir, qa_session, db, tmp_path):
    from playwright.sync_api import sync_playwright

    from core.platform.storage import CaptureRow
    with running_app(data_dir, MSM_SOURCE="none") as app, sync_playwright() as p:
        browser = launch(p)
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.goto(app.url, wait_until="domcontentloaded")
        open_page(page, re.compile("^(Defect Analysis|Analisis Cacat)$"), "text=3 captures", wait_ms=60_000)
        page.get_by_role("button", name=re.compile(r"^#1\b")).click()
        _wait_text(page, "^Not analysed yet")
        auto = page.get_by_role("button", name="Auto-Detect Defect")
        auto.click()
        # the job runs in the background; the sheet in view changes by itself (no reload here)
        _wait_text(page, r"^Sheet #1 analysed: \d+ defects", 180)
        t_done = time.monotonic()
        while page.get_by_text("Not analysed yet").count() and time.monotonic() - t_done < 20:
            page.wait_for_timeout(300)
        assert page.get_by_text("Not analysed yet").count() == 0
        with db.session() as s:
            n_db = len(s.get(CaptureRow, 1).defects)
        banner = page.get_by_text(re.compile(r"^Sheet #1 analysed")).first.inner_text()
        assert f": {n_db} defects" in banner, (banner, n_db)       # the sheet in view, not the session
        if n_db:
            _wait_text(page, rf"^Defects: {n_db}$", 20)
        else:
            _wait_text(page, "^No defects found", 20)
        deadline = time.monotonic() + 20
        while not auto.is_enabled() and time.monotonic() < deadline:
            page.wait_for_timeout(300)
        assert auto.is_enabled()
        deadline = time.monotonic() + 15              # the job's last poll may still be on screen on a busy machine
        while page.get_by_role("button", name="Cancel").count() and time.monotonic() < deadline:
            page.wait_for_timeout(300)
        assert page.get_by_role("button", name="Cancel").count() == 0      # nothing of the running state left

        # a named review: refused without a name (and the message stays), recorded with it
        page.get_by_role("button", name="Approve").click()
        _wait_text(page, "^Enter your name as reviewer first")
        page.wait_for_timeout(2500)                  # the polling fragment must not wipe it
        assert page.get_by_text(re.compile("^Enter your name as reviewer first")).count() == 1
        name = page.get_by_label("Reviewer name")
        name.fill("Sari Wulandari")
        name.press("Enter")
        page.wait_for_timeout(1000)
        page.get_by_role("button", name="Approve").click()
        _wait_text(page, "^Approved by Sari Wulandari at ")
        with db.session() as s:
            assert s.get(CaptureRow, 1).reviewed_by == "Sari Wulandari"

        # the link names the session and the sheet, and a reload opens the same sheet
        assert f"session={SID}" in page.url and "capture=1" in page.url, page.url
        page.reload(wait_until="domcontentloaded")
        _wait_text(page, "^Approved by Sari Wulandari at ", 60)
        page.get_by_role("button", name="Auto-Detect Defect").wait_for(timeout=30_000)
        kept = ""
        for _i in range(20):                         # remembered by this browser (a cookie)
            kept = page.get_by_label("Reviewer name").input_value()
            if kept == "Sari Wulandari":
                break
            page.wait_for_timeout(500)
        assert kept == "Sari Wulandari", (kept, [c["name"] for c in ctx.cookies()])

        # back in the gallery: the badge is a Material icon, not an emoji
        page.get_by_role("button", name=re.compile("Back to gallery")).click()
        first = page.get_by_role("button", name=re.compile(r"^#1\b"))
        first.wait_for(timeout=30_000)
        icon = first.locator("[role=img][aria-label='check_circle icon']")
        assert icon.count() == 1
        assert "Material Symbols" in icon.evaluate("e => getComputedStyle(e).fontFamily")
        assert "✅" not in first.inner_text() and "❌" not in page.inner_text("body")

        # the whole session as a background batch: the gallery's labels change by themselves
        assert page.get_by_role("button", name=re.compile(r"^#2\b")).inner_text().strip() == "#2"   # not analysed
        page.get_by_role("button", name="Analyse whole session").click()
        _wait_text(page, r"^Analysis finished: 3 of 3 captures", 180)
        label2 = page.get_by_role("button", name=re.compile(r"^#2\b"))
        for _i in range(40):
            if "defect" in label2.inner_text() or "OK" in label2.inner_text():
                break
            page.wait_for_timeout(250)
        assert re.search(r"· (\d+ defects?|1 defect|OK)$", label2.inner_text().strip()), label2.inner_text()
        assert page.get_by_role("button", name="Analyse whole session").is_enabled()

        # Measure twice on the same sheet: one stored measurement, not two identical rows
        page.get_by_role("button", name=re.compile(r"^#3\b")).click()
        measure = page.get_by_role("button", name="Measure Dimension")
        for _i in range(2):
            measure.click()
            _wait_text(page, "^(Length × width|Not calibrated): ", 60)     # mm or px: stored either way
            page.wait_for_timeout(1000)
        body = page.inner_text("body")
        browser.close()
    from core.platform.storage import MeasurementRow
    with db.session() as s:
        assert s.query(MeasurementRow).count() == 1
    assert "Traceback" not in body
