"""Types and helpers shared by the report modules: periods, export results, report errors, paths."""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Optional

from core.platform import i18n
from core.platform.log import get
from core.platform.paths import Paths, safe_join
from core.platform.storage import (
    Database,
)

log = get("reports")


FORMATS = ("json", "csv", "xlsx", "pdf", "zip")


Progress = Callable[[float, str], None]


class ReportError(ValueError):
    """Bad input for a report (unknown session, bad format, unwritable path): one clear line."""


def _noop(_f: float, _m: str = "") -> None:
    pass


# =====================================================================================
# 1. Session log
# =====================================================================================
def _iso(dt: Optional[datetime], tz: str) -> Optional[str]:
    return i18n.iso_local(dt, tz)


def _rel(folder: str, stored: str) -> str:
    """A stored path (relative to ``media/sessions``) as a path inside the session folder,
    so the log reads ``crop_01.png``-style names that stay valid when the folder moves."""
    if not stored:
        return ""
    p = stored.replace("\\", "/")
    prefix = folder.rstrip("/") + "/"
    if folder and p.startswith(prefix):
        return p[len(prefix):]
    if os.path.isabs(p):
        parts = PurePosixPath(p).parts
        fparts = PurePosixPath(folder).parts
        for i in range(len(parts) - len(fparts) + 1):  # …/sessions/<folder>/x.png → x.png
            if fparts and tuple(parts[i:i + len(fparts)]) == fparts:
                return "/".join(parts[i + len(fparts):])
    return p


def _r(x: Optional[float], nd: int = 3) -> Optional[float]:
    return None if x is None else round(float(x), nd)


def _settings_tz(db: Database) -> str:
    try:
        return db.load_settings().ui.timezone
    except Exception:  # a broken settings row must not stop a report
        return i18n.DEFAULT_TZ


def _json_bytes(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")


# =====================================================================================
# Synthetic sessions (benchmark, tests, demo data)
# =====================================================================================
DEFECT_TYPES = ("crazing", "inclusion", "patches", "pitted_surface", "rolled-in_scale", "scratches")


# =====================================================================================
# 3. Exports
# =====================================================================================
@dataclass
class ExportResult:
    """What an export wrote."""
    path: Optional[Path]
    format: str
    sessions: list[str]
    seconds: float
    bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "format": self.format, "sessions": self.sessions,
                "seconds": round(self.seconds, 3), "bytes": self.bytes}


@dataclass
class Period:
    """A plant-local date range of a report (both ends inclusive)."""
    date_from: Optional[date] = None
    date_to: Optional[date] = None

    def label(self) -> str:
        a = self.date_from.isoformat() if self.date_from else "…"
        b = self.date_to.isoformat() if self.date_to else "…"
        return f"{a} – {b}"


def _local_naive(iso: Optional[str]) -> Optional[datetime]:
    """Excel has no zones: local wall time, the zone is named in the header."""
    return None if not iso else datetime.fromisoformat(iso).replace(tzinfo=None)


def _image_file(paths: Paths, lg: dict[str, Any], rel: str) -> Optional[Path]:
    if not rel:
        return None
    try:
        p = safe_join(session_dir(paths, lg["folder"]), rel)
    except ValueError:
        return None
    return p if p.is_file() else None


def _short(iso: Optional[str]) -> str:
    """``2026-11-21T14:00:01+07:00`` → ``2026-11-21 14:00``."""
    return "–" if not iso else iso[:16].replace("T", " ")


def session_dir(paths: Paths, folder: str) -> Path:
    """The session's folder on disk (refuses a stored folder that escapes ``sessions``)."""
    return safe_join(paths.sessions, folder)


def defect_and_review_totals(logs: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """Defect types and review decisions summed over the session logs (the reports' charts).

    >>> logs = [{"summary": {"defect_types": {"scratches": 2}, "approved": 1, "rejected": 0, "pending": 3}}] * 2
    >>> types, reviews = defect_and_review_totals(logs)
    >>> dict(types), dict(reviews)
    ({'scratches': 4}, {'approved': 2, 'rejected': 0, 'pending': 6})
    """
    types: Counter[str] = Counter()
    reviews: Counter[str] = Counter()
    for lg in logs:
        types.update(lg["summary"]["defect_types"])
        for k in ("approved", "rejected", "pending"):
            reviews[k] += lg["summary"][k]
    return types, reviews
