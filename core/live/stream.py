"""One MJPEG stream of the live video for every viewer.

The worker process encodes each shown frame once (≤ 10 frames/s, only while somebody
watches) into the shared :mod:`core.live.channel`. In the app process, ONE hub thread
copies each new frame out of the channel once; every viewer's connection then sends
those same bytes. A viewer only ever gets the newest frame: a slow or stalled one skips
frames instead of queueing them (each connection holds one reference to the latest
bytes, the kernel's socket buffer is the only backlog, and a connection that cannot send
for :data:`SEND_TIMEOUT_S` is closed). Nothing a viewer does runs in the counting process.

Routes: ``/stream.mjpg?fps=N`` (multipart/x-mixed-replace, plays in an ``<img>``),
``/frame.jpg`` (the latest frame once), ``/status.json`` (the counter's published status,
see :func:`status_json`: the live page polls it instead of rerunning Streamlit every
second), ``/health`` (JSON: viewers, each viewer's frame rate, frames sent, threads).
Like the video, these routes carry no authentication: the server binds where the app does.

Example:
    >>> hub = FrameHub(None)
    >>> hub.publish(b"jpeg-1"); hub.latest()[1]
    b'jpeg-1'
"""
from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlparse

from core.platform.log import get

log = get("stream")
MAX_FPS = 10.0
SEND_TIMEOUT_S = 10.0
STATUS_CACHE_S = 1.0            # 10 tabs polling twice a second share one JSON encoding
BOUNDARY = "msmframe"


class FrameHub:
    """The latest encoded frame, copied once from the channel and shared by every viewer."""

    def __init__(self, channel: Any, poll_s: float = 0.01):
        self.channel = channel
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._latest: tuple[int, bytes] = (0, b"")
        self._viewers = 0
        self._rates: dict[int, float] = {}     # connection id → the frame rate it asked for
        self.sent = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "FrameHub":
        self._thread = threading.Thread(target=self._run, name="frame-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread:
            self._thread.join(5)

    def publish(self, jpeg: bytes) -> None:
        with self._cond:
            self._latest = (self._latest[0] + 1, jpeg)
            self._cond.notify_all()

    def latest(self) -> tuple[int, bytes]:
        with self._cond:
            return self._latest

    def wait_newer(self, seq: int, timeout: float) -> tuple[int, bytes]:
        with self._cond:
            self._cond.wait_for(lambda: self._latest[0] != seq or self._stop.is_set(), timeout)
            return self._latest

    @property
    def viewers(self) -> int:
        return self._viewers

    def viewer_rates(self) -> list[float]:
        """The frame rate each connected stream viewer asked for (a background tab asks 1)."""
        with self._cond:
            return sorted(self._rates.values())

    def set_rate(self, conn: int, fps: Optional[float]) -> None:
        with self._cond:
            if fps is None:
                self._rates.pop(conn, None)
            else:
                self._rates[conn] = fps

    def add_viewer(self, n: int) -> None:
        with self._cond:
            self._viewers += n
        if n > 0 and self.channel is not None:
            self.channel.want_view()

    def _run(self) -> None:
        seen = -1
        last_want = 0.0
        while not self._stop.is_set():
            ch = self.channel
            if ch is None or self._viewers <= 0:
                self._stop.wait(0.2)
                continue
            now = time.monotonic()
            if now - last_want > 0.5:
                ch.want_view()              # the worker encodes only while somebody watches
                last_want = now
            try:
                got = ch.read_frame(since=seen)
            except Exception as e:          # a channel being replaced: try again
                log.debug("channel read failed: %s", e)
                got = None
            if got is not None:
                seen = got[0]
                self.publish(got[2])
            self._stop.wait(self.poll_s)


class _Handler(BaseHTTPRequestHandler):
    server: "StreamServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:    # no line per request on stderr
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        hub = self.server.hub
        self.connection.settimeout(self.server.send_timeout_s)
        if url.path == "/stream.mjpg":
            q = parse_qs(url.query)
            try:
                fps = min(MAX_FPS, max(0.2, float(q.get("fps", [MAX_FPS])[0])))
            except ValueError:
                fps = MAX_FPS
            self._stream(hub, fps)
        elif url.path == "/frame.jpg":
            hub.add_viewer(1)
            try:
                seq, data = hub.latest()
                if not data:
                    seq, data = hub.wait_newer(seq, 2.0)
            finally:
                hub.add_viewer(-1)
            if not data:
                self.send_error(503, "no frame yet")
                return
            self._send(200, "image/jpeg", data)
        elif url.path == "/health":
            # Python threads of the app by name: lets a benchmark see what a closed tab left behind
            names: dict[str, int] = {}
            for th in threading.enumerate():
                key = th.name.split(" (")[0].rstrip("0123456789-_")
                names[key] = names.get(key, 0) + 1
            body = json.dumps({"viewers": hub.viewers, "viewer_fps": hub.viewer_rates(), "sent": hub.sent,
                               "status_requests": self.server.status_requests, "threads": names}).encode()
            self._send(200, "application/json", body)
        elif url.path == "/status.json":
            self.server.status_requests += 1
            self._send(200, "application/json", self.server.status_body())
        else:
            self.send_error(404)

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, hub: FrameHub, fps: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        hub.add_viewer(1)
        hub.set_rate(id(self), fps)
        period = 1.0 / fps
        seq = -1
        next_t = 0.0
        try:
            while not self.server.stopping.is_set():
                wait = next_t - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                seq_new, data = hub.wait_newer(seq, 1.0)
                if seq_new == seq or not data:
                    seq = seq_new           # no frame yet (a camera that is off): wait, never spin
                    if _peer_closed(self.connection):
                        break               # ... but a viewer that left while no frame came is let go
                    continue
                seq = seq_new
                next_t = time.monotonic() + period
                # one part = the newest frame; if this send blocks (slow viewer), the frames
                # published meanwhile are simply skipped
                self.wfile.write(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\n"
                                 b"Content-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                self.wfile.flush()
                hub.sent += 1
        except (BrokenPipeError, ConnectionResetError, TimeoutError, OSError):
            pass                    # the viewer left or stalled: drop it, keep nothing
        finally:
            hub.set_rate(id(self), None)
            hub.add_viewer(-1)


def _peer_closed(sock: Any) -> bool:
    """True when the viewer closed its end: a stream that sends nothing (no frames) would
    otherwise never notice, and its thread would wait for ever.

    Example:
        >>> import socket
        >>> a, b = socket.socketpair()
        >>> _peer_closed(a)
        False
        >>> b.close(); _peer_closed(a)
        True
    """
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""     # readable with no data: closed
    except (OSError, ValueError):
        return True


class StreamServer(ThreadingHTTPServer):
    """The viewers' HTTP server (one short-lived thread per connected viewer)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, hub: FrameHub, host: str = "127.0.0.1", port: int = 0,
                 send_timeout_s: float = SEND_TIMEOUT_S, status: Optional[Callable[[], dict[str, Any]]] = None,
                 status_version: Optional[Callable[[], int]] = None):
        self.hub = hub
        self.send_timeout_s = send_timeout_s
        self.status = status            # the owner's status as a dict (None: an empty one)
        self.status_version = status_version or (lambda: 0)    # changes whenever the worker publishes
        self.status_requests = 0
        self._status_lock = threading.Lock()
        self._status_cache: tuple[float, int, bytes] = (0.0, -1, b"")
        self.stopping = threading.Event()
        super().__init__((host, port), _Handler)
        self._thread: Optional[threading.Thread] = None

    def status_body(self) -> bytes:
        """The status as JSON, built once per published status (and at least every
        :data:`STATUS_CACHE_S`: a worker that stopped publishing is seen as such) for all
        pollers together."""
        with self._status_lock:
            t, ver, body = self._status_cache
            now = time.monotonic()
            try:
                version = self.status_version()
            except Exception:
                version = -2
            if not body or version != ver or now - t >= STATUS_CACHE_S:
                try:
                    d = self.status() if self.status is not None else {}
                except Exception as e:      # a status being replaced: say so, never a traceback
                    log.debug("status failed: %s", e)
                    d = {"error": "status unavailable"}
                body = json.dumps(d, default=str, separators=(",", ":")).encode()
                self._status_cache = (now, version, body)
            return body

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> "StreamServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(5)
