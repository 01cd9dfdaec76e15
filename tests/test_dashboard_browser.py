"""Headless Chromium on the running app (a real ``streamlit run`` subprocess, real report
job): the per-day chart's axis reads dates in the reader's language (one day used to read
"23:59:59.9996 … 00:00:00.0004"); a finished report's download buttons go away when the
form shows another selection (the wrong report was one click away). Nothing is mocked."""
from __future__ import annotations

import re
from datetime import timedelta

from browser import MARKS, launch, open_page, running_app

pytestmark = MARKS


def test_day_axis_is_dates_and_downloads_follow_the_selection(data_dir, db, paths):
    from datetime import datetime, time, timezone

    from playwright.sync_api import sync_playwright

    from core.platform import i18n
    from core.platform.storage import utcnow
    from core.synthetic.session import make_synthetic_session
    jkt = i18n.zone("Asia/Jakarta")       # yesterday 10:00 plant time: inside shift A of one day
    day = i18n.to_local(utcnow(), "Asia/Jakarta").date() - timedelta(days=1)
    t0 = datetime.combine(day, time(10, 0), tzinfo=jkt).astimezone(timezone.utc)
    make_synthetic_session(db, paths, 4, name="Batch A", started_at=t0, interval_s=30, seed=1)
    make_synthetic_session(db, paths, 3, name="Batch B", started_at=t0 + timedelta(minutes=10), interval_s=30,
                           seed=2)
    with running_app(data_dir, MSM_SOURCE="none") as app, sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(app.url, wait_until="domcontentloaded")
        open_page(page, re.compile("^(Dashboard|Dasbor)$"), ".js-plotly-plot", wait_ms=60_000)
        # Indonesian is the default language: the day reads "29 Nov 2026" style, no clock times
        chart = page.locator(".js-plotly-plot").first
        chart.wait_for(timeout=60_000)
        ticks = [t.text_content() for t in chart.locator(".xtick text").all()]
        assert ticks == [i18n.fmt_date(day, "id")], ticks
        assert not any(":" in t for t in ticks)

        # the count-over-time chart: day/month as numbers, no English month names
        page.get_by_role("tab", name=re.compile("^(Count over time|Jumlah dari waktu ke waktu)$")).click()
        tl = page.locator(".js-plotly-plot").filter(has=page.locator(".xtick")).last
        page.wait_for_timeout(1500)
        tl_ticks = [t.text_content() for t in tl.locator(".xtick text").all()]
        assert tl_ticks and all(re.fullmatch(r"\d\d/\d\d \d\d:\d\d", t) for t in tl_ticks), tl_ticks

        # a report for Batch B (the newest, selected first) …
        page.get_by_role("button", name=re.compile("^(Generate Report|Buat Laporan)$")).click()
        dl = page.get_by_role("button", name=re.compile("^(Download|Unduh) PDF$"))
        dl.wait_for(timeout=120_000)
        # … then the form shows Batch A: the Batch B files must not be offered under it
        box = page.locator("[data-testid=stSelectbox]").filter(
            has_text=re.compile("^(Session|Sesi)")).last
        box.click()
        page.get_by_role("option", name=re.compile("^Batch A")).click()
        page.wait_for_timeout(2500)
        assert dl.count() == 0, "the previous report's downloads are still offered"
        body = page.inner_text("body")
        browser.close()
    assert "Traceback" not in body
