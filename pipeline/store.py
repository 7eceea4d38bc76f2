"""The run's results database, as the page stream uses it: every call retried, one place.

Wraps ``db`` (claims, writes, page state) for one run, so the stream says *what* it records
(a claim, a page, its regions, an error, an outcome) and this module says how, with retries
(:mod:`pipeline.retry`). Every call here is idempotent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from craft import ModelInfo, PageResult
from db import claims, page_state, writes
from db.models import DocumentStatus, RunStatus
from db.recognition_writes import pages_to_reread, write_region_texts
from ingest import Document, Page
from pipeline.retry import retrying

__all__ = ["ResultsStore", "start_run"]


def start_run(
    engine: Engine, params: dict[str, Any], info: ModelInfo, flow_run_id: str | None
) -> tuple[int, str]:
    """Record a run as ``running``; its id and parameter hash."""
    run_id = retrying(
        writes.start_run,
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
    return run_id, retrying(writes.run_params_hash, engine, run_id)


class ResultsStore:
    """One run's reads and writes (``run_id``, ``params_hash``), each retried on a blip."""

    def __init__(self, engine: Engine, run_id: int, params_hash: str) -> None:
        self.engine, self.run_id, self.params_hash = engine, run_id, params_hash

    def finish(self, status: RunStatus, error: str | None = None) -> None:
        """Close the run (also drops any claim it still holds)."""
        retrying(writes.finish_run, self.engine, self.run_id, status, error=error)

    def pages_to_reread(self) -> dict[int, int]:
        """Pages (id -> document id) with regions but no text for these parameters."""
        return retrying(pages_to_reread, self.engine, self.run_id)

    def record_unreadable(self, path: str, error: str) -> str | None:
        """A file that never became a document, keyed by its content hash: its sha256, or
        None when it cannot be read to hash (then nothing can key it; the summary names it)."""
        try:
            file = Path(path)
            with file.open("rb") as fh:
                sha = hashlib.file_digest(fh, "sha256").hexdigest()
            size = file.stat().st_size
        except OSError:
            return None
        doc_id = retrying(
            writes.upsert_document,
            self.engine,
            sha256=sha,
            source_uri=path,
            media_type="application/octet-stream",
            size_bytes=size,
        )
        retrying(writes.record_document_error, self.engine, doc_id, error)
        return sha

    def claim(
        self, document: Document, page_count: int | None, stale_after: timedelta, pages: str
    ) -> tuple[int, claims.Claim]:
        """Upsert the document and claim it; only a taken claim marks it ``running`` (one
        transaction)."""
        return retrying(
            claims.open_document,
            self.engine,
            sha256=document.document_id,
            source_uri=document.path,
            media_type=document.media_type,
            size_bytes=document.size_bytes,
            page_count=page_count,
            run_id=self.run_id,
            stale_after=stale_after,
            pages=pages,
        )

    def finish_document(
        self, doc_id: int, status: DocumentStatus, error: str | None = None
    ) -> None:
        """A document's final status (``done``, ``partial``, ``failed``) and error, and this
        run's claim on it released, in one transaction."""
        retrying(
            claims.finish_document,
            self.engine,
            run_id=self.run_id,
            document_id=doc_id,
            status=status,
            error=error,
        )

    def document_done(self, doc_id: int, numbers: Sequence[int]) -> bool:
        """Whether every one of these pages has a result for this run's parameters."""
        return retrying(
            page_state.document_done,
            self.engine,
            document_id=doc_id,
            page_numbers=numbers,
            params_hash=self.params_hash,
        )

    def register_page(self, doc_id: int, page: Page) -> tuple[int, bool]:
        """Upsert the page; its id and whether it already has this run's result."""
        return retrying(
            writes.register_page,
            self.engine,
            document_id=doc_id,
            page_number=page.page_number,
            width=page.width,
            height=page.height,
            dpi=page.dpi,
            params_hash=self.params_hash,
        )

    def page_failed(self, doc_id: int, page_number: int, error: str) -> None:
        """A page that could not be read or detected; the document's other pages go on."""
        retrying(
            page_state.record_page_failure,
            self.engine,
            document_id=doc_id,
            page_number=page_number,
            error=error,
        )

    def store_regions(self, page_id: int, result: PageResult, orientation: bool) -> None:
        """Replace the page's regions for these parameters atomically; with ``orientation``
        (the detector looked for it) the page's orientation too."""
        retrying(
            writes.write_page_regions,
            self.engine,
            run_id=self.run_id,
            page_id=page_id,
            regions=result.regions,
            timings=result.timings,
            orientation=result.orientation if orientation else None,
        )

    def store_texts(self, page_id: int, texts: Sequence[Any]) -> None:
        """Write a page's recognised texts onto its stored regions."""
        retrying(write_region_texts, self.engine, run_id=self.run_id, page_id=page_id, texts=texts)
