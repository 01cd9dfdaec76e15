"""Teach mode end to end in headless Chromium on the running app (issue 12, item 5): recorded
cycles are listed, the engineer ticks the cycle the counter missed, confirms, fits, sees
precision/recall before and after, saves (audited, applied) and undoes.

The cycles are recorded into the station's real SQLite database before the app starts, as
the counting worker records them during a session (the worker's own recording is covered by
tests/test_teach.py)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from browser import MARKS, english_station, launch, open_settings_signed_in, running_app

PIN = "teach-8642"
pytestmark = MARKS


@pytest.fixture
def server(data_dir):
    english_station(data_dir)
    from core.counting.cues import DEFAULT_MODEL, Cues
    from core.live import cycles
    from core.platform.storage import Database
    db = Database()
    rng = np.random.default_rng(4)
    ids = []
    try:
        for i in range(8):   # identical smooth sheets: a thin outline and a carried object decide
            sheet = i % 2 == 0
            c = Cues(outline=rng.uniform(0.5, 0.9) if sheet else rng.uniform(0.0, 0.03),
                     carried=rng.uniform(0.1, 0.13) if sheet else rng.uniform(0.03, 0.05),
                     swept=rng.uniform(0.2, 0.3) if sheet else rng.uniform(0.05, 0.08))
            accepted = sheet and i != 4          # the counter missed cycle #5 (a real sheet)
            p = DEFAULT_MODEL.prob(c)
            ids.append(cycles.record(db, None, frame=30 * i, t=float(i), accepted=accepted,
                                     probability=p if accepted else min(p, 0.4), reason="r", cues=c.to_dict()))
    finally:
        db.dispose()
    with running_app(data_dir, MSM_ENGINEER_PIN=PIN) as app:
        yield app.url, ids


def _teach_tab(page) -> None:
    """Open the Teach mode tab; after a rerun Streamlit may briefly show the old and the new
    tab bar together, so wait until only one is left."""
    tab = page.get_by_role("tab", name="Teach mode")
    for _ in range(40):
        if tab.count() == 1:
            break
        time.sleep(0.25)
    tab.first.click()


def test_teach_mode_in_a_real_browser(server, data_dir):
    from playwright.sync_api import sync_playwright
    url, ids = server
    missed = ids[4]
    with sync_playwright() as p:
        b = launch(p)
        try:
            page = b.new_page(viewport={"width": 1400, "height": 1200}, locale="en-US")
            open_settings_signed_in(page, url, "Sari", PIN)

            _teach_tab(page)
            page.get_by_text("In use: the default counting rule.").wait_for(timeout=30_000)
            box = page.get_by_role("checkbox", name=f"Cycle {missed} ·")
            assert not box.is_checked()                   # the counter said "no sheet"
            box.check(force=True)                         # the engineer: there was one
            page.get_by_role("button", name="Confirm these cycles").click()
            page.get_by_text("8 cycles confirmed: 4 sheets.").wait_for(timeout=30_000)

            _teach_tab(page)
            page.get_by_role("button", name="Fit to these cycles").click()
            time.sleep(2.0)                                # the rerun may show the first tab again
            _teach_tab(page)
            page.get_by_text("Recall after the fit").wait_for(timeout=30_000)
            page.get_by_text("On 8 confirmed cycles (4 with a sheet).").wait_for(timeout=30_000)
            page.get_by_role("button", name="Save the fit").click()
            page.get_by_text("The counter now uses this station's fit.").wait_for(timeout=30_000)
            _teach_tab(page)
            page.get_by_text("In use: this station's fit.").wait_for(timeout=30_000)

            from core.platform.storage import Database
            db = Database()
            try:
                cm = db.load_settings().counting.cue_model
                assert cm is not None and cm["source"] == "station"
                from core.platform.engineering import audit_trail
                assert audit_trail(db, key_prefix="counting.cue_model")[0].who == "Sari"
            finally:
                db.dispose()

            _teach_tab(page)
            page.get_by_role("button", name="Undo the last teach-mode save").click()
            page.get_by_text("Restored the default counting rule.").wait_for(timeout=30_000)
        finally:
            b.close()
    from core.live import cycles
    from core.platform.storage import Database
    db = Database()
    try:
        assert db.load_settings().counting.cue_model is None
        ex, y = cycles.examples(db)
        assert len(y) == 8 and sum(y) == 4
        assert {c.id: c.label for c in cycles.recent(db)}[missed] == 1
    finally:
        db.dispose()
