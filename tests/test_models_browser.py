"""Headless Chromium on the running app (a real ``streamlit run`` subprocess): an engineer signs
in on the Models page and uploads a
segmentation model as a sheet detector — it is refused with one clear message and nothing
is registered. (AppTest cannot drive st.file_uploader; the browser can.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from browser import MARKS, english_station, launch, open_page, running_app

ROOT = Path(__file__).resolve().parent.parent
PIN = "gate-4321"
pytestmark = MARKS


@pytest.fixture
def server(data_dir):
    english_station(data_dir)            # the assertions read the English msgids
    with running_app(data_dir, MSM_ENGINEER_PIN=PIN) as app:
        yield app.url



def test_upload_of_a_segmentation_model_is_refused(server, tmp_path, data_dir):
    import core.platform.offline
    core.platform.offline.prepare()
    from playwright.sync_api import sync_playwright
    from ultralytics import YOLO
    seg = tmp_path / "seg.pt"
    YOLO("yolo11n-seg.yaml").save(str(seg))
    with sync_playwright() as p:
        b = launch(p)
        pg = b.new_page(viewport={"width": 1400, "height": 1400})
        pg.goto(server, timeout=60000)
        # wait for app.py's own navigation (Streamlit first shows a plain list of pages/ files)
        pg.wait_for_selector("a:has-text('Live Monitoring'), a:has-text('Pemantauan Langsung')", timeout=90000)
        open_page(pg, "Models", "input[type=password]")
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
    from core.models.manager import Registry
    from core.platform.paths import Paths
    from core.platform.storage import Database
    # nothing new was registered: only the two shipped models
    assert sorted(m.name for m in Registry(Database(), Paths.from_env()).list()) == ["defect_yolo11n", "metal_sheet"]


def test_training_result_appears_without_reload(server, tmp_path, data_dir):
    """A real (tiny) training run started from the page: when it ends, the page shows the new
    version in the table and "Start training" is enabled again, without a reload."""
    from playwright.sync_api import sync_playwright

    from core.synthetic import sheetdata
    ds = tmp_path / "tiny-ds"
    sheetdata.render_dataset(ds, 12)
    with sync_playwright() as p:
        b = launch(p)
        pg = b.new_page(viewport={"width": 1400, "height": 1600})
        pg.goto(server, timeout=60000)
        pg.wait_for_selector("a:has-text('Live Monitoring'), a:has-text('Pemantauan Langsung')", timeout=90000)
        open_page(pg, "Models", "input[type=password]")
        pg.locator("input[type=text]").last.fill("Budi")
        pg.locator("input[type=password]").fill(PIN)
        pg.locator("button[data-testid=stBaseButton-secondaryFormSubmit]").first.click()
        pg.locator("input[aria-label=Dataset]").wait_for(timeout=60000)
        assert pg.locator("[data-testid=stDataFrame]").first.get_attribute("data-testid")
        pg.locator("input[aria-label=Dataset]").fill(str(ds))
        pg.get_by_label("Epochs", exact=True).fill("1")
        pg.get_by_label("Image size", exact=True).fill("64")
        pg.get_by_label("Batch", exact=True).fill("4")
        start = pg.get_by_role("button", name="Start training")
        start.click()
        pg.get_by_text("Latest training job").first.wait_for(timeout=60000)
        pg.wait_for_function("() => [...document.querySelectorAll('button')].some("
                             "b => b.innerText.includes('Start training') && b.disabled)", timeout=30000)
        pg.get_by_text("Training finished").first.wait_for(timeout=600000)     # no reload in between
        pg.wait_for_function("() => [...document.querySelectorAll('button')].some("
                             "b => b.innerText.includes('Start training') && !b.disabled)", timeout=30000)
        # the versions table was redrawn with the new version (its row count is in the grid's aria)
        grid = pg.locator("[data-testid=stDataFrame] [role=grid]").first
        deadline = 30
        while deadline and grid.get_attribute("aria-rowcount") != "4":      # header + 3 versions
            pg.wait_for_timeout(1000)
            deadline -= 1
        assert grid.get_attribute("aria-rowcount") == "4", grid.get_attribute("aria-rowcount")
        body = pg.inner_text("body")
        b.close()
    assert "Traceback" not in body
    from core.models.manager import Registry
    from core.platform.paths import Paths
    from core.platform.storage import Database
    assert len(Registry(Database(), Paths.from_env()).list()) == 3
