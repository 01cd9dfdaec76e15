"""Where things live on disk.

Everything the product writes at run time lives under ``data/`` (the Docker volume);
model files live under ``weights/``. Both roots can be moved with environment
variables so tests and several stations never share state by accident.

Example:
    >>> from core.platform.paths import Paths
    >>> p = Paths.from_env()
    >>> p.sessions.name
    'sessions'
"""
from __future__ import annotations

import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Paths:
    data: Path
    weights: Path

    @classmethod
    def from_env(cls) -> "Paths":
        data = Path(os.environ.get("MSM_DATA_DIR", PROJECT_ROOT / "data")).resolve()
        weights = Path(os.environ.get("MSM_WEIGHTS_DIR", PROJECT_ROOT / "weights")).resolve()
        return cls(data=data, weights=weights)

    @property
    def db_dir(self) -> Path:
        return self.data / "db"

    @property
    def media(self) -> Path:
        return self.data / "media"

    @property
    def sessions(self) -> Path:
        return self.media / "sessions"

    @property
    def runs(self) -> Path:
        return self.data / "runs"

    @property
    def cache(self) -> Path:
        return self.data / "cache"

    @property
    def uploads(self) -> Path:
        return self.data / "uploads"

    @property
    def exports(self) -> Path:
        return self.data / "exports"

    @property
    def sounds(self) -> Path:
        return self.data / "sounds"

    @property
    def demo_clip(self) -> Path:
        return PROJECT_ROOT / "data" / "demo" / "demo.mp4"

    def ensure(self) -> "Paths":
        for d in (self.db_dir, self.sessions, self.runs, self.cache, self.uploads,
                  self.exports, self.sounds, self.weights):
            d.mkdir(parents=True, exist_ok=True)
        return self


_SAFE = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_len: int = 40) -> str:
    """A filesystem-safe slug of free text (unicode, slashes, ``..`` all become dashes).

    >>> slugify("Batch A/../x ü")
    'batch-a-x-u'
    """
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    slug = _SAFE.sub("-", norm).strip("-")[:max_len].strip("-")
    return slug or "session"


def new_session_id(name: str) -> str:
    """A unique, safe session id: slug of the name plus a random suffix (no collisions).

    >>> sid = new_session_id("../../etc")
    >>> "/" in sid or ".." in sid
    False
    """
    return f"{slugify(name)}-{uuid.uuid4().hex[:8]}"


def safe_join(root: Path, *parts: str) -> Path:
    """Join ``parts`` under ``root`` and refuse anything that escapes it."""
    root = root.resolve()
    p = root.joinpath(*parts).resolve()
    if p != root and root not in p.parents:
        raise ValueError(f"path escapes {root}: {'/'.join(parts)}")
    return p


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file and rename, so a crash never
    leaves a half-written file under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
