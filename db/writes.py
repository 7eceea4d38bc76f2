"""The writes a detection flow makes: runs, documents, pages and each page's regions.

Every function is one short transaction on an :class:`~sqlalchemy.engine.Engine`, so a task can
retry any of them. Idempotency rests on the schema's unique constraints:

- documents are keyed by sha256, pages by (document, page number): upserts, never duplicates;
- a page's regions belong to one ``page_results`` row per (page, ``params_hash``).
  :func:`write_page_regions` deletes that row (cascading to its regions) and inserts the new one
  with all regions in a single transaction, so readers see the old regions or the new ones,
  never a mix, and a crash leaves the old ones. Two writers of the same page race on the unique
  constraint; the loser retries and ends up replacing (or skipping) the winner's copy.

``params_hash`` (see :func:`params_hash`) is what "same parameters and weights" means.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Engine, Table, delete, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.sql.dml import Insert

from db.errors import sqlstate
from db.models import Base, DocumentStatus, PageStatus, RunStatus
from db.session import connect

__all__ = [
    "REGION_COLUMNS",
    "RegionLike",
    "TimingsLike",
    "finish_run",
    "heartbeat",
    "mark_stale_runs",
    "page_done",
    "params_hash",
    "record_document_error",
    "record_page_error",
    "register_page",
    "run_params_hash",
    "set_document_status",
    "set_document_status_in",
    "set_page_status",
    "start_run",
    "upsert_document",
    "upsert_document_in",
    "upsert_page",
    "write_page_regions",
]


class RegionLike(Protocol):
    """What a region must offer: :class:`craft.types.Region` fits.

    A protocol rather than an import, so the database layer never loads the detector
    (``craft`` pulls in torch).
    """

    @property
    def polygon(self) -> Sequence[tuple[float, float]]:
        """4 corners clockwise from the top-left-most one."""
        ...

    @property
    def center(self) -> tuple[float, float]:
        """Box center (x, y)."""
        ...

    @property
    def size(self) -> tuple[float, float]:
        """(width, height); width is the edge polygon[0] -> polygon[1]."""
        ...

    @property
    def angle(self) -> float:
        """Degrees, clockwise on screen."""
        ...

    @property
    def score(self) -> float:
        """Mean text score in [0, 1]."""
        ...


class TimingsLike(Protocol):
    """Per-stage seconds of one page: :class:`craft.types.StageTimings` fits."""

    @property
    def preprocess(self) -> float:
        """Seconds resizing and normalising."""
        ...

    @property
    def forward(self) -> float:
        """Seconds in the CRAFT network."""
        ...

    @property
    def refine(self) -> float:
        """Seconds in the link refiner."""
        ...

    @property
    def postprocess(self) -> float:
        """Seconds turning score maps into regions."""
        ...


documents: Table = Base.metadata.tables["documents"]
pages: Table = Base.metadata.tables["pages"]
runs: Table = Base.metadata.tables["runs"]
page_results: Table = Base.metadata.tables["page_results"]
regions: Table = Base.metadata.tables["regions"]
document_claims: Table = Base.metadata.tables["document_claims"]

REGION_COLUMNS: tuple[str, ...] = (
    "page_result_id",
    "page_id",
    "run_id",
    "region_index",
    "center_x",
    "center_y",
    "width",
    "height",
    "angle",
    "x0",
    "y0",
    "x1",
    "y1",
    "x2",
    "y2",
    "x3",
    "y3",
    "x_min",
    "y_min",
    "x_max",
    "y_max",
    "score",
)
_MAX_ATTEMPTS = 5
_SCORE_SLACK = 1e-6  # a float32 mean of values in [0, 1] can land an ulp outside
# SQLSTATEs worth retrying: unique violation (a concurrent writer of the same page won),
# serialization failure and deadlock.
_RETRY_SQLSTATES = {"23505", "40001", "40P01"}


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(conn: Connection, table: Table) -> Insert:
    """A dialect INSERT with ``on_conflict_*`` (both backends spell it the same)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


@contextmanager
def _begin(engine: Engine) -> Iterator[Connection]:
    with connect(engine) as conn, conn.begin():
        yield conn


def params_hash(
    params: Mapping[str, Any], *, model_sha256: str, refiner_sha256: str | None = None
) -> str:
    """Stable key for "same parameters and weights": sha256 of their canonical JSON.

    Keys are sorted and separators fixed, so dict order and formatting do not matter; weights
    enter by content (sha256), not by file name.

    Args:
        params: detector parameters, JSON-serialisable (e.g. ``DetectorParams.model_dump()``).
        model_sha256: sha256 of the detector weights.
        refiner_sha256: sha256 of the refiner weights, if a refiner ran.

    Returns:
        64 lower-case hex digits.
    """
    payload = {"params": params, "model_sha256": model_sha256, "refiner_sha256": refiner_sha256}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _ocrflow_version() -> str:
    try:
        return metadata.version("ocrflow")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def start_run(
    engine: Engine,
    *,
    params: Mapping[str, Any],
    model_name: str,
    model_sha256: str,
    device: str,
    precision: str,
    refiner_name: str | None = None,
    refiner_sha256: str | None = None,
    flow_run_id: uuid.UUID | str | None = None,
    ocrflow_version: str | None = None,
) -> int:
    """Record a detection run as ``running`` and return its id.

    ``params`` are stored as JSON and hashed with the weights' sha256 into ``params_hash``.
    """
    values = {
        "params": dict(params),
        "params_hash": params_hash(
            params, model_sha256=model_sha256, refiner_sha256=refiner_sha256
        ),
        "model_name": model_name,
        "model_sha256": model_sha256,
        "refiner_name": refiner_name,
        "refiner_sha256": refiner_sha256,
        "ocrflow_version": ocrflow_version or _ocrflow_version(),
        "device": device,
        "precision": precision,
        "status": RunStatus.RUNNING.value,
        "started_at": _now(),
        "heartbeat_at": _now(),
        "flow_run_id": uuid.UUID(str(flow_run_id)) if flow_run_id is not None else None,
    }
    with _begin(engine) as conn:
        run_id = conn.execute(runs.insert().values(values).returning(runs.c.id)).scalar_one()
    return int(run_id)


def run_params_hash(engine: Engine, run_id: int) -> str:
    """The ``params_hash`` of a run, for :func:`page_done` checks.

    Raises:
        ValueError: no run has id ``run_id``.
    """
    with connect(engine, read_only=True) as conn:
        key = conn.execute(select(runs.c.params_hash).where(runs.c.id == run_id)).scalar()
    if key is None:
        raise ValueError(f"unknown run id '{run_id}'")
    return str(key)


def heartbeat(engine: Engine, run_id: int) -> None:
    """Mark ``run_id`` alive now, so :func:`mark_stale_runs` leaves it alone.

    Call it every few minutes from a long run (e.g. after each document); it is a separate
    transaction so page writes never queue behind a lock on the run's row.
    """
    with _begin(engine) as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
            .values(heartbeat_at=_now())
        )


def finish_run(
    engine: Engine,
    run_id: int,
    status: RunStatus | str = RunStatus.COMPLETED,
    *,
    error: str | None = None,
) -> None:
    """Close a run with a final ``status`` (``completed``, ``failed``, ``cancelled``, ...).

    Raises:
        ValueError: ``status`` is ``running`` or unknown, or no run has id ``run_id``.
    """
    status = RunStatus(status)
    if status is RunStatus.RUNNING:
        raise ValueError(f"cannot finish run {run_id} with status '{status.value}'")
    now = _now()
    with _begin(engine) as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(status=status.value, error=error, finished_at=now, heartbeat_at=now)
        )
        if result.rowcount == 0:
            raise ValueError(f"unknown run id '{run_id}'")
        # A finished run holds no document: its claims go in the same transaction.
        conn.execute(delete(document_claims).where(document_claims.c.run_id == run_id))


def mark_stale_runs(engine: Engine, older_than: timedelta, *, now: datetime | None = None) -> int:
    """Mark ``running`` runs with no heartbeat for ``older_than`` as ``abandoned``.

    A worker that crashed (or lost its machine) cannot close its run; this sweep does, with
    ``finished_at`` set to the last heartbeat, and frees the documents it had claimed (see
    :mod:`db.claims`) in the same transaction. Returns how many runs it marked.

    Every flow run sweeps at start (``OCRFLOW_STALE_AFTER``), so several sweeps can meet: a
    deadlock or serialization failure between them is retried.
    """
    cutoff = (now or _now()) - older_than
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            with _begin(engine) as conn:
                marked = conn.execute(
                    update(runs)
                    .where(runs.c.status == RunStatus.RUNNING.value, runs.c.heartbeat_at < cutoff)
                    .values(
                        status=RunStatus.ABANDONED.value,
                        finished_at=runs.c.heartbeat_at,
                        error=f"abandoned: no heartbeat for {older_than}",
                    )
                    .returning(runs.c.id)
                ).scalars()
                abandoned = [int(run_id) for run_id in marked]
                if abandoned:
                    conn.execute(
                        delete(document_claims).where(document_claims.c.run_id.in_(abandoned))
                    )
                return len(abandoned)
        except OperationalError as error:
            if attempt == _MAX_ATTEMPTS or sqlstate(error) not in _RETRY_SQLSTATES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def upsert_document(
    engine: Engine,
    *,
    sha256: str,
    source_uri: str,
    media_type: str,
    size_bytes: int,
    page_count: int | None = None,
) -> int:
    """Insert the document with this ``sha256`` or refresh where it was seen; return its id.

    Status and error are left alone on an existing document (they belong to processing).
    """
    with _begin(engine) as conn:
        return upsert_document_in(conn, sha256, source_uri, media_type, size_bytes, page_count)


def upsert_document_in(
    conn: Connection,
    sha256: str,
    source_uri: str,
    media_type: str,
    size_bytes: int,
    page_count: int | None = None,
) -> int:
    """:func:`upsert_document` inside the caller's transaction."""
    stmt = _insert(conn, documents).values(
        sha256=sha256.lower(),
        source_uri=source_uri,
        media_type=media_type,
        size_bytes=size_bytes,
        page_count=page_count,
        status=DocumentStatus.PENDING.value,
        first_seen_at=_now(),
    )
    excluded = stmt.excluded  # type: ignore[attr-defined]
    upsert = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
        index_elements=[documents.c.sha256],
        set_={
            "source_uri": excluded.source_uri,
            "media_type": excluded.media_type,
            "size_bytes": excluded.size_bytes,
            "page_count": func.coalesce(excluded.page_count, documents.c.page_count),
        },
    )
    return int(conn.execute(upsert.returning(documents.c.id)).scalar_one())


def upsert_page(
    engine: Engine,
    *,
    document_id: int,
    page_number: int,
    width: int,
    height: int,
    dpi: int | None = None,
) -> int:
    """Insert page ``page_number`` (1-based) of a document, or update its size; return its id.

    If an existing page changes size (e.g. rendered at another dpi), its results are deleted in
    the same transaction: their pixel coordinates no longer apply to the page.
    """
    with _begin(engine) as conn:
        return _upsert_page_in(conn, document_id, page_number, width, height, dpi)


def register_page(
    engine: Engine,
    *,
    document_id: int,
    page_number: int,
    width: int,
    height: int,
    dpi: int | None,
    params_hash: str,
) -> tuple[int, bool]:
    """:func:`upsert_page` and :func:`page_done` in one transaction: the page's id and
    whether it already has a result for ``params_hash`` (a page stream's one call per page)."""
    with _begin(engine) as conn:
        page_id = _upsert_page_in(conn, document_id, page_number, width, height, dpi)
        return page_id, _page_done_in(conn, page_id, params_hash)


def _upsert_page_in(
    conn: Connection, document_id: int, page_number: int, width: int, height: int, dpi: int | None
) -> int:
    stmt = (
        _insert(conn, pages)
        .values(
            document_id=document_id,
            page_number=page_number,
            width=width,
            height=height,
            dpi=dpi,
            status=PageStatus.PENDING.value,
        )
        .on_conflict_do_nothing(index_elements=[pages.c.document_id, pages.c.page_number])  # type: ignore[attr-defined]
        .returning(pages.c.id)
    )
    inserted = conn.execute(stmt).scalar_one_or_none()
    if inserted is not None:
        return int(inserted)
    row = conn.execute(
        select(pages.c.id, pages.c.width, pages.c.height, pages.c.dpi)
        .where(pages.c.document_id == document_id, pages.c.page_number == page_number)
        .with_for_update()
    ).one()
    if (row.width, row.height, row.dpi) != (width, height, dpi):
        conn.execute(delete(page_results).where(page_results.c.page_id == row.id))
        conn.execute(
            update(pages)
            .where(pages.c.id == row.id)
            .values(width=width, height=height, dpi=dpi, status=PageStatus.PENDING.value)
        )
    return int(row.id)


def set_document_status(
    engine: Engine,
    document_id: int,
    status: DocumentStatus | str,
    *,
    error: str | None = None,
) -> None:
    """Set a document's status (and error); a final status also stamps ``last_processed_at``."""
    with _begin(engine) as conn:
        set_document_status_in(conn, document_id, status, error=error)


def set_document_status_in(
    conn: Connection, document_id: int, status: DocumentStatus | str, *, error: str | None = None
) -> None:
    """:func:`set_document_status` inside the caller's transaction."""
    status = DocumentStatus(status)
    values: dict[str, Any] = {"status": status.value, "error": error}
    if status in (DocumentStatus.DONE, DocumentStatus.PARTIAL, DocumentStatus.FAILED):
        values["last_processed_at"] = _now()
    _update_one_in(conn, documents, document_id, values)


def record_document_error(engine: Engine, document_id: int, error: str) -> None:
    """Mark a document ``failed`` with ``error`` (e.g. it could not be decoded)."""
    set_document_status(engine, document_id, DocumentStatus.FAILED, error=error)


def set_page_status(
    engine: Engine, page_id: int, status: PageStatus | str, *, error: str | None = None
) -> None:
    """Set a page's status (and error)."""
    status = PageStatus(status)
    _update_one(engine, pages, page_id, {"status": status.value, "error": error})


def record_page_error(engine: Engine, page_id: int, error: str) -> None:
    """Mark a page ``failed`` with ``error``; its previous regions, if any, stay."""
    set_page_status(engine, page_id, PageStatus.FAILED, error=error)


def _update_one(engine: Engine, table: Table, row_id: int, values: dict[str, Any]) -> None:
    with _begin(engine) as conn:
        _update_one_in(conn, table, row_id, values)


def _update_one_in(conn: Connection, table: Table, row_id: int, values: dict[str, Any]) -> None:
    result = conn.execute(update(table).where(table.c.id == row_id).values(values))
    if result.rowcount == 0:
        raise ValueError(f"unknown {table.name} id '{row_id}'")


def page_done(engine: Engine, *, page_id: int, params_hash: str) -> bool:
    """Whether this page already has a result for ``params_hash`` (so it can be skipped)."""
    with connect(engine, read_only=True) as conn:
        return _page_done_in(conn, page_id, params_hash)


def _page_done_in(conn: Connection, page_id: int, params_hash: str) -> bool:
    query = select(
        exists().where(page_results.c.page_id == page_id, page_results.c.params_hash == params_hash)
    )
    return bool(conn.execute(query).scalar())


def write_page_regions(
    engine: Engine,
    *,
    run_id: int,
    page_id: int,
    regions: Sequence[RegionLike],
    timings: TimingsLike | None = None,
    on_existing: Literal["replace", "skip"] = "replace",
    orientation: int | None = None,
) -> bool:
    """Store one page's regions for a run, atomically and at most once per parameter set.

    In one transaction: drop any result this page has for the run's ``params_hash`` (its
    regions cascade), insert the new result with its stage timings, bulk-insert the regions
    (COPY on PostgreSQL, executemany on SQLite) and mark the page ``done``.

    Args:
        engine: from :func:`db.session.open_database`.
        run_id: the writing run, from :func:`start_run`; its ``params_hash`` keys the result.
        page_id: from :func:`upsert_page`.
        regions: the detector's regions, stored in this order as ``region_index`` 0, 1, ...
        timings: per-stage seconds for this page.
        on_existing: ``"replace"`` an existing result for the same page and parameters, or
            ``"skip"`` writing when one exists.
        orientation: the page's orientation as the detector found it (``PageResult.orientation``
            with ``detect_orientation``), stored in ``pages.orientation``; None leaves it as is.

    Returns:
        True if the regions were written, False if skipped.

    Raises:
        ValueError: unknown ``run_id``, ``on_existing`` or ``orientation``.
    """
    if on_existing not in ("replace", "skip"):
        raise ValueError(f"unknown on_existing '{on_existing}': expected 'replace' or 'skip'")
    if orientation not in (None, 0, 90, 180, 270):
        raise ValueError(f"unknown orientation '{orientation}': expected 0, 90, 180 or 270")
    for attempt in range(1, _MAX_ATTEMPTS + 1):
        try:
            with _begin(engine) as conn:
                return _write_page(
                    conn, run_id, page_id, regions, timings, on_existing, orientation
                )
        except (IntegrityError, OperationalError) as error:
            if attempt == _MAX_ATTEMPTS or sqlstate(error) not in _RETRY_SQLSTATES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _write_page(
    conn: Connection,
    run_id: int,
    page_id: int,
    regions: Sequence[RegionLike],
    timings: TimingsLike | None,
    on_existing: str,
    orientation: int | None = None,
) -> bool:
    key = conn.execute(select(runs.c.params_hash).where(runs.c.id == run_id)).scalar()
    if key is None:
        raise ValueError(f"unknown run id '{run_id}'")
    result = {
        "page_id": page_id,
        "run_id": run_id,
        "params_hash": key,
        "preprocess_seconds": float(timings.preprocess) if timings else 0.0,
        "forward_seconds": float(timings.forward) if timings else 0.0,
        "refine_seconds": float(timings.refine) if timings else 0.0,
        "postprocess_seconds": float(timings.postprocess) if timings else 0.0,
        "created_at": _now(),
    }
    insert = _insert(conn, page_results).values(result)
    if on_existing == "skip":
        insert = insert.on_conflict_do_nothing(  # type: ignore[attr-defined]
            index_elements=[page_results.c.page_id, page_results.c.params_hash]
        )
    else:
        conn.execute(
            delete(page_results).where(
                page_results.c.page_id == page_id, page_results.c.params_hash == key
            )
        )
    result_id = conn.execute(insert.returning(page_results.c.id)).scalar()
    if result_id is None:  # skip: a result exists
        return False
    rows = _region_rows(result_id, page_id, run_id, regions)
    if rows:
        _bulk_insert_regions(conn, rows)
    done: dict[str, Any] = {"status": PageStatus.DONE.value, "error": None}
    if orientation is not None:
        done["orientation"] = orientation
    conn.execute(update(pages).where(pages.c.id == page_id).values(**done))
    return True


def _region_rows(
    result_id: int, page_id: int, run_id: int, regions: Sequence[RegionLike]
) -> list[tuple[Any, ...]]:
    """Flatten regions to rows in :data:`REGION_COLUMNS` order (plain floats: no numpy)."""
    rows = []
    for index, region in enumerate(regions):
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = region.polygon
        x0, y0, x1, y1 = float(x0), float(y0), float(x1), float(y1)
        x2, y2, x3, y3 = float(x2), float(y2), float(x3), float(y3)
        cx, cy = region.center
        w, h = region.size
        rows.append(
            (
                result_id,
                page_id,
                run_id,
                index,
                float(cx),
                float(cy),
                float(w),
                float(h),
                float(region.angle),
                x0,
                y0,
                x1,
                y1,
                x2,
                y2,
                x3,
                y3,
                min(x0, x1, x2, x3),
                min(y0, y1, y2, y3),
                max(x0, x1, x2, x3),
                max(y0, y1, y2, y3),
                _score(float(region.score)),
            )
        )
    return rows


def _score(value: float) -> float:
    """Absorb float32 rounding just outside [0, 1]; anything further off fails the CHECK."""
    if 0.0 <= value <= 1.0:
        return value
    if -_SCORE_SLACK <= value < 0.0:
        return 0.0
    if 1.0 < value <= 1.0 + _SCORE_SLACK:
        return 1.0
    return value


_COLUMN_LIST = ", ".join(REGION_COLUMNS)
# Binary COPY skips the server's text parsing of 18 floats per row (about 2x faster); it needs
# exact types, hence the int()/float() in _region_rows.
_COPY_TYPES = ["int4"] * 4 + ["float8"] * (len(REGION_COLUMNS) - 4)


def _bulk_insert_regions(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Binary COPY on PostgreSQL (several times faster than multi-row INSERT); executemany on
    SQLite (its driver loops in C over one prepared statement)."""
    driver: Any = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        statement = f"COPY regions ({_COLUMN_LIST}) FROM STDIN (FORMAT BINARY)"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as error:  # wrap like SQLAlchemy does, so callers see one error type
            raise DBAPIError.instance(statement, None, error, dbapi_error) from error
    else:
        marks = ", ".join("?" * len(REGION_COLUMNS))
        conn.exec_driver_sql(f"INSERT INTO regions ({_COLUMN_LIST}) VALUES ({marks})", rows)
