"""Job and review records in a SQL database (SQLite by default, any SQLAlchemy URL works).

Several processes use the store at once (the server and its workers), each with its own `JobStore`;
every method is one short transaction.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, Integer, String, Text, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

#: Job states; a job moves queued -> running -> done | failed.
STATES = ("queued", "running", "done", "failed")

#: How often a job interrupted by a server stop is run again before it is marked failed.
MAX_ATTEMPTS = 2


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the service tables."""


class Job(Base):
    """One uploaded study and its segmentation run."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    stage: Mapped[str] = mapped_column(String(100), default="")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str] = mapped_column(Text, default="")
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Review(Base):
    """One saved correction of one task of a job: timing and agreement between AI and accepted."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    task: Mapped[str] = mapped_column(String(32))
    review_seconds: Mapped[float] = mapped_column(Float)
    correction_seconds: Mapped[float] = mapped_column(Float)
    case_dice: Mapped[float] = mapped_column(Float)
    lesions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL mode and a busy timeout so several processes can write."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def job_dict(job: Job) -> dict[str, Any]:
    """A job as plain data (what the API returns)."""
    return {
        "id": job.id,
        "label": job.label,
        "status": job.status,
        "stage": job.stage,
        "progress": job.progress,
        "error": job.error,
        "tasks": job.request.get("tasks"),
        "attempts": job.attempts,
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


class JobStore:
    """Jobs and reviews in the database at `url` (tables created when missing).

    Example:
        >>> store = JobStore("sqlite://")
        >>> job = store.create("study 1", {"tasks": ["wmh"]})
        >>> store.get(job["id"])["status"]
        'queued'
    """

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        Base.metadata.create_all(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    def create(self, label: str, request: dict[str, Any]) -> dict[str, Any]:
        """Record a new queued job; `request` holds what the worker needs (tasks, overrides)."""
        job = Job(id=uuid.uuid4().hex, label=label[:200], request=json.loads(json.dumps(request)))
        with self._session() as session:
            session.add(job)
            session.flush()
            return job_dict(job)

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job, or None when there is no such id."""
        with self._session() as session:
            job = session.get(Job, job_id)
            return job_dict(job) if job else None

    def request(self, job_id: str) -> dict[str, Any]:
        """What the job was asked to do (tasks, overrides)."""
        with self._session() as session:
            job = session.get(Job, job_id)
            return dict(job.request) if job else {}

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, newest first."""
        with self._session() as session:
            return [job_dict(j) for j in session.scalars(select(Job).order_by(Job.created_at.desc()))]

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields of a job (status, stage, progress, error, attempts); stamps the times."""
        bad = set(fields) - {"status", "stage", "progress", "error", "attempts"}
        if bad:
            raise ValueError(f"JobStore.update: cannot set {sorted(bad)}")
        if "status" in fields and fields["status"] not in STATES:
            raise ValueError(f"JobStore.update: status {fields['status']!r}; expected one of {STATES}")
        with self._session() as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            for key, value in fields.items():
                setattr(job, key, value)
            job.updated_at = _now()
            if fields.get("status") in ("done", "failed"):
                job.finished_at = job.updated_at

    def recover(self) -> list[str]:
        """After a restart: re-queue jobs that were running (or fail them after MAX_ATTEMPTS tries).

        Returns:
            The ids of every queued job, oldest first (to hand to the worker pool again).
        """
        with self._session() as session:
            for job in session.scalars(select(Job).where(Job.status == "running")):
                job.updated_at = _now()
                if job.attempts >= MAX_ATTEMPTS:
                    job.status, job.finished_at = "failed", job.updated_at
                    job.error = f"interrupted by a server stop {job.attempts} times; upload the study again"
                else:
                    job.status, job.stage, job.progress = "queued", "resumed after a server restart", 0.0
            queued = session.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at))
            return list(queued)

    def add_review(self, job_id: str, task: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store one saved correction (timings, case Dice, per-lesion rows) and return it."""
        review = Review(
            job_id=job_id,
            task=task,
            review_seconds=float(record["review_seconds"]),
            correction_seconds=float(record["correction_seconds"]),
            case_dice=float(record["case_dice"]),
            lesions=json.loads(json.dumps(record["lesions"])),
        )
        with self._session() as session:
            session.add(review)
            session.flush()
            return _review_dict(review)

    def reviews(self, job_id: str | None = None) -> list[dict[str, Any]]:
        """Saved corrections, oldest first, of one job or of all."""
        query = select(Review).order_by(Review.id)
        if job_id is not None:
            query = query.where(Review.job_id == job_id)
        with self._session() as session:
            return [_review_dict(r) for r in session.scalars(query)]


def _review_dict(review: Review) -> dict[str, Any]:
    return {
        "id": review.id,
        "job_id": review.job_id,
        "task": review.task,
        "review_seconds": review.review_seconds,
        "correction_seconds": review.correction_seconds,
        "case_dice": review.case_dice,
        "lesions": review.lesions,
        "created_at": review.created_at.isoformat(),
    }
