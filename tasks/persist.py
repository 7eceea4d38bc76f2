"""Database tasks: thin wrappers over ``db.writes``, retried because databases blip.

Every write is idempotent (upserts, and one result per page and parameter set), so a retry
or a duplicated task can never double a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from craft import ModelInfo, PageResult
from db import claims, page_state, writes
from db.models import DocumentStatus, RunStatus
from ingest import Document, Page
from tasks.names import document_label, task_run_namer

__all__ = [
    "begin_run",
    "claim_document",
    "document_done",
    "end_run",
    "pages_to_reread",
    "record_unreadable_document",
    "register_page",
    "release_document",
    "set_document_outcome",
    "store_page_error",
    "store_page_regions",
]

P = ParamSpec("P")
R = TypeVar("R")


def _db_task(
    name: str, run_name: Callable[..., str] | None = None
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """A task retried with backoff: connections drop and servers restart; writes are idempotent."""
    return task(
        name=name,
        task_run_name=run_name,
        retries=3,
        retry_delay_seconds=[1, 5, 15],
        cache_policy=NO_CACHE,
    )


@_db_task("begin-run")
def begin_run(
    engine: Engine, params: dict, info: ModelInfo, flow_run_id: str | None
) -> tuple[int, str]:
    """Record the run as ``running``; return its id and parameter hash."""
    run_id = writes.start_run(
        engine,
        params=params,
        model_name=info.model,
        model_sha256=info.model_sha256,
        refiner_name=info.refiner,
        refiner_sha256=info.refiner_sha256,
        device=info.device,
        precision=info.precision,
        flow_run_id=flow_run_id,
    )
    return run_id, writes.run_params_hash(engine, run_id)


@_db_task("end-run")
def end_run(engine: Engine, run_id: int, status: RunStatus, error: str | None = None) -> None:
    """Close the run with its final status."""
    writes.finish_run(engine, run_id, status, error=error)


@_db_task("find-pages-to-reread")
def pages_to_reread(engine: Engine, run_id: int) -> dict[int, int]:
    """Pages (id -> document id) with regions for the run's parameters but no text at all.

    A run killed between a page's region write and its text write leaves such pages; with
    recognition on they are not "done" and are detected and read again.
    """
    from sqlalchemy import select

    from db.recognition_writes import pages_without_text
    from db.session import connect

    ids = pages_without_text(engine, run_id)
    if not ids:
        return {}
    with connect(engine, read_only=True) as conn:
        rows = conn.execute(
            select(writes.pages.c.id, writes.pages.c.document_id).where(writes.pages.c.id.in_(ids))
        )
        return {int(page): int(doc) for page, doc in rows}


@_db_task("record-unreadable-document")
def record_unreadable_document(
    engine: Engine, sha256: str, source_uri: str, size_bytes: int, error: str
) -> int:
    """A file that never became a document, keyed by its content hash, marked failed."""
    doc_id = writes.upsert_document(
        engine,
        sha256=sha256,
        source_uri=source_uri,
        media_type="application/octet-stream",
        size_bytes=size_bytes,
    )
    writes.record_document_error(engine, doc_id, error)
    return doc_id


@_db_task("claim-document", task_run_namer("claim", lambda p: document_label(p["document"].path)))
def claim_document(
    engine: Engine,
    document: Document,
    page_count: int | None,
    run_id: int,
    stale_after: timedelta,
    pages: str = "all",
) -> tuple[int, claims.Claim]:
    """Upsert the document and claim it for this run; only a taken claim marks it in progress.

    A document another live run holds is left exactly as that run wrote it.
    """
    doc_id = writes.upsert_document(
        engine,
        sha256=document.document_id,
        source_uri=document.path,
        media_type=document.media_type,
        size_bytes=document.size_bytes,
        page_count=page_count,
    )
    claim = claims.claim_document(
        engine, document_id=doc_id, run_id=run_id, stale_after=stale_after, pages=pages
    )
    if claim.taken:
        writes.set_document_status(engine, doc_id, DocumentStatus.RUNNING)
    return doc_id, claim


@_db_task("release-document")
def release_document(engine: Engine, run_id: int, sha256: str) -> bool:
    """Give up this run's claim on the document (done, partial or failed: finished)."""
    return claims.release_document(engine, run_id=run_id, sha256=sha256)


@_db_task("set-document-outcome")
def set_document_outcome(
    engine: Engine, document_id: int, status: DocumentStatus, error: str | None = None
) -> None:
    """Final status of a document (``done``, ``partial`` or ``failed``) with the error, if any."""
    writes.set_document_status(engine, document_id, status, error=error)


@_db_task(
    "register-page",
    task_run_namer(
        "register", lambda p: document_label(p["page"].source, *[p["page"].page_number] * 2)
    ),
)
def register_page(
    engine: Engine, document_id: int, page: Page, params_hash: str
) -> tuple[int, bool]:
    """Upsert the page; return its id and whether it already has this run's result."""
    page_id = writes.upsert_page(
        engine,
        document_id=document_id,
        page_number=page.page_number,
        width=page.width,
        height=page.height,
        dpi=page.dpi,
    )
    return page_id, writes.page_done(engine, page_id=page_id, params_hash=params_hash)


@_db_task("store-page-regions")
def store_page_regions(
    engine: Engine, run_id: int, page_id: int, result: PageResult, orientation: bool = False
) -> bool:
    """Replace this page's regions for the run's parameters, atomically; with ``orientation``
    (the detector looked for it), also the page's orientation."""
    return writes.write_page_regions(
        engine,
        run_id=run_id,
        page_id=page_id,
        regions=result.regions,
        timings=result.timings,
        orientation=result.orientation if orientation else None,
    )


@_db_task(
    "store-page-error", task_run_namer("store error of page", lambda p: str(p["page_number"]))
)
def store_page_error(engine: Engine, document_id: int, page_number: int, error: str) -> None:
    """Record a page that could not be read or detected; other pages are unaffected."""
    page_state.record_page_failure(
        engine, document_id=document_id, page_number=page_number, error=error
    )


@_db_task("check-document-done")
def document_done(
    engine: Engine, document_id: int, page_numbers: Sequence[int], params_hash: str
) -> bool:
    """Whether every one of these pages already has a result for ``params_hash``."""
    return page_state.document_done(
        engine, document_id=document_id, page_numbers=page_numbers, params_hash=params_hash
    )
