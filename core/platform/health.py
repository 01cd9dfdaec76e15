"""System health, the disk guard and the raw-capture retention policy.

Three stages, each usable from the UI, the CLI and tests:

1. :func:`snapshot` — one :class:`HealthSnapshot`: CPU, RAM, disk, GPU / VRAM and
   temperature (psutil always; NVML on a desktop GPU and ``jtop`` on a Jetson, each
   optional), the camera status, counting FPS and decision latency read from the
   counting worker (whatever it exposes — every read is guarded), and uptimes.
2. :func:`check_disk` — the disk guard: a session must not start when the data volume
   has less than ``settings.storage.min_free_gb`` free.
3. :func:`apply_retention` — deletes the raw captures of finished sessions older than
   ``settings.storage.retention_days``; a session that was never exported nor archived
   is kept unless ``force=True``.

Example:
    >>> from core.platform.paths import Paths
    >>> from core.platform.settings import Settings
    >>> st = check_disk(Paths.from_env(), Settings())
    >>> st.free_gb >= 0 and isinstance(st.ok, bool)
    True
    >>> snap = snapshot(Paths.from_env(), Settings())
    >>> 0 <= snap.ram_percent <= 100
    True
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Optional

import psutil

from core.platform.errors import CliParser
from core.platform.paths import Paths
from core.platform.settings import Settings

GB = 1024 ** 3
_PROCESS_STARTED = time.time()


# --------------------------------------------------------------------------- disk guard
@dataclass
class DiskStatus:
    """Free space on the data volume against the configured minimum.

    ``message`` is plain English; pages translate it with :meth:`localized`.
    """
    ok: bool
    path: str
    free_gb: float
    total_gb: float
    used_percent: float
    min_free_gb: float
    message: str = ""

    # msgid + values, so a page can show the message in the operator's language
    _MSG_LOW = ("Not enough free disk space: {free} GB free on {path}, at least {need} GB needed. "
                "Export or archive old sessions and apply the retention policy in Settings.")
    _MSG_UNREADABLE = "The free disk space of {path} cannot be read: {error}"

    def localized(self, _: Callable[[str], str] = lambda s: s, lang: str = "en") -> str:
        """The message in the language of ``_`` (a gettext function), numbers in ``lang``'s
        convention (``1,5 GB`` in Bahasa Indonesia)."""
        if self.ok:
            return ""
        if self.total_gb <= 0:
            return _(self._MSG_UNREADABLE).format(path=self.path, error=self.message.split(": ", 1)[-1])
        from core.platform.i18n import fmt_number
        return _(self._MSG_LOW).format(free=fmt_number(self.free_gb, lang, 1), path=self.path,
                                       need=fmt_number(self.min_free_gb, lang, 1))


class DiskFullError(RuntimeError):
    """Raised by :func:`require_disk` when a new session must not start."""

    def __init__(self, status: DiskStatus):
        super().__init__(status.message)
        self.status = status


def _existing(path: Path) -> Path:
    """The path or its nearest existing parent (the data folder may not exist yet)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_disk(paths: Paths, settings: Settings | None = None, min_free_gb: float | None = None) -> DiskStatus:
    """Is there room on the data volume for a new session?

    ``min_free_gb`` overrides ``settings.storage.min_free_gb`` (tests, CLI).

    >>> from core.platform.paths import Paths
    >>> check_disk(Paths.from_env(), min_free_gb=1e9).ok
    False
    """
    need = float(min_free_gb if min_free_gb is not None
                 else (settings or Settings()).storage.min_free_gb)
    where = _existing(paths.data)
    try:
        du = shutil.disk_usage(where)
    except OSError as e:  # an unreadable volume must refuse, not crash
        st = DiskStatus(False, str(where), 0.0, 0.0, 0.0, need)
        st.message = st._MSG_UNREADABLE.format(path=where, error=e)
        return st
    free_gb, total_gb = du.free / GB, du.total / GB
    st = DiskStatus(ok=free_gb >= need, path=str(where), free_gb=round(free_gb, 3), total_gb=round(total_gb, 3),
                    used_percent=round(100.0 * du.used / du.total, 1) if du.total else 0.0, min_free_gb=need)
    if not st.ok:
        st.message = st._MSG_LOW.format(free=f"{free_gb:.1f}", path=where, need=f"{need:.1f}")
    return st


def require_disk(paths: Paths, settings: Settings | None = None) -> DiskStatus:
    """:func:`check_disk`, raising :class:`DiskFullError` when space is short.

    The sessions module calls this before it creates a session folder.
    """
    st = check_disk(paths, settings)
    if not st.ok:
        raise DiskFullError(st)
    return st


# --------------------------------------------------------------------------- health snapshot
@dataclass
class GpuInfo:
    name: str
    source: str                          # nvml | jtop | torch
    util_percent: Optional[float] = None
    vram_used_mb: Optional[float] = None
    vram_total_mb: Optional[float] = None
    temperature_c: Optional[float] = None


@dataclass
class CameraInfo:
    """What the counting worker says about its source (all optional)."""
    available: bool = False              # False: no worker in this process
    status: str = "unknown"              # e.g. running | reconnecting | stopped | idle
    source: str = ""
    fps: Optional[float] = None          # frames the counting loop processes per second
    latency_ms: Optional[float] = None   # decision latency (stable scene → count)
    frames: Optional[int] = None
    running: Optional[bool] = None
    last_error: str = ""


@dataclass
class HealthSnapshot:
    at: str
    cpu_percent: float
    cpu_count: int
    load_avg: list[float]
    ram_percent: float
    ram_used_gb: float
    ram_total_gb: float
    process_rss_mb: float
    process_threads: int
    disk: DiskStatus
    gpus: list[GpuInfo] = field(default_factory=list)
    temperatures_c: dict[str, float] = field(default_factory=dict)
    camera: CameraInfo = field(default_factory=CameraInfo)
    process_uptime_s: float = 0.0
    system_uptime_s: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def max_temperature_c(self) -> Optional[float]:
        vals = list(self.temperatures_c.values()) + [g.temperature_c for g in self.gpus if g.temperature_c is not None]
        return max(vals) if vals else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["max_temperature_c"] = self.max_temperature_c
        return d


def _gpus_nvml() -> list[GpuInfo]:
    try:
        import pynvml  # nvidia-ml-py; present on desktop GPU boxes
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver / no GPU: the normal case on a CPU box
        return []
    out: list[GpuInfo] = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            g = GpuInfo(name=name.decode() if isinstance(name, bytes) else str(name), source="nvml")
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(h)
                g.vram_used_mb, g.vram_total_mb = mem.used / 2**20, mem.total / 2**20
            except Exception:
                pass
            try:
                g.util_percent = float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            except Exception:
                pass
            try:
                g.temperature_c = float(pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU))
            except Exception:
                pass
            out.append(g)
    except Exception:
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return out


def _gpus_jtop() -> list[GpuInfo]:
    """Jetson: the shared CPU/GPU memory and the GPU load through jtop (jetson-stats)."""
    if not (Path("/etc/nv_tegra_release").exists() or Path("/run/jtop.sock").exists()):
        return []
    try:
        from jtop import jtop  # jetson-stats
    except ImportError:
        return []
    try:
        with jtop() as j:
            if not j.ok():
                return []
            stats = j.stats or {}
            mem = getattr(j, "memory", {}) or {}
            ram = mem.get("RAM", {}) if isinstance(mem, dict) else {}
            temps = [v for k, v in stats.items() if str(k).lower().startswith("temp") and isinstance(v, (int, float))]
            return [GpuInfo(name="Jetson GPU", source="jtop",
                            util_percent=float(stats["GPU"]) if isinstance(stats.get("GPU"), (int, float)) else None,
                            vram_used_mb=ram.get("used", 0) / 1024 if ram else None,   # jtop reports kB
                            vram_total_mb=ram.get("tot", 0) / 1024 if ram else None,
                            temperature_c=max(temps) if temps else None)]
    except Exception:
        return []


def _gpus_torch() -> list[GpuInfo]:
    # only when torch is already loaded: importing it costs seconds and the health panel must stay instant
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(GpuInfo(name=torch.cuda.get_device_name(i), source="torch",
                               vram_used_mb=(total - free) / 2**20, vram_total_mb=total / 2**20))
        return out
    except Exception:
        return []


def gpu_info() -> list[GpuInfo]:
    """GPUs seen by NVML, else jtop (Jetson), else an already-loaded torch; [] on a CPU box."""
    return _gpus_nvml() or _gpus_jtop() or _gpus_torch()


def temperatures() -> dict[str, float]:
    """Hottest reading per sensor group (psutil, then the kernel's thermal zones as on a Jetson)."""
    out: dict[str, float] = {}
    try:
        for name, entries in (psutil.sensors_temperatures() or {}).items():
            vals = [e.current for e in entries if e.current is not None and -50 < e.current < 150]
            if vals:
                out[name] = float(max(vals))
    except Exception:
        pass
    if not out:
        for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
            try:
                kind = Path(zone, "type").read_text().strip()
                val = int(Path(zone, "temp").read_text().strip()) / 1000.0
                if -50 < val < 150:
                    out[kind] = max(val, out.get(kind, -1e9))
            except (OSError, ValueError):
                continue
    return out


_FIELD_NAMES = {
    "status": ("source_status", "status", "state"),
    "source": ("source", "uri", "source_uri"),
    "fps": ("fps", "processing_fps", "counting_fps", "frames_per_s"),
    "latency_ms": ("latency_ms", "decision_latency_ms", "last_latency_ms"),
    "frames": ("frames", "frames_seen", "frame_index", "frames_processed"),
    "running": ("running", "is_running", "alive"),
    "last_error": ("last_error", "error", "source_error", "source_message"),
}


def _read(obj: Any, names: tuple[str, ...]) -> Any:
    for n in names:
        v = obj.get(n) if isinstance(obj, dict) else getattr(obj, n, None)
        if callable(v) and not isinstance(v, type):
            continue  # a method, not a value
        if v is not None and v != "":
            return v
    return None


def camera_info(worker: Any) -> CameraInfo:
    """Read the worker's state without trusting its shape: ``worker.status()`` (dict or
    dataclass) or ``worker.state``/attributes; a missing field stays ``None``."""
    if worker is None:
        return CameraInfo(available=False, status="no worker")
    views: list[Any] = []
    for attr in ("status", "health", "snapshot", "state", "stats"):
        v = getattr(worker, attr, None)
        try:
            v = v() if callable(v) else v
        except Exception:
            v = None
        if v is not None and not isinstance(v, (str, int, float, bool)):
            views.append(v)
        elif isinstance(v, str) and attr in ("status", "state"):
            views.append({"status": v})
    views.append(worker)
    info = CameraInfo(available=True)
    for key, names in _FIELD_NAMES.items():
        for v in views:
            val = _read(v, names)
            if val is not None and not (key == "status" and not isinstance(val, str) and not hasattr(val, "value")):
                if hasattr(val, "value"):  # an Enum
                    val = val.value
                try:
                    if key in ("fps", "latency_ms"):
                        val = float(val)
                    elif key == "frames":
                        val = int(val)
                    elif key == "running":
                        val = bool(val)
                    else:
                        val = str(val)
                except (TypeError, ValueError):
                    continue
                setattr(info, key, val)
                break
    if info.status == "unknown" and info.running is not None:
        info.status = "running" if info.running else "stopped"
    if info.latency_ms is None:
        info.latency_ms = _decision_latency_ms(worker)
    return info


def _decision_latency_ms(worker: Any) -> Optional[float]:
    """Time from "the scene is stable again" to the count: the settle window the engine waits
    for, plus the verifier's time on the last decision (core.counting.engine.EngineStatus). None until
    the engine has decided once."""
    snap_fn = getattr(worker, "engine_status", None) or getattr(worker, "_snapshot", None)
    try:
        snap = snap_fn() if callable(snap_fn) else None
    except Exception:
        return None
    ms = getattr(snap, "last_decision_ms", None)
    if ms is None:
        return None
    settings = getattr(worker, "settings", None)
    settle_s = getattr(getattr(settings, "counting", None), "settle_s", 0.0) or 0.0
    try:
        return round(float(settle_s) * 1000.0 + float(ms), 1)
    except (TypeError, ValueError):
        return None


def snapshot(paths: Paths, settings: Settings | None = None, worker: Any = None,
             cpu_interval: float = 0.0) -> HealthSnapshot:
    """One health reading. Fast (no model import, no blocking unless ``cpu_interval`` > 0).

    >>> from core.platform.paths import Paths
    >>> s = snapshot(Paths.from_env())
    >>> s.camera.status
    'no worker'
    """
    settings = settings or Settings()
    vm = psutil.virtual_memory()
    proc = psutil.Process()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    disk = check_disk(paths, settings)
    snap = HealthSnapshot(
        at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cpu_percent=float(psutil.cpu_percent(interval=cpu_interval or None)),
        cpu_count=psutil.cpu_count() or 1,
        load_avg=load,
        ram_percent=float(vm.percent),
        ram_used_gb=round((vm.total - vm.available) / GB, 2),
        ram_total_gb=round(vm.total / GB, 2),
        process_rss_mb=round(proc.memory_info().rss / 2**20, 1),
        process_threads=threading.active_count(),
        disk=disk,
        gpus=gpu_info(),
        temperatures_c=temperatures(),
        camera=camera_info(worker),
        process_uptime_s=round(time.time() - proc.create_time(), 1),
        system_uptime_s=round(time.time() - psutil.boot_time(), 1),
    )
    if not disk.ok:
        snap.warnings.append(disk.message)
    if vm.percent >= 90:
        snap.warnings.append(f"RAM is {vm.percent:.0f}% used")
    t = snap.max_temperature_c
    if t is not None and t >= 85:
        snap.warnings.append(f"temperature is {t:.0f} °C")
    return snap


# --------------------------------------------------------------------------- retention
@dataclass
class RetentionItem:
    session_id: str
    name: str
    finished_at: Optional[str]
    action: str                 # purged | would_purge | kept_not_exported | already_clean
    files: int = 0
    bytes: int = 0


@dataclass
class RetentionReport:
    days: int
    cutoff: str
    dry_run: bool
    force: bool
    items: list[RetentionItem] = field(default_factory=list)

    @property
    def files_removed(self) -> int:
        return sum(i.files for i in self.items if i.action == "purged")

    @property
    def bytes_freed(self) -> int:
        return sum(i.bytes for i in self.items if i.action == "purged")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["files_removed"], d["bytes_freed"] = self.files_removed, self.bytes_freed
        return d


def apply_retention(db: Any, paths: Paths, settings: Settings | None = None, *, days: int | None = None,
                    force: bool = False, dry_run: bool = False, now: datetime | None = None) -> RetentionReport:
    """Delete raw capture images (clean + annotated frames) of sessions finished more than
    ``days`` ago. Defect crops, overlays, logs and every database row stay, so reports still
    work. A session never exported nor archived is kept unless ``force``.

    >>> from core.platform.storage import Database
    >>> r = apply_retention(Database("sqlite://"), Paths.from_env(), days=30, dry_run=True)
    >>> r.items
    []
    """
    from sqlalchemy import select

    from core.platform.storage import CaptureRow, SessionRow, UserLogRow

    settings = settings or Settings()
    days = int(settings.storage.retention_days if days is None else days)
    if days < 0:
        raise ValueError("retention days must be ≥ 0")
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=days)
    report = RetentionReport(days=days, cutoff=cutoff.isoformat(timespec="seconds"), dry_run=dry_run, force=force)
    with db.session() as s:
        rows = s.scalars(select(SessionRow).where(SessionRow.status == "finished",
                                                  SessionRow.finished_at.is_not(None),
                                                  SessionRow.finished_at < cutoff)
                         .order_by(SessionRow.finished_at)).all()
        for sess in rows:
            item = RetentionItem(sess.id, sess.name, sess.finished_at.isoformat(timespec="seconds")
                                 if sess.finished_at else None, "already_clean")
            files: list[Path] = []
            for cap in s.scalars(select(CaptureRow).where(CaptureRow.session_id == sess.id)):
                for rel in (cap.path, cap.annotated_path):
                    if not rel:
                        continue
                    try:
                        p = _capture_file(paths, sess.folder, rel)
                    except ValueError:  # a path that escapes the media folder is never deleted
                        continue
                    if p.is_file():
                        files.append(p)
            item.files = len(files)
            item.bytes = sum(p.stat().st_size for p in files)
            if not files:
                report.items.append(item)
                continue
            if not (sess.exported_at or sess.archived_at or force):
                item.action = "kept_not_exported"
            elif dry_run:
                item.action = "would_purge"
            else:
                for p in files:
                    try:
                        p.unlink()
                    except FileNotFoundError:
                        pass
                item.action = "purged"
                s.add(UserLogRow(level="info", session_id=sess.id,
                                 message=f"retention: removed {len(files)} raw capture files "
                                         f"({item.bytes / 2**20:.1f} MB) of a session finished over {days} days ago"
                                         + (" (forced)" if force and not (sess.exported_at or sess.archived_at) else "")))
            report.items.append(item)
    return report


def clean_cache(paths: Paths, older_than_s: float = 3600.0) -> tuple[int, int]:
    """"Smart clean": delete regenerable files under ``data/cache`` (thumbnails, bench
    scratch) older than ``older_than_s``. Returns (files, bytes)."""
    n = freed = 0
    cutoff = time.time() - older_than_s
    root = paths.cache
    if not root.is_dir():
        return 0, 0
    for p in root.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink() and p.stat().st_mtime < cutoff:
                size = p.stat().st_size
                p.unlink()
                n, freed = n + 1, freed + size
        except OSError:
            continue
    return n, freed


_MAINT_LOCK = threading.Lock()


def schedule_maintenance(db: Any, paths: Paths, settings: Settings, every_s: float = 24 * 3600.0) -> bool:
    """Run the daily housekeeping in a background thread when it is due: the retention policy
    (never forced) and, when the disk guard fails, the cache clean. Cheap to call on every
    page run (one ``stat``); returns True when a run was started.

    The due-time lives in ``data/cache/maintenance.last`` so restarts and several browser
    tabs never run it twice at once."""
    stamp = paths.cache / "maintenance.last"
    try:
        if stamp.exists() and time.time() - stamp.stat().st_mtime < every_s:
            return False
    except OSError:
        return False
    if not _MAINT_LOCK.acquire(blocking=False):
        return False
    try:
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(datetime.now(timezone.utc).isoformat())
    except OSError:
        _MAINT_LOCK.release()
        return False

    def work() -> None:
        from core.platform import log
        lg = log.get("health")
        try:
            rep = apply_retention(db, paths, settings)
            if rep.files_removed:
                lg.info("retention removed %d files (%.1f MB)", rep.files_removed, rep.bytes_freed / 2**20)
            if not check_disk(paths, settings).ok:
                n, freed = clean_cache(paths)
                db.log(f"disk nearly full: cleaned {n} cache files ({freed / 2**20:.1f} MB)", "warning")
        except Exception:  # housekeeping must never take the app down
            lg.warning("maintenance failed", exc_info=True)
        finally:
            _MAINT_LOCK.release()

    threading.Thread(target=work, name="msm-maintenance", daemon=True).start()
    return True


def _capture_file(paths: Paths, folder: str, rel: str) -> Path:
    """Capture paths are stored relative to ``data/media/sessions``; accept ones relative to the
    session folder too. Anything outside the sessions root raises ValueError."""
    from core.platform.paths import safe_join
    p = safe_join(paths.sessions, rel)
    if not p.exists() and folder:
        alt = safe_join(paths.sessions, folder, rel)
        if alt.exists():
            return alt
    return p


# --------------------------------------------------------------------------- CLI

def _run_cli(fn: Callable[[list[str]], int], argv: list[str]) -> int:
    try:
        return fn(argv)
    except SystemExit as e:
        return int(e.code or 0) if isinstance(e.code, int) else 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # never a traceback on the terminal
        from core.platform import log
        log.get("health").debug("unexpected", exc_info=True)
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def cli_health(argv: list[str]) -> int:
    """``python -m core health [--min-free-gb X] [--cpu-interval S]`` — JSON on stdout.
    Exit 0 when healthy, 3 when the disk guard would refuse a new session."""
    def run(argv: list[str]) -> int:
        ap = CliParser(prog="health", description="System health of this station as JSON.")
        ap.add_argument("--min-free-gb", type=float, default=None, help="override settings.storage.min_free_gb")
        ap.add_argument("--cpu-interval", type=float, default=0.2, help="seconds to sample CPU load (0..5)")
        ap.add_argument("--no-db", action="store_true", help="use default settings, do not open the database")
        a = ap.parse_args(argv)
        if a.min_free_gb is not None and not (0 <= a.min_free_gb < 1e6):
            ap.error("--min-free-gb must be within 0..1e6")
        if not 0 <= a.cpu_interval <= 5:
            ap.error("--cpu-interval must be within 0..5")
        paths = Paths.from_env()
        settings = Settings()
        if not a.no_db:
            from core.platform.storage import Database
            db = Database()
            try:
                settings = db.load_settings()
            finally:
                db.dispose()
        if a.min_free_gb is not None:
            settings.storage.min_free_gb = a.min_free_gb
        snap = snapshot(paths, settings, cpu_interval=a.cpu_interval)
        json.dump(snap.to_dict(), sys.stdout, indent=2, default=str)
        print()
        return 0 if snap.disk.ok else 3
    return _run_cli(run, argv)


def cli_retention(argv: list[str]) -> int:
    """``python -m core retention [--days N] [--dry-run] [--force]`` — JSON report on stdout."""
    def run(argv: list[str]) -> int:
        ap = CliParser(prog="retention",
                     description="Delete raw captures of finished sessions older than N days "
                                 "(only exported or archived sessions unless --force).")
        ap.add_argument("--days", type=int, default=None, help="override settings.storage.retention_days")
        ap.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
        ap.add_argument("--force", action="store_true", help="also purge sessions never exported or archived")
        a = ap.parse_args(argv)
        if a.days is not None and not (0 <= a.days <= 36500):
            ap.error("--days must be within 0..36500")
        from core.platform.storage import Database
        db = Database()
        try:
            rep = apply_retention(db, Paths.from_env(), db.load_settings(), days=a.days,
                                  force=a.force, dry_run=a.dry_run)
        finally:
            db.dispose()
        json.dump(rep.to_dict(), sys.stdout, indent=2, default=str)
        print()
        return 0
    return _run_cli(run, argv)
