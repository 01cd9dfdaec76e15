"""The language selector in a real browser (a ``streamlit run`` subprocess + headless
Chromium): the app opens in the settings' default (Bahasa Indonesia), the sidebar switches
THIS browser session to English, and another browser session keeps Indonesian. Screenshots
go to the test's tmp folder (tests never write into docs/)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser import MARKS, launch, running_app

ROOT = Path(__file__).resolve().parent.parent
pytestmark = MARKS


@pytest.fixture
def server(data_dir, tmp_path):
    from core.platform.paths import Paths
    from core.platform.storage import Database
    from core.synthetic.session import make_synthetic_session
    db = Database()                      # default settings: ui.language = "id", Asia/Jakarta
    make_synthetic_session(db, Paths.from_env(), 3, name="Shift-A")
    db.dispose()
    from live_clips import sheets_clip  # a small clip keeps the counting worker cheap
    clip = tmp_path / "i18n.mp4"
    sheets_clip(clip, n_sheets=1, hand=False, gap_s=0.5, tail_s=1.0, fps=5)
    with running_app(data_dir, MSM_SOURCE=str(clip)) as app:
        yield app.url


def test_sidebar_switches_language_for_one_browser_session(server, tmp_path):
    from playwright.sync_api import sync_playwright
    shots = tmp_path
    with sync_playwright() as p:
        b = launch(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 900})
            page.goto(server, timeout=60_000)
            page.get_by_role("heading", name="Pemantauan Langsung").wait_for(timeout=60_000)
            time.sleep(1.0)
            assert page.get_by_role("link", name="Dasbor").count() == 1     # navigation in Indonesian
            page.goto(server + "dashboard", timeout=60_000)
            page.get_by_role("heading", name="Dasbor").wait_for(timeout=60_000)
            page.get_by_text("Rekap produksi").first.wait_for(timeout=30_000)
            # the sessions table (a canvas grid with hidden accessible cells): local time + zone
            page.locator("[role=gridcell]", has_text="WIB").first.wait_for(state="attached", timeout=30_000)
            page.screenshot(path=str(shots / "i18n_id.png"))

            # switch THIS browser session to English in the sidebar
            page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
            page.get_by_role("option", name="English").click()
            page.get_by_role("heading", name="Dashboard").wait_for(timeout=60_000)
            page.get_by_text("Production recap").first.wait_for(timeout=30_000)
            assert page.get_by_role("link", name="Live Monitoring").count() == 1
            # keyed widgets redraw their option labels too (the status chips)
            status = page.locator("[data-testid='stMultiSelect']").first
            status.get_by_text("finished").wait_for(timeout=30_000)
            assert status.get_by_text("selesai").count() == 0
            page.screenshot(path=str(shots / "i18n_en.png"))

            # another browser session still opens in the default language
            other = b.new_context().new_page()
            other.goto(server, timeout=60_000)
            other.get_by_role("heading", name="Pemantauan Langsung").wait_for(timeout=60_000)
            # and the first one stays English after a rerun
            page.get_by_role("link", name="Live Monitoring").click()
            page.get_by_role("heading", name="Live Monitoring").wait_for(timeout=60_000)
            page.get_by_text("START SESSION").first.wait_for(timeout=30_000)
        finally:
            b.close()
