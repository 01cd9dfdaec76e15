"""Session archives: one .zip (files + a manifest of the rows) written and imported idempotently."""
from __future__ import annotations

import io
import json
import stat
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from core.platform.log import get
from core.platform.paths import Paths, atomic_write_bytes, safe_join
from core.platform.storage import (
    TZ,
    CaptureRow,
    CountEventRow,
    Database,
    DefectRow,
    MeasurementRow,
    SessionRow,
    utcnow,
)
from core.reports.common import (
    Progress,
    ReportError,
    _json_bytes,
    _noop,
    _settings_tz,
    session_dir,
)
from core.reports.sessionlog import LOG_NAME, _load_session, _log_from_row

log = get("reports")


# =====================================================================================
# 4. Session archive (backup) and import
# =====================================================================================
ARCHIVE_FORMAT = "msm-session-archive"


ARCHIVE_VERSION = 1


MANIFEST = "manifest.json"


MEDIA_PREFIX = "media/"     # members: media/<session folder>/<file>, relative to data/media/sessions


def _row_dict(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in row.__table__.columns:
        if col.key in skip:
            continue
        v = getattr(row, col.key)
        out[col.key] = v.astimezone(timezone.utc).isoformat() if isinstance(v, datetime) else v
    return out


def _manifest_entry(row: SessionRow) -> dict[str, Any]:
    return {
        "session": _row_dict(row),
        "events": [_row_dict(e) for e in row.events],
        "captures": [{**_row_dict(c), "defects": [_row_dict(d) for d in c.defects],
                      "measurements": [_row_dict(m) for m in c.measurements]} for c in row.captures],
    }


def archive_bytes(db: Database, paths: Paths, session_ids: list[str], tz: str | None = None,
                  progress: Progress | None = None) -> bytes:
    """One .zip with every file of the sessions' folders (captures, crops, overlays, masks,
    logs), each session's fresh ``session_log.json`` and a manifest of their database rows."""
    buf = io.BytesIO()
    write_archive_to(buf, db, paths, session_ids, tz, progress)
    return buf.getvalue()


def write_archive_to(target: Any, db: Database, paths: Paths, session_ids: list[str], tz: str | None = None,
                     progress: Progress | None = None) -> None:
    """Stream the archive into ``target`` (a path or a binary file object): a 1,000-sheet
    session of full-size captures never has to fit in memory."""
    progress = progress or _noop
    tz = tz or _settings_tz(db)
    entries = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i, sid in enumerate(session_ids):
            with db.session() as s:
                row = _load_session(s, sid)
                entry = _manifest_entry(row)
                log_doc = _log_from_row(row, tz)
            entries.append(entry)
            folder = row.folder or sid
            root = session_dir(paths, folder)
            files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()) if root.is_dir() else []
            for k, p in enumerate(files):
                rel = p.relative_to(root).as_posix()
                if rel == LOG_NAME or p.name.endswith(".tmp"):
                    continue
                # images are already compressed: store them, deflate only text
                ctype = zipfile.ZIP_STORED if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".mp4") else zipfile.ZIP_DEFLATED
                zf.write(p, f"{MEDIA_PREFIX}{folder}/{rel}", compress_type=ctype)
                if k % 100 == 0:
                    progress((i + k / max(1, len(files))) / len(session_ids) * 0.95, sid)
            zf.writestr(f"{MEDIA_PREFIX}{folder}/{LOG_NAME}", _json_bytes(log_doc))
        zf.writestr(MANIFEST, _json_bytes({"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION,
                                           "created_at": utcnow().isoformat(), "sessions": entries}))
    progress(1.0, "archive")


@dataclass
class ImportResult:
    """What an archive import did; importing the same archive again creates nothing."""
    created: list[str] = field(default_factory=list)     # sessions added to the database
    existing: list[str] = field(default_factory=list)    # sessions already there (rows untouched)
    files_written: int = 0
    files_skipped: int = 0                                # already on disk

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "existing": self.existing, "files_written": self.files_written,
                "files_skipped": self.files_skipped}


def _unsafe_member(info: zipfile.ZipInfo) -> Optional[str]:
    """Why a zip member may not be extracted (zip-slip), or None when it is safe."""
    name = info.filename
    mode = (info.external_attr >> 16) & 0xFFFF
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if "\\" in name or "\x00" in name:
        return "has a backslash or NUL in its name"
    p = PurePosixPath(name)
    if p.is_absolute() or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if any(part in ("..", "") for part in name.rstrip("/").split("/")) or name.startswith("./"):
        return "leaves its folder (..)"
    if name != MANIFEST and not name.startswith(MEDIA_PREFIX):
        return "is outside media/"
    return None


def _parse_dt(v: Any) -> Any:
    return datetime.fromisoformat(v) if isinstance(v, str) and v else v


def _mk(model: Any, data: dict[str, Any], skip: tuple[str, ...] = ()) -> Any:
    cols = {c.key: c for c in model.__table__.columns}
    kwargs = {}
    for k, v in data.items():
        if k not in cols or k in skip:
            continue
        kwargs[k] = _parse_dt(v) if isinstance(cols[k].type, TZ) else v
    return model(**kwargs)


def import_archive(db: Database, paths: Paths, archive: Path | str | bytes,
                   progress: Progress | None = None) -> ImportResult:
    """Restore sessions from an archive (another station's backup). Idempotent: sessions
    already in the database keep their rows, files already on disk are not rewritten.
    Refuses the whole archive, before writing anything, when any member is a symlink,
    absolute, climbs out with ``..``, or the manifest names a folder outside ``sessions``.
    """
    progress = progress or _noop
    src: Any = io.BytesIO(archive) if isinstance(archive, (bytes, bytearray)) else Path(archive)
    if isinstance(src, Path) and not src.is_file():
        raise ReportError(f"archive not found: {src}")
    try:
        zf = zipfile.ZipFile(src)
    except (zipfile.BadZipFile, OSError) as e:
        raise ReportError(f"not a session archive (bad zip): {e}") from None
    res = ImportResult()
    with zf:
        infos = zf.infolist()
        for info in infos:
            why = _unsafe_member(info)
            if why:
                raise ReportError(f"refused archive: member {info.filename!r} {why}")
        try:
            manifest = json.loads(zf.read(MANIFEST))
        except KeyError:
            raise ReportError("not a session archive: manifest.json is missing") from None
        except ValueError:
            raise ReportError("not a session archive: manifest.json is not valid JSON") from None
        if manifest.get("format") != ARCHIVE_FORMAT or not isinstance(manifest.get("sessions"), list):
            raise ReportError("not a session archive: unknown manifest format")
        folders: dict[str, str] = {}
        for entry in manifest["sessions"]:
            srow = entry.get("session") or {}
            sid, folder = str(srow.get("id") or ""), str(srow.get("folder") or "")
            if not sid or not folder:
                raise ReportError("refused archive: a session in the manifest has no id or folder")
            try:
                session_dir(paths, folder)
            except ValueError:
                raise ReportError(f"refused archive: session folder {folder!r} leaves the sessions folder") from None
            if _unsafe_member(zipfile.ZipInfo(f"{MEDIA_PREFIX}{folder}/x")):
                raise ReportError(f"refused archive: session folder {folder!r} is not a plain relative path")
            folders[folder] = sid
        # every media member must belong to a session folder of the manifest
        for info in infos:
            if info.filename == MANIFEST or info.is_dir():
                continue
            rel = info.filename[len(MEDIA_PREFIX):]
            if not any(rel.startswith(f + "/") for f in folders):
                raise ReportError(f"refused archive: member {info.filename!r} is outside the archived sessions")
        # files first (a crash leaves files without rows, never rows without files)
        members = [i for i in infos if i.filename != MANIFEST and not i.is_dir()]
        for k, info in enumerate(members):
            dest = safe_join(paths.sessions, info.filename[len(MEDIA_PREFIX):])
            if dest.exists():
                res.files_skipped += 1
            else:
                atomic_write_bytes(dest, zf.read(info))
                res.files_written += 1
            if k % 100 == 0:
                progress(0.8 * (k + 1) / max(1, len(members)), "files")
    for entry in manifest["sessions"]:
        sid = entry["session"]["id"]
        with db.session() as s:
            if s.get(SessionRow, sid) is not None:
                res.existing.append(sid)
                continue
            s.add(_mk(SessionRow, entry["session"]))
            s.flush()
            cap_ids: dict[int, int] = {}
            for c in entry.get("captures", []):
                row = _mk(CaptureRow, c, skip=("id",))
                s.add(row)
                s.flush()
                cap_ids[int(c["id"])] = row.id
                for d in c.get("defects", []):
                    s.add(_mk(DefectRow, {**d, "capture_id": row.id}, skip=("id",)))
                for m in c.get("measurements", []):
                    s.add(_mk(MeasurementRow, {**m, "capture_id": row.id}, skip=("id",)))
            for e in entry.get("events", []):
                old = e.get("capture_id")
                s.add(_mk(CountEventRow, {**e, "capture_id": cap_ids.get(int(old)) if old is not None else None},
                          skip=("id",)))
            res.created.append(sid)
    progress(1.0, "import")
    return res
