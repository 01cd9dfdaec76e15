"""A real RTSP server for tests: GStreamer's rtsp-server serving a video file as H.264 on
``rtsp://127.0.0.1:PORT/x``.

ffmpeg cannot serve RTSP, and GStreamer's Python bindings (``gi``, Debian's python3-gi)
live in the SYSTEM Python, not in the venv — so the server runs as a subprocess of that
interpreter (``$MSM_GST_PYTHON``, default ``/usr/bin/python3``):

    /usr/bin/python3 core/bench/rtsp_server.py --port 8554 --clip clip.mp4

It prints ``READY rtsp://127.0.0.1:8554/x`` once it listens. The stream is shared (every
client sees the same live timeline, like a camera) and plays the clip once in real time;
at the clip's end the stream ends (a camera going away). Tests use :class:`RtspServer` (importable from the
venv) to start, kill (SIGKILL) and restart it.

Example (in a test):
    >>> srv = RtspServer(clip)            # doctest: +SKIP
    >>> url = srv.start()                 # doctest: +SKIP
    >>> srv.kill(); srv.start(other_clip) # doctest: +SKIP
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# the interpreter with GStreamer's bindings (Debian's python3-gi); the venv has none
SYSTEM_PYTHON = os.environ.get("MSM_GST_PYTHON", "/usr/bin/python3")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def available() -> bool:
    """True when the system Python has GStreamer's RTSP server bindings."""
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0');"
                        "from gi.repository import GstRtspServer"], capture_output=True, timeout=30)
    return r.returncode == 0


class RtspServer:
    """Start/kill/restart the GStreamer RTSP server subprocess on 127.0.0.1."""

    def __init__(self, clip: Path, port: int | None = None):
        self.clip = Path(clip)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/x"

    def start(self, clip: Path | None = None, timeout: float = 20.0) -> str:
        if clip is not None:
            self.clip = Path(clip)
        cmd = [SYSTEM_PYTHON, str(Path(__file__).resolve()), "--port", str(self.port), "--clip", str(self.clip)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.time() + timeout
        assert self.proc.stdout is not None
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY"):
                return self.url
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise RuntimeError(f"RTSP server exited: {err[-2000:]}")
        self.kill()
        raise RuntimeError("RTSP server did not start in time")

    def kill(self) -> None:
        """SIGKILL, like a camera losing power; waits until the port is free."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> "RtspServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


# --- the server itself (runs under /usr/bin/python3) -----------------------------------------
def _serve(port: int, clip: str) -> None:
    import gi
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")       # never on a real interface
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    # decodebin accepts mp4v or H.264 clips; re-encode to low-latency H.264 with frequent
    # key frames so a reconnecting client gets a picture quickly.
    launch = (f'( filesrc location="{clip}" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! '
              "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bframes=0 ! "
              "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/x", factory)
    if server.attach(None) == 0:
        print("ERROR could not bind", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"READY rtsp://127.0.0.1:{port}/x", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--clip", required=True)
    a = ap.parse_args()
    _serve(a.port, a.clip)
