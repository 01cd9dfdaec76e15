"""The small shared channel between the counting worker process and the app: the latest
status (JSON) and the latest encoded frame, in one memory-mapped file.

Why a memory-mapped file and not a socket or a queue: there is exactly one writer (the
worker) and any number of readers that only ever want the *newest* value. A queue would
have to be drained by every reader (a slow one would grow it); here a reader copies the
current bytes when it wants them and nothing piles up anywhere. The file lives in
``/dev/shm`` (RAM) when there is one. Each slot is guarded by a sequence counter (a
"seqlock"): the writer makes it odd while writing and even when done; a reader retries
when the counter changed under it, so it never sees half a frame.

The app writes two "demand" times into the header (someone watches the video / someone
wants a full-resolution frame): the worker encodes frames only while somebody wants them.

Example:
    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "ch")
    >>> w = Channel.create(p)
    >>> w.write_status({"frames": 3})
    >>> w.write_frame(b"jpegbytes", frame_id=7)
    >>> r = Channel.open(p)
    >>> r.read_status()["frames"], r.read_frame()
    (3, (2, 7, b'jpegbytes'))
    >>> r.close(); w.close(unlink=True)
"""
from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import time
from pathlib import Path
from typing import Any, Optional

MAGIC = b"MSMLIVE1"
HEADER = 64
# header: magic(8) view_demand(d) raw_demand(d) writer_pid(q) heartbeat(d)
_HDR = struct.Struct("<8sddqd")
_SLOT = struct.Struct("<QQQ")          # seq, length, frame id
STATUS_MAX = 256 * 1024
VIEW_MAX = 4 * 1024 * 1024
RAW_MAX = 12 * 1024 * 1024
_STATUS_AT = HEADER
_VIEW_AT = _STATUS_AT + _SLOT.size + STATUS_MAX
_RAW_AT = _VIEW_AT + _SLOT.size + VIEW_MAX
SIZE = _RAW_AT + _SLOT.size + RAW_MAX


def default_path(data_dir: Path, station: str = "") -> Path:
    """One channel per data folder and station: in RAM (``/dev/shm``) when available."""
    key = hashlib.sha1(f"{Path(data_dir).resolve()}|{station}".encode()).hexdigest()[:16]
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm / f"msm-live-{key}"
    return Path(data_dir) / "runs" / f"live-{key}.shm"


class Channel:
    """One memory-mapped file with a header and three slots (status, view JPEG, raw JPEG)."""

    def __init__(self, path: Path, mm: mmap.mmap, fd: int):
        self.path = Path(path)
        self._mm = mm
        self._fd = fd

    @classmethod
    def create(cls, path: str | os.PathLike) -> "Channel":
        """Create (or reset) the file; the owner does this before starting the worker."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a new file, never the old one truncated: a worker left over from a killed app may
        # still map the old one (it exits on its own) and must not fault on a shrunk file
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, SIZE)              # sparse: only the pages written use memory
        mm = mmap.mmap(fd, SIZE)
        _HDR.pack_into(mm, 0, MAGIC, 0.0, 0.0, 0, 0.0)
        return cls(path, mm, fd)

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Channel":
        fd = os.open(Path(path), os.O_RDWR)
        try:
            if os.fstat(fd).st_size < SIZE:
                raise ValueError(f"not a live channel: {path}")
            mm = mmap.mmap(fd, SIZE)
        except Exception:
            os.close(fd)
            raise
        if mm[:8] != MAGIC:
            mm.close()
            os.close(fd)
            raise ValueError(f"not a live channel: {path}")
        return cls(Path(path), mm, fd)

    def close(self, unlink: bool = False) -> None:
        try:
            self._mm.close()
        except (BufferError, ValueError):
            pass
        try:
            os.close(self._fd)
        except OSError:
            pass
        if unlink:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    # -- header ---------------------------------------------------------------------------------
    def _hdr(self) -> tuple:
        return _HDR.unpack_from(self._mm, 0)

    def want_view(self) -> None:
        """A viewer wants frames (the app calls this while somebody watches)."""
        struct.pack_into("<d", self._mm, 8, time.time())

    def want_raw(self) -> None:
        struct.pack_into("<d", self._mm, 16, time.time())

    def view_demand_age(self) -> float:
        t = self._hdr()[1]
        return time.time() - t if t else float("inf")

    def raw_demand_age(self) -> float:
        t = self._hdr()[2]
        return time.time() - t if t else float("inf")

    def beat(self) -> None:
        """The worker's heartbeat (its pid and the time)."""
        struct.pack_into("<qd", self._mm, 24, os.getpid(), time.time())

    def heartbeat(self) -> tuple[int, float]:
        """(writer pid, seconds since its last heartbeat); (0, inf) before the first one."""
        _m, _v, _r, pid, t = self._hdr()
        return pid, (time.time() - t if t else float("inf"))

    # -- slots ----------------------------------------------------------------------------------
    def _write(self, at: int, cap: int, data: bytes, frame_id: int = 0) -> None:
        if len(data) > cap:
            raise ValueError(f"{len(data)} bytes do not fit the {cap}-byte slot")
        seq = _SLOT.unpack_from(self._mm, at)[0]
        seq += 1 if seq % 2 == 0 else 2          # odd: being written
        _SLOT.pack_into(self._mm, at, seq, len(data), frame_id)
        start = at + _SLOT.size
        self._mm[start:start + len(data)] = data
        _SLOT.pack_into(self._mm, at, seq + 1, len(data), frame_id)   # even: complete

    def _read(self, at: int, cap: int, since: int = -1) -> Optional[tuple[int, int, bytes]]:
        """(seq, frame id, bytes), or None when empty or unchanged since ``since``."""
        for _ in range(50):
            seq, n, fid = _SLOT.unpack_from(self._mm, at)
            if seq == 0 or seq == since:
                return None
            if seq % 2:
                time.sleep(0.0005)
                continue
            start = at + _SLOT.size
            data = bytes(self._mm[start:start + min(n, cap)])
            if _SLOT.unpack_from(self._mm, at)[0] == seq:
                return seq, fid, data
        return None

    def write_status(self, status: dict[str, Any]) -> None:
        self._write(_STATUS_AT, STATUS_MAX, json.dumps(status, default=str).encode())

    def read_status(self) -> Optional[dict[str, Any]]:
        got = self._read(_STATUS_AT, STATUS_MAX)
        return json.loads(got[2]) if got else None

    def status_seq(self) -> int:
        return _SLOT.unpack_from(self._mm, _STATUS_AT)[0]

    def write_frame(self, jpeg: bytes, frame_id: int) -> None:
        """The latest annotated frame, encoded once for every viewer."""
        self._write(_VIEW_AT, VIEW_MAX, jpeg, frame_id)

    def read_frame(self, since: int = -1) -> Optional[tuple[int, int, bytes]]:
        return self._read(_VIEW_AT, VIEW_MAX, since)

    def frame_seq(self) -> int:
        return _SLOT.unpack_from(self._mm, _VIEW_AT)[0]

    def write_raw(self, jpeg: bytes, frame_id: int) -> None:
        """The latest frame at full resolution, without drawings (calibration, ROI)."""
        self._write(_RAW_AT, RAW_MAX, jpeg, frame_id)

    def read_raw(self, since: int = -1) -> Optional[tuple[int, int, bytes]]:
        return self._read(_RAW_AT, RAW_MAX, since)
