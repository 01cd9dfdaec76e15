"""The database: SQLAlchemy 2.0 models and the engine.

SQLite under ``data/db/msm.sqlite3`` by default (WAL, so the counting worker writes while
pages read); ``DATABASE_URL`` points it at PostgreSQL for several stations. Times are
stored in UTC (timezone-aware); the UI converts to the plant's zone (:mod:`core.platform.i18n`).

Example:
    >>> db = Database("sqlite://")          # in-memory, for a quick look
    >>> with db.session() as s:
    ...     _ = s.add(SessionRow(id="a-1", name="Batch-A", target=100, folder="x"))
    >>> with db.session() as s:
    ...     s.get(SessionRow, "a-1").target
    100
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker
from sqlalchemy.types import TypeDecorator

from core.platform.paths import Paths
from core.platform.settings import Settings


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class TZ(TypeDecorator):
    """Aware-UTC datetimes on SQLite and PostgreSQL alike (SQLite drops the zone)."""
    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use UTC-aware times")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: Optional[datetime], dialect: Any) -> Optional[datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class SessionRow(Base):
    """A counting session ("Batch-A", target 100)."""
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)      # safe id, also the folder name
    name: Mapped[str] = mapped_column(String(200))                      # free text as typed
    target: Mapped[int] = mapped_column(Integer)
    count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused | finished
    source: Mapped[str] = mapped_column(String(500), default="")
    station: Mapped[str] = mapped_column(String(100), default="")
    folder: Mapped[str] = mapped_column(String(300))                   # relative to data/media/sessions
    started_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    finished_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    finish_alert: Mapped[str] = mapped_column(String(16), default="")  # "" | ok | under | over
    source_position: Mapped[int] = mapped_column(Integer, default=0)   # last frame processed (resume)
    exported_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    archived_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100), default="")
    events: Mapped[list["CountEventRow"]] = relationship(back_populates="session", cascade="all, delete-orphan",
                                                         order_by="CountEventRow.id")
    captures: Mapped[list["CaptureRow"]] = relationship(back_populates="session", cascade="all, delete-orphan",
                                                        order_by="CaptureRow.index")


class CountEventRow(Base):
    """One change of a session's count: an automatic count or a manual ±1 correction."""
    __tablename__ = "count_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))            # auto | manual
    delta: Mapped[int] = mapped_column(Integer, default=1)
    count_after: Mapped[int] = mapped_column(Integer)
    frame: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    video_t: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    wall_time: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    confidence: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(String(100), default="")
    capture_id: Mapped[Optional[int]] = mapped_column(ForeignKey("captures.id"), nullable=True)
    session: Mapped[SessionRow] = relationship(back_populates="events")
    __table_args__ = (UniqueConstraint("session_id", "kind", "frame", name="uq_event_frame"),)


class CaptureRow(Base):
    """A captured frame of one counted sheet (clean image + annotated copy)."""
    __tablename__ = "captures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)                # sheet number in the session
    path: Mapped[str] = mapped_column(String(500))            # relative to data/media/sessions
    annotated_path: Mapped[str] = mapped_column(String(500), default="")
    width: Mapped[int] = mapped_column(Integer, default=0)
    height: Mapped[int] = mapped_column(Integer, default=0)
    frame: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    review: Mapped[str] = mapped_column(String(16), default="pending")   # pending | approved | rejected
    reviewed_by: Mapped[str] = mapped_column(String(100), default="")
    reviewed_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    analysed_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    session: Mapped[SessionRow] = relationship(back_populates="captures")
    defects: Mapped[list["DefectRow"]] = relationship(back_populates="capture", cascade="all, delete-orphan")
    measurements: Mapped[list["MeasurementRow"]] = relationship(back_populates="capture",
                                                                cascade="all, delete-orphan")
    __table_args__ = (UniqueConstraint("session_id", "index", name="uq_capture_index"),)


class DefectRow(Base):
    __tablename__ = "defects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(50))
    score: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    mask_path: Mapped[str] = mapped_column(String(500), default="")
    crop_path: Mapped[str] = mapped_column(String(500), default="")
    area_px: Mapped[float] = mapped_column(Float, default=0.0)
    area_mm2: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    segmenter: Mapped[str] = mapped_column(String(50), default="")
    model_version: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    capture: Mapped[CaptureRow] = relationship(back_populates="defects")


class MeasurementRow(Base):
    __tablename__ = "measurements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    capture_id: Mapped[int] = mapped_column(ForeignKey("captures.id", ondelete="CASCADE"), index=True)
    length_mm: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    width_mm: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    length_px: Mapped[float] = mapped_column(Float)
    width_px: Mapped[float] = mapped_column(Float)
    angle_deg: Mapped[float] = mapped_column(Float)
    mm_per_px: Mapped[float] = mapped_column(Float, default=0.0)
    stack_height_mm: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    parallax_compensated: Mapped[bool] = mapped_column(Boolean, default=False)
    box_json: Mapped[str] = mapped_column(Text, default="")     # rotated-rectangle corners, px
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    capture: Mapped[CaptureRow] = relationship(back_populates="measurements")


class CountingCycleRow(Base):
    """One counting decision (count or not) with its cues: teach mode's raw material.
    ``label`` is the confirmed truth (1 = a sheet was laid, 0 = none; None = unconfirmed),
    from an operator's ±1 correction or an engineer's confirmation."""
    __tablename__ = "counting_cycles"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True, index=True)
    frame: Mapped[int] = mapped_column(Integer, default=0)
    video_t: Mapped[float] = mapped_column(Float, default=0.0)
    wall_time: Mapped[datetime] = mapped_column(TZ, default=utcnow, index=True)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    probability: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str] = mapped_column(Text, default="")
    cues: Mapped[Any] = mapped_column(JSON)
    label: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    label_source: Mapped[str] = mapped_column(String(16), default="")     # operator | engineer
    labelled_at: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)


class SettingRow(Base):
    """One settings group (e.g. ``counting``) as JSON."""
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class SettingAuditRow(Base):
    __tablename__ = "settings_audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(100))              # group.field
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    who: Mapped[str] = mapped_column(String(100), default="")
    at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class CalibrationRow(Base):
    __tablename__ = "calibrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    method: Mapped[str] = mapped_column(String(30))            # manual | line | checkerboard | plane
    mm_per_px: Mapped[float] = mapped_column(Float)
    details: Mapped[Any] = mapped_column(JSON, default=dict)   # line endpoints, camera matrix, homography…
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(100), default="")


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    task: Mapped[str] = mapped_column(String(30))              # sheet | defect | sam2
    version: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(String(500))             # relative to weights/ when inside it
    sha256: Mapped[str] = mapped_column(String(64))
    metrics: Mapped[Any] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(20), default="trained")   # trained | uploaded | bundled
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    __table_args__ = (UniqueConstraint("task", "version", name="uq_model_task_version"),)


class JobRow(Base):
    """A background job (training, batch analysis, export) that outlives a page reload."""
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(16), default="queued")   # queued|running|done|failed|cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0)          # 0..1
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[Any] = mapped_column(JSON, default=dict)
    result: Mapped[Any] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class UserLogRow(Base):
    """Operational log lines shown in the UI (info / warning / error)."""
    __tablename__ = "app_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    level: Mapped[str] = mapped_column(String(10), default="info")
    message: Mapped[str] = mapped_column(Text)
    session_id: Mapped[Optional[str]] = mapped_column(String(64), nullable=True, index=True)
    at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


class CredentialRow(Base):
    """A hashed secret (the engineer PIN) and its failed-attempt state for rate limiting."""
    __tablename__ = "credentials"
    name: Mapped[str] = mapped_column(String(50), primary_key=True)     # e.g. "engineer"
    scheme: Mapped[str] = mapped_column(String(200))                     # e.g. scrypt$n=16384$r=8$p=1
    salt: Mapped[str] = mapped_column(String(64))                        # hex
    hash: Mapped[str] = mapped_column(String(256))                       # hex
    source: Mapped[str] = mapped_column(String(30), default="")         # env | secrets | ui
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(TZ, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(TZ, default=utcnow)


def default_url(paths: Paths | None = None) -> str:
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    paths = paths or Paths.from_env()
    paths.db_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{paths.db_dir / 'msm.sqlite3'}"


class Database:
    """Engine + session factory. Creates the tables on first use."""

    def __init__(self, url: str | None = None):
        self.url = url or default_url()
        kwargs: dict[str, Any] = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if self.url in ("sqlite://", "sqlite:///:memory:"):
                from sqlalchemy.pool import StaticPool  # one shared in-memory DB across threads
                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(self.url, **kwargs)
        if self.url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _rec: Any) -> None:  # WAL: readers never block the writer
                cur = dbapi_conn.cursor()
                if self.url not in ("sqlite://", "sqlite:///:memory:"):
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        Base.metadata.create_all(self.engine)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: commits on success, rolls back on error."""
        s = self._factory()
        try:
            yield s
            s.commit()
        except Exception:
            s.rollback()
            raise
        finally:
            s.close()

    def dispose(self) -> None:
        self.engine.dispose()

    # --- settings persistence (one row per group, audit per field) -------------------
    def load_settings(self) -> Settings:
        with self.session() as s:
            rows = {r.key: r.value for r in s.scalars(select(SettingRow))}
        return Settings.from_dict(rows)

    def save_settings(self, new: Settings, who: str = "") -> list[str]:
        """Validate and store; returns the ``group.field`` keys that changed.
        Raises ValueError with every problem when the settings are invalid."""
        problems = new.validate()
        if problems:
            raise ValueError("; ".join(problems))
        old = self.load_settings().to_dict()
        data = new.to_dict()
        changed: list[str] = []
        with self.session() as s:
            for group, values in data.items():
                for k, v in values.items():
                    if old.get(group, {}).get(k) != v:
                        changed.append(f"{group}.{k}")
                        s.add(SettingAuditRow(key=f"{group}.{k}", old=_jsonable(old.get(group, {}).get(k)),
                                              new=_jsonable(v), who=who))
                row = s.get(SettingRow, group)
                if row is None:
                    s.add(SettingRow(key=group, value=values, updated_by=who))
                elif row.value != values:
                    row.value, row.updated_at, row.updated_by = values, utcnow(), who
        return changed

    def log(self, message: str, level: str = "info", session_id: str | None = None) -> None:
        with self.session() as s:
            s.add(UserLogRow(message=message, level=level, session_id=session_id))


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))
