"""The results schema: documents, pages, detection runs, per-page results and rotated regions.

The schema is part of the product (analysts query it in plain SQL), so names say what they hold
and invariants live in constraints, not only in :mod:`db.writes`:

- ``page_results`` has one row per (page, parameter set): unique on ``(page_id, params_hash)``,
  so the same page detected again with the same parameters and weights can never hold two copies.
- ``regions`` hang off a page result (``ON DELETE CASCADE``), keyed by
  ``(page_result_id, region_index)``; replacing a page's regions is delete + insert in one
  transaction.
- Denormalised keys (``regions.page_id``/``run_id``, ``page_results.params_hash``) are pinned by
  composite foreign keys, so they cannot disagree with the row they copy.
- ``document_claims`` holds at most one claim per (document, parameter set): the run processing
  it right now (see :mod:`db.claims`).
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "Document",
    "DocumentClaim",
    "DocumentStatus",
    "Page",
    "PageResult",
    "PageStatus",
    "Region",
    "Run",
    "RunStatus",
    "UTCDateTime",
]

# Deterministic constraint names, so migrations can drop/alter them on every backend
# (SQLite batch mode needs names; see alembic's docs/build/naming.rst).
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps on both backends.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC text and come back tagged UTC. Naive inputs are rejected: they are always a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC (naive on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime '{value.isoformat()}': pass a timezone-aware one")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Tag SQLite's naive values as UTC; convert PostgreSQL's to UTC."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")


class DocumentStatus(enum.StrEnum):
    """Processing state of a document: ``done`` means every selected page is stored,
    ``partial`` that some pages failed (see ``pages.error``), ``failed`` that none succeeded."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    PARTIAL = "partial"
    FAILED = "failed"


class PageStatus(enum.StrEnum):
    """Processing state of a page."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class RunStatus(enum.StrEnum):
    """State of a detection run; ``abandoned`` marks a run whose heartbeat stopped."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"


def _in(column: str, values: type[enum.StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with the naming convention and the project's column types."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        uuid.UUID: Uuid(),
    }


class Document(Base):
    """One input file, identified by the sha256 of its bytes (the same file is one document)."""

    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
        CheckConstraint("size_bytes >= 0", name="size_bytes_non_negative"),
        CheckConstraint("page_count IS NULL OR page_count >= 0", name="page_count_non_negative"),
        CheckConstraint(_in("status", DocumentStatus), name="status"),
        {"comment": "Input files; one row per distinct content (sha256)."},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(
        String(64), unique=True, comment="Lower-case hex sha256 of the file's bytes."
    )
    source_uri: Mapped[str] = mapped_column(
        Text, comment="Path or URI the file was last read from."
    )
    media_type: Mapped[str] = mapped_column(String(255), comment="e.g. application/pdf")
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    page_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text, comment="Why the last processing failed.")
    first_seen_at: Mapped[datetime] = mapped_column(default=_utcnow)
    last_processed_at: Mapped[datetime | None]

    pages: Mapped[list[Page]] = relationship(back_populates="document", lazy="raise")


class Page(Base):
    """One page (or image) of a document, at the size detection saw it."""

    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("document_id", "page_number"),
        CheckConstraint("page_number >= 1", name="page_number_from_1"),
        CheckConstraint("width > 0 AND height > 0", name="size_positive"),
        CheckConstraint("dpi IS NULL OR dpi > 0", name="dpi_positive"),
        CheckConstraint(_in("status", PageStatus), name="status"),
        {"comment": "Pages of documents, 1-based; width/height in pixels."},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"))
    page_number: Mapped[int] = mapped_column(comment="1-based.")
    width: Mapped[int] = mapped_column(comment="Pixels.")
    height: Mapped[int] = mapped_column(comment="Pixels.")
    dpi: Mapped[int | None] = mapped_column(comment="Render resolution; NULL for images.")
    orientation: Mapped[int | None] = mapped_column(
        SmallInteger,
        comment="Clockwise degrees the content was turned by (0, 90, 180, 270); "
        "NULL: not detected.",
    )
    status: Mapped[str] = mapped_column(String(16), default=PageStatus.PENDING.value)
    error: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="pages", lazy="raise")


class Run(Base):
    """One detection run: the parameters and weights used, where and when it ran."""

    __tablename__ = "runs"
    __table_args__ = (
        # Target of page_results' composite foreign key: a result's params_hash is its run's.
        UniqueConstraint("id", "params_hash"),
        CheckConstraint(_in("status", RunStatus), name="status"),
        CheckConstraint(
            "(status = 'running' AND finished_at IS NULL)"
            " OR (status <> 'running' AND finished_at IS NOT NULL)",
            name="finished_iff_not_running",
        ),
        {"comment": "Detection runs: parameters, weights, device, timing and status."},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    params_hash: Mapped[str] = mapped_column(
        String(64),
        index=True,
        comment="sha256 of the canonical JSON of params + weight hashes; see db.writes.",
    )
    params: Mapped[dict[str, Any]] = mapped_column(comment="Detector parameters as JSON.")
    model_name: Mapped[str] = mapped_column(String(255))
    model_sha256: Mapped[str] = mapped_column(String(64))
    refiner_name: Mapped[str | None] = mapped_column(String(255))
    refiner_sha256: Mapped[str | None] = mapped_column(String(64))
    ocrflow_version: Mapped[str] = mapped_column(String(64))
    device: Mapped[str] = mapped_column(String(64), comment="e.g. cpu, cuda:0")
    precision: Mapped[str] = mapped_column(String(16), comment="e.g. fp32, fp16")
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.RUNNING.value)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=_utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(
        default=_utcnow, comment="Last sign of life; stale running runs become abandoned."
    )
    finished_at: Mapped[datetime | None]
    flow_run_id: Mapped[uuid.UUID | None] = mapped_column(comment="Prefect flow-run id.")


class PageResult(Base):
    """Detection result of one page under one parameter set, with its per-stage timings."""

    __tablename__ = "page_results"
    __table_args__ = (
        # The idempotency key: one result per page and parameter set, ever.
        UniqueConstraint("page_id", "params_hash"),
        # Target of regions' composite foreign key.
        UniqueConstraint("id", "page_id", "run_id"),
        ForeignKeyConstraint(
            ["run_id", "params_hash"], ["runs.id", "runs.params_hash"], ondelete="CASCADE"
        ),
        Index(None, "run_id"),
        CheckConstraint(
            "preprocess_seconds >= 0 AND forward_seconds >= 0"
            " AND refine_seconds >= 0 AND postprocess_seconds >= 0",
            name="timings_non_negative",
        ),
        {"comment": "One row per (page, parameter set): the run that wrote it and stage timings."},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(ForeignKey("pages.id", ondelete="CASCADE"))
    run_id: Mapped[int]
    params_hash: Mapped[str] = mapped_column(String(64))
    preprocess_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    forward_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    refine_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    postprocess_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(default=_utcnow)


class Region(Base):
    """One rotated text region in page pixels (image y points down)."""

    __tablename__ = "regions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["page_result_id", "page_id", "run_id"],
            ["page_results.id", "page_results.page_id", "page_results.run_id"],
            ondelete="CASCADE",
        ),
        Index(None, "page_id", "y_min", "x_min"),
        # No index on run_id alone: run-level queries go through page_results, and SQLite's
        # planner (without ANALYZE) would pick it for cascade lookups, scanning a whole run.
        Index(None, "score"),
        CheckConstraint("region_index >= 0", name="region_index_non_negative"),
        CheckConstraint("score >= 0 AND score <= 1", name="score_0_1"),
        CheckConstraint("width >= 0 AND height >= 0", name="size_non_negative"),
        CheckConstraint("x_min <= x_max AND y_min <= y_max", name="bounds_ordered"),
        CheckConstraint(
            "text_confidence >= 0 AND text_confidence <= 1", name="text_confidence_0_1"
        ),
        {"comment": "Rotated text regions; x0,y0..x3,y3 clockwise from the top-left-most corner."},
    )

    # The key is (page_result_id, region_index): no surrogate id, whose sequence and extra
    # index every bulk insert would pay for, and which nothing needs.
    page_result_id: Mapped[int] = mapped_column(primary_key=True)
    region_index: Mapped[int] = mapped_column(
        primary_key=True, comment="0-based order within the page result."
    )
    page_id: Mapped[int]
    run_id: Mapped[int]
    center_x: Mapped[float] = mapped_column(Float)
    center_y: Mapped[float] = mapped_column(Float)
    width: Mapped[float] = mapped_column(Float, comment="Length of edge (x0,y0)->(x1,y1).")
    height: Mapped[float] = mapped_column(Float)
    angle: Mapped[float] = mapped_column(
        Float, comment="Degrees, clockwise on screen, in [-90, 90)."
    )
    x0: Mapped[float] = mapped_column(Float, comment="Top-left-most corner (smallest x + y).")
    y0: Mapped[float] = mapped_column(Float)
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    x3: Mapped[float] = mapped_column(Float)
    y3: Mapped[float] = mapped_column(Float)
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    score: Mapped[float] = mapped_column(Float, comment="Mean text score in [0, 1].")
    # Recognition (db.recognition_writes). Full-text search lives outside the models, per
    # backend (a generated tsvector on PostgreSQL, FTS5 on SQLite): see db.search.
    text: Mapped[str | None] = mapped_column(
        Text, comment="Text read in the region; NULL: not recognised, '': nothing read."
    )
    text_confidence: Mapped[float | None] = mapped_column(
        Float, comment="Recognizer's mean word confidence in [0, 1]."
    )


class DocumentClaim(Base):
    """The run processing a document under a parameter set right now (see :mod:`db.claims`).

    The primary key makes the claim exclusive: one live holder per (document, parameter set).
    A row lives while its run works on the document; a run that finishes (or is swept as
    abandoned) gives up its claims, and a claim whose run is no longer alive can be taken over.
    """

    __tablename__ = "document_claims"
    __table_args__ = (
        ForeignKeyConstraint(
            ["run_id", "params_hash"], ["runs.id", "runs.params_hash"], ondelete="CASCADE"
        ),
        Index(None, "run_id"),
        CheckConstraint("pid IS NULL OR pid > 0", name="pid_positive"),
        {"comment": "Documents being processed now: one run per (document, parameter set, pages)."},
    )

    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True
    )
    params_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    pages: Mapped[str] = mapped_column(
        String(32),
        primary_key=True,
        comment="Page range claimed: 'all', or 'first-last' for a page-range child run.",
    )
    run_id: Mapped[int] = mapped_column(comment="The holder; its params_hash is the claim's.")
    claimed_at: Mapped[datetime] = mapped_column(default=_utcnow)
    host: Mapped[str | None] = mapped_column(
        String(255), comment="Host name of the holder's process."
    )
    pid: Mapped[int | None] = mapped_column(
        comment="Process id of the holder on that host (a gone process frees the claim)."
    )
