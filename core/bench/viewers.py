"""``python -m core bench viewers --tabs 1,3,10``: does watching slow counting down?

Stages: start the real app (``streamlit run app.py``, its own temp data folder, the demo
clip or ``--rtsp`` the demo clip served by the GStreamer test server) → a warm-up tab
starts a session → baseline (app memory, threads) → for each N: open N headless Chromium
viewers on the live page (each in its own browser context, as N people on N machines;
the browser runs at the lowest CPU priority, ``nice 19``, since in a plant the viewers sit
on other machines) → measure for ``--seconds`` → click PAUSE in one tab and time its
acknowledgement → RESUME → close the tabs → memory and threads again.

Per N it prints one JSON line: the worker's frames/s (frames it processed ÷ time, read
from the worker's own counter), sheets per minute against the clip's truth (the demo:
9 sheets per 29.97 s = 18.02/min), app and worker CPU (% of one core), app memory (peak
while watching, and after the tabs closed vs the baseline), threads, the PAUSE
click→acknowledged latency, and how long a new tab took to show the counter and the video.

Example:
    >>> truth_in_positions(0, 899)      # one full pass of the demo clip
    9
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import psutil

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
DEMO_FRAMES = 899
DEMO_FPS = 30.0
# decision frames of the demo's 9 sheets (data/demo/README.md: stable frame + ~6)
DEMO_DECISIONS = [84, 158, 301, 414, 494, 628, 690, 762, 834]
DEMO_DECIDE_AFTER = 6
TRUTH_PER_MIN = len(DEMO_DECISIONS) / (DEMO_FRAMES / DEMO_FPS) * 60.0


def truth_in_positions(p0: int, p1: int) -> int:
    """Sheets the demo clip's truth decides at looping positions ``p0 <= pos < p1``."""
    n = 0
    for d in DEMO_DECISIONS:
        f = d + DEMO_DECIDE_AFTER
        k0 = -(-(p0 - f) // DEMO_FRAMES)        # first pass whose decision is >= p0
        k1 = -(-(p1 - f) // DEMO_FRAMES)
        n += max(0, k1 - k0)
    return n


def _port_below_ephemeral() -> int:
    """A free port below the kernel's ephemeral range: one picked there can be taken by any
    outgoing connection (10 tabs make hundreds) before the camera comes on minutes later."""
    for port in range(21000, 32000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    return _free_port()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _looped_clip(src: Path, dst: Path, times: int) -> Path:
    """The demo clip repeated ``times`` times by remuxing (no re-encoding), for RTSP."""
    import av
    with av.open(str(dst), "w") as out:
        ost = None
        offset = 0
        for _ in range(times):
            with av.open(str(src)) as inp:
                ist = inp.streams.video[0]
                if ost is None:
                    ost = out.add_stream_from_template(ist)
                last = 0
                for pkt in inp.demux(ist):
                    if pkt.dts is None:
                        continue
                    pkt.pts = (pkt.pts or 0) + offset
                    pkt.dts += offset
                    last = max(last, pkt.pts + (pkt.duration or 0))
                    pkt.stream = ost
                    out.mux(pkt)
                offset = last
    return dst


class App:
    """The app under test: ``streamlit run app.py`` on a loopback port."""

    def __init__(self, data_dir: Path, source: str, log_path: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, MSM_DATA_DIR=str(data_dir), MSM_SOURCE=source)
        env.pop("DATABASE_URL", None)
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port",
                                      str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
                                      "--browser.gatherUsageStats", "false"],
                                     cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the app did not start: {log_path}")

    def worker(self) -> Optional[psutil.Process]:
        try:
            for ch in psutil.Process(self.proc.pid).children(recursive=True):
                if "--serve" in " ".join(ch.cmdline()):
                    return ch
        except psutil.Error:
            pass
        return None

    def stream_health(self) -> dict[str, Any]:
        """The MJPEG server's own count of connected viewers (its /health route)."""
        import urllib.request
        try:
            for c in psutil.Process(self.proc.pid).net_connections(kind="tcp"):
                if c.status == "LISTEN" and c.laddr.port != self.port:
                    with urllib.request.urlopen(f"http://127.0.0.1:{c.laddr.port}/health", timeout=3) as r:
                        return json.loads(r.read())
        except Exception:
            pass
        return {}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def _counter_seen(page) -> bool:
    return page.locator("text=/^\\s*[\\d.,]+ \\/ [\\d.,]+\\s*$/").count() > 0


def _video_seen(page) -> bool:
    return bool(page.evaluate("() => { const i = document.querySelector(\"img[data-testid='live-video']\");"
                              " return i ? i.naturalWidth : 0; }"))


def _open_tab(browser, url: str, timeout_s: float = 60.0, video: bool = True) -> tuple[Any, Any, float, float]:
    """A viewer in its own context; returns (context, page, counter_s, video_s); ``video``
    False: do not wait for a picture (a camera that is off has none)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    t0 = time.monotonic()
    try:
        page.goto(url, wait_until="domcontentloaded", timeout=int(timeout_s * 1000))
    except Exception:
        ctx.close()             # a tab that did not load must not stay open as a viewer
        raise
    counter_s = video_s = float("nan")
    deadline = t0 + timeout_s
    while time.monotonic() < deadline and (counter_s != counter_s or (video and video_s != video_s)):
        if counter_s != counter_s and _counter_seen(page):
            counter_s = time.monotonic() - t0
        if video_s != video_s and _video_seen(page):
            video_s = time.monotonic() - t0
        page.wait_for_timeout(100)
    return ctx, page, counter_s, video_s


class _KeepBrowserNiced:
    """Chromium run as root raises its own processes' priority (its browser and GPU
    processes to nice -8) whatever ``nice`` it was started with: put every Chromium process
    back to nice 19 each half second, so the viewers really run at the lowest priority."""

    def __init__(self):
        import threading
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="renice-browser", daemon=True)

    def start(self) -> "_KeepBrowserNiced":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for p in psutil.process_iter(["name"]):
                try:
                    if "chrom" in (p.info["name"] or "").lower() and p.nice() != 19:
                        p.nice(19)
                except psutil.Error:
                    pass


def _browser_cpu_s() -> float:
    """CPU seconds used so far by this machine's Chromium processes (the viewers)."""
    total = 0.0
    for p in psutil.process_iter(["name", "cpu_times"]):
        try:
            if "chrom" in (p.info["name"] or "").lower() and p.info["cpu_times"] is not None:
                total += p.info["cpu_times"].user + p.info["cpu_times"].system
        except (psutil.Error, TypeError):
            pass
    return total


def _status(channel) -> dict[str, Any]:
    return channel.read_status() or {}


def _pause_acks(db, page, active, trials: int = 3) -> dict[str, Any]:
    """:func:`_pause_ack` ``trials`` times (2 s apart, as an operator would click): the medians,
    and every trial's figures (one click is a noisy sample on a shared machine)."""
    import statistics
    runs = []
    for _ in range(trials):
        time.sleep(2.0)
        runs.append(_pause_ack(db, page, active))
    out: dict[str, Any] = {}
    for k in ("pause_ack_s", "pause_click_to_shown_s", "pause_click_to_ack_s"):
        vals = [r[k] for r in runs if k in r and r[k] == r[k]]
        out[k] = round(statistics.median(vals), 3) if vals else float("nan")
        out[k[:-2] + "_all_s"] = [r.get(k) for r in runs]
    out["resumed"] = all(r["resumed"] for r in runs)
    return out


def _pause_ack(db, page, active) -> dict[str, Any]:
    """Click PAUSE in a tab: seconds until the worker acknowledged the command (database)
    and until the tab shows RESUME; then RESUME again."""
    from sqlalchemy import select

    from core.live.commands import LiveCommandRow
    btn = page.get_by_role("button", name=re.compile("^(PAUSE|JEDA)$"))
    resume = page.get_by_role("button", name=re.compile("^(RESUME|LANJUTKAN)$"))
    _click_until(resume, btn, 30, active)  # a session left paused: resume it first
    btn.wait_for(timeout=30_000)
    t_click = time.time()
    btn.click()
    ack_s = ui_s = float("nan")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (ack_s != ack_s or ui_s != ui_s):
        if ack_s != ack_s:
            with db.session() as s:
                r = s.scalars(select(LiveCommandRow).where(LiveCommandRow.kind == "pause")
                              .order_by(LiveCommandRow.seq.desc())).first()
                if r is not None and r.acked_at is not None and r.created_at.timestamp() >= t_click - 1:
                    ack_s = r.acked_at.timestamp() - r.created_at.timestamp()
                    click_to_row = r.created_at.timestamp() - t_click
        if ui_s != ui_s and resume.count() > 0 and btn.count() == 0:
            ui_s = time.time() - t_click
        time.sleep(0.02)
    out = {"pause_ack_s": round(ack_s, 3), "pause_click_to_shown_s": round(ui_s, 3)}
    if ack_s == ack_s:
        out["pause_click_to_ack_s"] = round(ack_s + max(0.0, click_to_row), 3)
    _click_until(resume, btn, 60, active)
    out["resumed"] = bool(active())
    return out


def _click_until(button, shown, timeout_s: float, done) -> None:
    """Click ``button`` (when there) until ``done()`` (the worker's published state) holds
    and ``shown`` is on the page: a page element can be stale during a rerun, so the
    worker's own status decides."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not (done() and shown.count() > 0):
        if button.count() > 0:
            try:
                button.click(timeout=5_000)
            except Exception:
                pass
        time.sleep(1.0)


SESSION_TTL_S = 120.0     # Streamlit's server.disconnectedSessionTTL (default; this app keeps it)


def _settle_after_close(app: "App", t_close: float, ttl_s: float, done=None) -> None:
    """Wait for what closed tabs leave behind to go: Streamlit keeps a closed tab's session
    for ``server.disconnectedSessionTTL`` (120 s, for reconnects), and AnyIO, which serves
    the page's files in worker threads, ends idle ones (> 10 s) only at its next thread call.
    Past the TTL one GET of the page (what the next visitor or a health probe does) lets it
    do so; the baseline is taken the same way. Returns at ``ttl_s`` or once ``done()``."""
    import urllib.request
    probed = False
    while time.monotonic() - t_close < ttl_s:
        time.sleep(5)
        if not probed and time.monotonic() - t_close > min(SESSION_TTL_S + 10, ttl_s - 10):
            try:
                urllib.request.urlopen(app.url, timeout=10).read()
            except Exception:
                pass
            probed = True
            time.sleep(2)
        if probed and done is not None and done():
            return
        if probed and done is None:
            return


def run(tabs: list[int], seconds: float, rtsp: bool, out=sys.stderr, ttl_s: float = 150.0,
        baseline: Optional[dict[str, Any]] = None) -> list[dict[str, Any]]:
    from playwright.sync_api import sync_playwright
    tmp = Path(tempfile.mkdtemp(prefix="msm-viewers-"))
    data_dir = tmp / "data"
    os.environ["MSM_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    from core.live.channel import Channel, default_path
    from core.platform.paths import Paths
    from core.platform.storage import Database
    Paths.from_env().ensure()
    server = None
    source = "demo"
    loops = max(1, round(seconds / (DEMO_FRAMES / DEMO_FPS)))
    if rtsp:
        # a camera that is off until the viewers watch: the worker retries it; per viewer count
        # the server plays the demo clip ``loops`` times ONCE (one stream, never restarted), so the
        # sheets it shows are known exactly (9 per pass) whatever the timing
        from core.bench.rtsp_server import RtspServer
        clip = _looped_clip(ROOT / "data" / "demo" / "demo.mp4", tmp / "demo-loop.mp4", times=loops)
        server = RtspServer(clip, _port_below_ephemeral())
        source = server.url
    # the browser at the lowest CPU priority (a wrapper: Playwright launches an executable)
    wrapper = tmp / "chromium-nice19"
    wrapper.write_text(f"#!/bin/sh\nexec nice -n 19 {CHROMIUM} \"$@\"\n")
    wrapper.chmod(0o755)
    app = App(data_dir, source, tmp / "app.log")
    renice = _KeepBrowserNiced().start()
    results: list[dict[str, Any]] = []
    db = Database()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(wrapper), args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            # warm-up tab: starts the session through the page, as an operator would
            ctx, page, c_s, v_s = _open_tab(browser, app.url, 120)
            page.get_by_role("button", name=re.compile("START SESSION|MULAI SESI")).wait_for(timeout=90_000)
            page.wait_for_timeout(1500)
            page.get_by_label(re.compile("Session name|Nama sesi")).fill("Viewers bench")
            page.get_by_label(re.compile("Max count target|Target hitungan")).fill("100000")
            page.get_by_role("button", name=re.compile("START SESSION|MULAI SESI")).click()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not _counter_seen(page):
                page.wait_for_timeout(200)
            ctx.close()
            ch = Channel.open(default_path(data_dir))
            app_p = psutil.Process(app.proc.pid)
            # the baseline: the idle app (session counting) after the warm-up tab has come and gone
            # and Streamlit dropped its session (the TTL), measured as the after-close figures are
            t_base = time.monotonic()
            _settle_after_close(app, t_base, ttl_s)
            base_rss = app_p.memory_info().rss / 2**20
            base_threads = app_p.num_threads()
            base_py = app.stream_health().get("threads", {})
            if baseline is not None:
                baseline.update({"rss_mb": round(base_rss, 1), "threads": base_threads, "py_threads": base_py,
                                 "after_warmup_closed_s": round(time.monotonic() - t_base, 1),
                                 "definition": "the idle app, its session counting, after a warm-up tab on the live "
                                               "page came and went, past Streamlit's 120 s session TTL and one "
                                               "GET of the page"})
            print(f"baseline ({time.monotonic() - t_base:.0f} s after the warm-up tab closed): app {base_rss:.0f} MB, "
                  f"{base_threads} threads {base_py}; source {source}", file=out, flush=True)
            for n in tabs:
                tabs_open = []
                loads = []
                failed = 0
                for _ in range(n):
                    try:
                        c, pg, cs, vs = _open_tab(browser, app.url, 90, video=server is None)
                    except Exception as e:   # a tab that never loaded is a result, not a crash
                        print(f"tab failed to load: {str(e).splitlines()[0][:160]}", file=out, flush=True)
                        failed += 1
                        continue
                    tabs_open.append((c, pg))
                    loads.append((cs, vs))
                time.sleep(3)                       # settle
                wk = app.worker()
                if server is not None:      # the camera comes on now; its first frame opens the window
                    server.start()
                    deadline = time.monotonic() + 90
                    while time.monotonic() < deadline and _status(ch).get("source_status") != "live":
                        time.sleep(0.1)
                    if _status(ch).get("source_status") != "live":
                        raise RuntimeError(f"the worker never received the camera's stream ({server.url})")
                st0, t0 = _status(ch), time.monotonic()
                cpu_a0, cpu_w0 = app_p.cpu_times(), wk.cpu_times() if wk else None
                cpu_b0 = _browser_cpu_s()
                peak = app_p.memory_info().rss / 2**20
                if server is None:
                    while time.monotonic() - t0 < seconds:
                        time.sleep(1.0)
                        peak = max(peak, app_p.memory_info().rss / 2**20)
                else:                       # until the stream ends (then the camera goes off)
                    last_frames, last_t = st0.get("frames", 0), t0
                    while time.monotonic() - t0 < loops * DEMO_FRAMES / DEMO_FPS + 120:
                        time.sleep(0.2)
                        peak = max(peak, app_p.memory_info().rss / 2**20)
                        cur = _status(ch)
                        if cur.get("frames", 0) != last_frames:
                            last_frames, last_t = cur.get("frames", 0), time.monotonic()
                        if cur.get("source_status") != "live" or time.monotonic() - last_t > 3.0:
                            break
                    server.kill()
                st1, t1 = _status(ch), time.monotonic()
                if server is not None:      # the stream's time: its first to its last frame
                    t1 = last_t
                viewers_now = app.stream_health().get("viewers")
                cpu_a1, cpu_w1 = app_p.cpu_times(), wk.cpu_times() if wk else None
                cpu_b1 = _browser_cpu_s()
                dt = t1 - t0
                frames = st1.get("frames", 0) - st0.get("frames", 0)
                s0, s1 = st0.get("session") or {}, st1.get("session") or {}
                counted = s1.get("count", 0) - s0.get("count", 0)
                row: dict[str, Any] = {
                    "tabs": n, "seconds": round(dt, 1), "source": "rtsp" if rtsp else "demo file",
                    "source_fps": round(float(st1.get("source_fps") or 0), 2),
                    "worker_fps": round(frames / dt, 2),
                    "worker_fps_shown": round(float(st1.get("fps") or 0), 2),
                    "sheets": counted,
                    "sheets_per_min": round(counted / dt * 60, 2),
                    "truth_per_min": round(TRUTH_PER_MIN, 2),
                    "app_cpu_pct": round((sum(cpu_a1[:2]) - sum(cpu_a0[:2])) / dt * 100, 1),
                    "worker_cpu_pct": round((sum(cpu_w1[:2]) - sum(cpu_w0[:2])) / dt * 100, 1) if wk else None,
                    "worker_rss_mb": round(wk.memory_info().rss / 2**20, 1) if wk else None,
                    # the viewers' browser shares this machine (in a plant it would not): its CPU
                    # is what the tab-load and click-to-shown times wait for
                    "browser_cpu_pct": round((cpu_b1 - cpu_b0) / dt * 100, 1),
                    "load_avg_1min": round(os.getloadavg()[0], 2),
                    "app_rss_peak_mb": round(peak, 1),
                    "outages": st1.get("outages"),
                    "video_viewers_connected": viewers_now,
                }
                if server is None:   # a file: the exact truth for the clip frames played in the window
                    row["truth_sheets_in_window"] = truth_in_positions(st0.get("position", 0) + 1,
                                                                       st1.get("position", 0) + 1)
                else:                # the camera showed the clip ``loops`` times from its first frame
                    row["truth_sheets_in_window"] = loops * len(DEMO_DECISIONS)
                    row["frames_sent_by_camera"] = loops * DEMO_FRAMES
                    row["frames_counted"] = frames
                row["tabs_failed_to_load"] = failed
                # a new tab while N are watching
                try:
                    c, pg, cs, vs = _open_tab(browser, app.url, 90, video=server is None)
                    tabs_open.append((c, pg))
                except Exception:
                    cs = vs = float("nan")
                row["new_tab_counter_s"] = round(cs, 2)
                row["new_tab_video_s"] = round(vs, 2)
                row["tab_load_counter_s_max"] = round(max((x[0] for x in loads), default=float("nan")), 2)
                try:
                    row.update(_pause_acks(db, tabs_open[-1][1], lambda: (
                        (_status(ch).get("session") or {}).get("status") == "active")))
                except Exception as e:      # report it; the other figures still stand
                    row["pause_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    try:
                        row["pause_page_text"] = tabs_open[-1][1].inner_text("body")[:400]
                        tabs_open[-1][1].screenshot(path=str(Path(tempfile.gettempdir()) /
                                                             f"msm-viewers-pause-{n}.png"))
                    except Exception:
                        pass
                for c, _pg in tabs_open:
                    c.close()
                t_close = time.monotonic()
                _settle_after_close(app, t_close, ttl_s, lambda: app_p.num_threads() <= base_threads and
                                    app_p.memory_info().rss / 2**20 <= base_rss * 1.1 + 20)
                row["after_close_s"] = round(time.monotonic() - t_close, 1)
                row["app_rss_after_close_mb"] = round(app_p.memory_info().rss / 2**20, 1)
                row["app_rss_baseline_mb"] = round(base_rss, 1)
                row["app_threads_after_close"] = app_p.num_threads()
                row["app_threads_baseline"] = base_threads
                left = app.stream_health().get("threads", {})
                row["py_threads_left_over"] = {k: v - base_py.get(k, 0) for k, v in left.items()
                                               if v != base_py.get(k, 0)}
                results.append(row)
                print(json.dumps(row), flush=True)
            browser.close()
            ch.close()
    finally:
        renice.stop()
        app.stop()
        db.dispose()
        if server is not None:
            server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def _summary(rows: list[dict[str, Any]], base: dict[str, Any]) -> str:
    parts = []
    for r in rows:
        parts.append(
            f"{r['tabs']} tabs: worker {r['worker_fps']}/{r['source_fps']} fps, "
            f"{r['sheets']}/{r.get('truth_sheets_in_window', '?')} sheets, "
            f"PAUSE shown {r.get('pause_click_to_shown_s')} s median of {r.get('pause_click_to_shown_all_s')} "
            f"(worker ack {r.get('pause_ack_s')} s), "
            f"new tab {r['new_tab_counter_s']} s, app {r['app_rss_peak_mb']:.0f} MB peak, "
            f"after close {r['app_rss_after_close_mb']:.0f} MB/{r['app_threads_after_close']} threads")
    return "; ".join(parts) + f" (baseline {base['rss_mb']:.0f} MB/{base['threads']} threads)"


def bench_viewers(argv: list[str]) -> int:
    """``python -m core bench viewers --tabs 1,3,10 [--seconds 60] [--rtsp] [--record]``"""
    ap = argparse.ArgumentParser(prog="python -m core bench viewers",
                                 description="counting speed, acks and memory with N live-page viewers")
    ap.add_argument("--tabs", default="1,3,10", help="viewer counts to measure, comma separated (default 1,3,10)")
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring time per viewer count (default 60)")
    ap.add_argument("--rtsp", action="store_true", help="the demo clip served over RTSP instead of the file")
    ap.add_argument("--after-close", type=float, default=150.0,
                    help="seconds to wait for memory/threads to come back after the tabs close (default 150: "
                         "Streamlit keeps a closed tab's session 120 s)")
    from core.bench.record import add_record_arg, record
    add_record_arg(ap)
    a = ap.parse_args(argv)
    try:
        tabs = [int(x) for x in a.tabs.split(",") if x.strip()]
        assert tabs and all(1 <= t <= 50 for t in tabs)
    except (ValueError, AssertionError):
        ap.error("--tabs must be numbers 1..50, e.g. 1,3,10")
    if not 5 <= a.seconds <= 3600:
        ap.error("--seconds must be within 5..3600")
    if not Path(CHROMIUM).exists():
        print(f"error: Chromium not found at {CHROMIUM}", file=sys.stderr)
        return 2
    load0 = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load0[0]:.2f}", file=sys.stderr, flush=True)
    base: dict[str, Any] = {}
    rows = run(tabs, a.seconds, a.rtsp, ttl_s=a.after_close, baseline=base)
    if a.record and rows:
        figures = {"rows": rows, "baseline": base, "load_avg_at_start": [round(x, 2) for x in load0],
                   "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
                   "truth_per_min": round(TRUTH_PER_MIN, 2)}
        data = ("the demo clip (data/demo/demo.mp4, 9 sheets per 29.97 s, looping) "
                + ("served over RTSP by the GStreamer test server" if a.rtsp else "as a file")
                + f", {a.seconds:g} s per viewer count, headless Chromium tabs at nice 19")
        record("viewers-rtsp" if a.rtsp else "viewers", argv, data, figures, _summary(rows, base),
               command="viewers")
    return 0
