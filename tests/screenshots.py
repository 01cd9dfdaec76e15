"""``make screenshots``: the README's pictures, taken from the real app in headless Chromium
on a throw-away data folder (tests never write into docs/; this does, on purpose).

    python tests/screenshots.py [OUT_DIR]        # default docs/screenshots

Writes ``calibration_line.png`` (the two-click reference line, snapped to the bar's ends, K
shown), ``defects_before.png`` / ``defects_after.png`` (a sheet before Auto-Detect and the
same page after the job ended, no reload in between).
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def _data_folder(tmp: Path) -> Path:
    data, weights = tmp / "data", tmp / "weights"
    weights.mkdir()
    for f in (ROOT / "weights").iterdir():
        if f.is_file():
            (weights / f.name).symlink_to(f)
    os.environ.update(MSM_DATA_DIR=str(data), MSM_WEIGHTS_DIR=str(weights), YOLO_OFFLINE="1",
                      YOLO_CONFIG_DIR=str(ROOT / ".yolo"))
    os.environ.pop("DATABASE_URL", None)
    from core.platform.paths import Paths
    Paths.from_env().ensure()
    return data


def _qa_session(data: Path) -> None:
    import cv2
    import numpy as np

    from core.platform.paths import Paths
    from core.platform.storage import CaptureRow, Database, SessionRow
    from core.synthetic.defects import render_synthetic_defect, sheet_texture

    from browser import english_station
    english_station(data)
    db, paths = Database(), Paths.from_env()
    folder = "2026-11-29/qa-shots"
    d = paths.sessions / folder
    d.mkdir(parents=True)
    rng = np.random.default_rng(11)
    with db.session() as s:
        s.add(SessionRow(id="qa-shots", name="Batch QA", target=4, count=4, status="finished", folder=folder))
        s.flush()
        for i in range(1, 5):
            img = sheet_texture(480, 720, rng)
            for kind in ("scratch", "patch", "inclusion"):
                render_synthetic_defect(img, kind, rng)
            cv2.imwrite(str(d / f"sheet_{i:04d}.jpg"), img)
            s.add(CaptureRow(session_id="qa-shots", index=i, path=f"{folder}/sheet_{i:04d}.jpg"))
    db.dispose()


def main(out: Path) -> int:
    from playwright.sync_api import sync_playwright
    from test_calibration_browser import PIN, bar_frame, click_at, sign_in_and_upload, wait_value

    from browser import launch, open_page, running_app
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = _data_folder(tmp)
        _qa_session(data)
        frame = tmp / "frame.png"
        bar_frame(frame)
        with running_app(data, MSM_SOURCE="none", MSM_ENGINEER_PIN=PIN) as app, sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1300})
            # calibration: two clicks near the bar's ends, snapped; length typed; K shown
            img, _ = sign_in_and_upload(page, app.url, frame)
            page.wait_for_timeout(500)
            click_at(page, img, 104, 228)
            wait_value(page, "x1", lambda v: v > 0)
            img = page.frame_locator("iframe[title*='streamlit_image_coordinates']").first.locator("img#image")
            page.wait_for_timeout(300)
            click_at(page, img, 696, 231)
            wait_value(page, "x2", lambda v: v > 0)
            length = page.get_by_label(re.compile("Real length"))
            length.fill("1000")
            length.press("Enter")
            page.get_by_text(re.compile(r"→ K = ")).wait_for(timeout=10_000)
            page.wait_for_timeout(1200)
            page.get_by_text("Reference line").first.scroll_into_view_if_needed()
            page.screenshot(path=str(out / "calibration_line.png"), full_page=False)

            # defect result appearing without a reload
            open_page(page, "Defect Analysis", "text=4 captures", wait_ms=60_000)
            page.get_by_role("button", name=re.compile(r"^#1\b")).click()
            page.get_by_text("Not analysed yet.").wait_for(timeout=60_000)
            page.get_by_label("Reviewer name").fill("Sari")
            page.get_by_label("Reviewer name").press("Enter")
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "defects_before.png"), full_page=False)
            page.get_by_role("button", name="Auto-Detect Defect").click()
            page.get_by_text(re.compile(r"^Sheet #1 analysed: ")).wait_for(timeout=180_000)
            page.wait_for_timeout(2000)
            page.screenshot(path=str(out / "defects_after.png"), full_page=False)
            browser.close()
    for f in ("calibration_line.png", "defects_before.png", "defects_after.png"):
        print(out / f)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots"))
