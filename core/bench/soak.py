"""Soak test of the live path (not in CI): run the real counting worker for a long time
against an RTSP stream (or a looping file) and print memory, threads and FPS over time.

Stages: prepare a clip (rendered stacking scene, looped to the wanted length) → serve it
over RTSP with the project's GStreamer test server (restarted whenever the stream ends, as a
camera that reboots) → run :class:`core.live.worker.CountingWorker` with an open session, so
counting, capture writing and the database are all exercised → sample every ``--interval``
seconds → summary JSON on stdout (progress lines on stderr).

    python -m core soak --minutes 30 --rtsp            # the live RTSP path
    python -m core soak --minutes 5 --source clip.mp4  # a looping file

Example:
    >>> s = summarize([Sample(0, 100.0, 10, 10, 9.5, 0, 0, "live", 0),
    ...                Sample(60, 101.0, 10, 10, 10.0, 600, 1, "live", 0)], warmup_s=0)
    >>> s["rss_growth_mb"], s["fps_mean"]
    (1.0, 9.75)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import psutil

from core.platform.errors import CliParser
from core.platform.log import get

log = get("soak")
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Sample:
    t_s: float               # seconds since the worker started
    rss_mb: float            # resident memory of this process
    threads: int             # OS threads of this process
    py_threads: int          # Python threads
    fps: float               # frames the counting loop processed per second (worker's view)
    frames: int              # frames processed since start
    count: int               # session count
    source_status: str
    outages: int
    open_files: int = 0


def summarize(samples: list[Sample], warmup_s: float = 60.0) -> dict[str, Any]:
    """Start/end/growth of memory (after a warm-up, when models and buffers are allocated),
    thread range, FPS mean/min."""
    if not samples:
        return {"samples": 0}
    steady = [s for s in samples if s.t_s >= warmup_s] or samples[-1:]
    first, last = steady[0], samples[-1]
    hours = max((last.t_s - first.t_s) / 3600.0, 1e-9)
    fps = [s.fps for s in samples if s.t_s >= warmup_s] or [s.fps for s in samples]
    growth = round(last.rss_mb - first.rss_mb, 1)
    return {
        "samples": len(samples),
        "duration_s": round(last.t_s, 1),
        "rss_start_mb": round(first.rss_mb, 1),
        "rss_end_mb": round(last.rss_mb, 1),
        "rss_peak_mb": round(max(s.rss_mb for s in samples), 1),
        "rss_growth_mb": growth,
        "rss_growth_mb_per_h": round(growth / hours, 1) if last.t_s > first.t_s else 0.0,
        "threads_min": min(s.threads for s in samples),
        "threads_max": max(s.threads for s in samples),
        "threads_end": last.threads,
        "fps_mean": round(sum(fps) / len(fps), 2),
        "fps_min": round(min(fps), 2),
        "frames": last.frames,
        "count": last.count,
        "outages": last.outages,
        "open_files_end": last.open_files,
    }


# --------------------------------------------------------------------------- the clip
def make_clip(path: Path, minutes: float, width: int, height: int, fps: float, seed: int = 7) -> Path:
    """A stacking clip (8 sheets + a hand) rendered once and repeated to ``minutes`` long,
    H.264 via PyAV so GStreamer can serve it."""
    import av
    import cv2

    from core.synthetic.clips import ClipSpec, Event, SceneConfig, render_clip
    base = path.with_name(path.stem + "_base.mp4")
    events = [Event("sheet", gap_s=1.0)] + [Event("hand", gap_s=1.0)] + [Event("sheet", gap_s=1.0) for _ in range(7)]
    render_clip(ClipSpec(width=width, height=height, fps=fps, seed=seed, events=events, codec="mp4v",
                         scene=SceneConfig(finish="brushed", floor="concrete", container="bin"),
                         name="soak"), base)
    total = int(minutes * 60 * fps)
    written = 0
    # stream the base clip again and again (never all frames in memory: the soak measures this
    # process's RSS, which must not start inflated by the clip preparation)
    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=int(round(fps)))
        st.width, st.height, st.pix_fmt = width, height, "yuv420p"
        st.options = {"preset": "veryfast", "crf": "26", "g": str(int(fps * 2))}
        while written < total:
            cap = cv2.VideoCapture(str(base))
            got = 0
            while written < total:
                ok, img = cap.read()
                if not ok:
                    break
                got += 1
                written += 1
                for pkt in st.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                    out.mux(pkt)
            cap.release()
            if got == 0:
                raise RuntimeError("the rendered soak clip has no frames")
        for pkt in st.encode(None):
            out.mux(pkt)
    base.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------- the RTSP server
class LoopingRtspServer:
    """core/bench/rtsp_server.py (GStreamer, system Python) on 127.0.0.1; restarted when the
    stream ends or the server dies, like a camera that comes back."""

    def __init__(self, clip: Path, port: int):
        self.clip, self.port = clip, port
        self.proc: Optional[subprocess.Popen] = None
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, name="soak-rtsp", daemon=True)

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/x"

    def _spawn(self) -> None:
        from core.bench.rtsp_server import SYSTEM_PYTHON
        script = Path(__file__).resolve().parent / "rtsp_server.py"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}  # system python
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(script), "--port", str(self.port), "--clip", str(self.clip)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if line.startswith("READY"):
                return
            if self.proc.poll() is not None:
                break
        raise RuntimeError("the RTSP test server did not start (GStreamer rtsp-server missing?)")

    def start(self) -> str:
        self._spawn()
        self._thread.start()
        return self.url

    def _keep(self) -> None:
        while not self._stop.wait(1.0):
            if self.proc is not None and self.proc.poll() is not None:
                self.restarts += 1
                log.info("RTSP server ended (restart %d)", self.restarts)
                try:
                    self._spawn()
                except RuntimeError as e:
                    log.warning("%s", e)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# --------------------------------------------------------------------------- the run
def run(source: str, minutes: float, interval_s: float, data_dir: Path, warmup_s: float = 60.0,
        session: bool = True, out=sys.stderr) -> dict[str, Any]:
    os.environ["MSM_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    from core.live.worker import CountingWorker
    from core.platform.paths import Paths
    from core.platform.storage import Database
    paths = Paths.from_env().ensure()
    db = Database()
    proc = psutil.Process()
    w = CountingWorker(db, paths, source=source, realtime=True, loop=True)
    w.start()
    if session:
        w.start_session("Soak", 100_000, user="soak")
    t0 = time.monotonic()
    samples: list[Sample] = []
    print(f"{'t_s':>7} {'rss_mb':>8} {'thr':>4} {'fps':>6} {'frames':>8} {'count':>6} {'outages':>7} source",
          file=out, flush=True)
    try:
        while True:
            time.sleep(max(0.0, interval_s - ((time.monotonic() - t0) % interval_s)))
            st = w.status()
            try:
                nfiles = proc.num_fds()
            except Exception:
                nfiles = 0
            s = Sample(t_s=round(time.monotonic() - t0, 1), rss_mb=round(proc.memory_info().rss / 2**20, 1),
                       threads=proc.num_threads(), py_threads=threading.active_count(), fps=round(st.fps, 2),
                       frames=st.frames, count=st.count, source_status=st.source_status, outages=st.outages,
                       open_files=nfiles)
            samples.append(s)
            print(f"{s.t_s:7.0f} {s.rss_mb:8.1f} {s.threads:4d} {s.fps:6.2f} {s.frames:8d} {s.count:6d} "
                  f"{s.outages:7d} {s.source_status}", file=out, flush=True)
            if s.t_s >= minutes * 60:
                break
    finally:
        w.stop()
        db.dispose()
    return {"summary": summarize(samples, warmup_s), "samples": [asdict(x) for x in samples]}



def main(argv: list[str] | None = None) -> int:
    ap = CliParser(prog="soak", description="Long run of the live path printing memory, threads and FPS.")
    ap.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    ap.add_argument("--interval", type=float, default=30.0, help="seconds between samples (default 30)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before the memory baseline (default 60)")
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--rtsp", action="store_true", help="serve a rendered clip over RTSP (GStreamer) and count it")
    grp.add_argument("--source", default="", help="a video file (looped) or rtsp:// URL to count")
    ap.add_argument("--size", default="640x480", help="clip size WxH for --rtsp or the default file (default 640x480)")
    ap.add_argument("--fps", type=float, default=10.0, help="clip frame rate (default 10)")
    ap.add_argument("--clip-minutes", type=float, default=0.0,
                    help="length of one pass of the clip (default: the soak length + 1 min, so the stream never ends)")
    ap.add_argument("--data-dir", default="", help="data folder (default: a temp folder, removed after)")
    ap.add_argument("--no-session", action="store_true", help="do not open a counting session")
    ap.add_argument("--out", default="", help="also write the JSON result to this file")
    try:
        a = ap.parse_args(argv)
        if not (0 < a.minutes <= 24 * 60):
            ap.error("--minutes must be within 0..1440")
        if not (1 <= a.interval <= 3600):
            ap.error("--interval must be within 1..3600 s")
        if not a.clip_minutes:
            a.clip_minutes = a.minutes + 1
        if not (0.5 <= a.fps <= 60) or not (0.1 <= a.clip_minutes <= 24 * 60):
            ap.error("--fps must be 0.5..60 and --clip-minutes 0.1..1440")
        try:
            w, h = (int(x) for x in a.size.lower().split("x"))
            assert 64 <= w <= 3840 and 64 <= h <= 2160 and w % 2 == 0 and h % 2 == 0
        except (ValueError, AssertionError):
            ap.error("--size must be WxH with even numbers, e.g. 640x480")
        if a.source and not a.source.startswith(("rtsp://", "rtsps://")) and not Path(a.source).is_file():
            ap.error(f"--source not found: {a.source}")
    except SystemExit as e:
        return int(e.code or 0)

    tmp = tempfile.TemporaryDirectory(prefix="msm-soak-")
    data_dir = Path(a.data_dir) if a.data_dir else Path(tmp.name) / "data"
    server: Optional[LoopingRtspServer] = None
    try:
        source = a.source
        if not source:
            # prepared in a child process, so this process's RSS reflects the live path only
            clip = Path(tmp.name) / "soak.mp4"
            code = (f"from pathlib import Path; from core.bench.soak import make_clip; "
                    f"make_clip(Path({str(clip)!r}), {a.clip_minutes!r}, {w}, {h}, {a.fps!r})")
            r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
            if r.returncode != 0 or not clip.is_file():
                raise RuntimeError("could not prepare the soak clip: " + (r.stderr.strip().splitlines() or ["?"])[-1])
            source = str(clip)
            if a.rtsp:
                import socket
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                server = LoopingRtspServer(clip, port)
                source = server.start()
        print(f"soak: {a.minutes:g} min on {source}", file=sys.stderr, flush=True)
        res = run(source, a.minutes, a.interval, data_dir, warmup_s=a.warmup, session=not a.no_session)
        res["source"] = "rtsp (GStreamer test server)" if server else source
        res["rtsp_server_restarts"] = server.restarts if server else 0
        res["clip"] = {"size": a.size, "fps": a.fps}
        text = json.dumps(res, indent=2)
        print(text)
        if a.out:
            Path(a.out).write_text(text)
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one line, no traceback on the terminal
        log.debug("soak failed", exc_info=True)
        print(f"error: soak failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if server:
            server.stop()
        tmp.cleanup()


def cli_soak(argv: list[str]) -> int:
    return main(argv)


if __name__ == "__main__":
    sys.exit(main())
