"""A whole run as a library call: the same claims, retries and rows from the flow and the CLI.

``run_documents`` opens the run in the results database, streams every document's pages
(:mod:`pipeline.stream`) and closes the run, whatever happens. The Prefect flow calls it with
hooks that make detection batches Prefect tasks and documents artifacts; ``ocrflow run``
without a server calls it with a progress bar, and no server to start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from craft import DetectorParams, ModelInfo
from db import claims, writes
from db.errors import DatabaseUnavailableError
from db.models import RunStatus
from ingest import Document, DocumentError, IngestError, IngestOptions, count_pages
from ingest.limits import page_range
from ingest.roots import OutsideInputRootsError
from pipeline.documents import selected_pages
from pipeline.options import OverlayOptions, RecognitionOptions
from pipeline.store import ResultsStore, start_run
from pipeline.stream import Hooks, PageStream, StreamSettings
from pipeline.summary import DocumentSummary, RunSummary

if TYPE_CHECKING:
    from recognize import RecognitionPool

__all__ = ["RunRequest", "count_selected_pages", "run_documents"]


@dataclass(frozen=True)
class RunRequest:
    """What to do with the documents: the detector, the pages, and what to make of them."""

    params: DetectorParams
    ingestion: IngestOptions = field(default_factory=IngestOptions)
    overlay: OverlayOptions = field(default_factory=OverlayOptions)
    recognition: RecognitionOptions = field(default_factory=RecognitionOptions)
    output_dir: Path = Path("ocrflow-output")
    skip_processed: bool = True
    max_in_flight: int = 0  # pages held at once; 0 = the stream's own bound


def count_selected_pages(document: Document, options: IngestOptions) -> int | DocumentError:
    """The document's page count, or why it cannot be read.

    The page range is checked here, before any page is read: a range past the document's end
    or longer than ``max_pages`` fails the document with that reason instead of selecting
    nothing and reporting it done.
    """
    try:
        count = count_pages(document, options)
        page_range(document.path, count, options)
    except DocumentError as exc:
        return exc
    return count


def run_documents(
    found: Sequence[Document | IngestError],
    request: RunRequest,
    *,
    engine: Engine,
    info: ModelInfo,
    hooks: Hooks,
    database: str,
    flow_run_id: str | None = None,
    stale_after: timedelta | None = None,
) -> RunSummary:
    """Detect text in ``found`` (discovered documents and the inputs that are not) and store
    it; ``database`` is how the summary names the database (masked URL)."""
    t0 = time.perf_counter()
    stale_after = stale_after or claims.get_stale_after()
    _sweep_stale_runs(engine, stale_after, hooks)  # killed runs free their documents
    run_id, params_hash = start_run(
        engine, request.params.model_dump(mode="json"), info, flow_run_id
    )
    store = ResultsStore(engine, run_id, params_hash)
    # Beats whatever a page costs, so a slow page never makes this run look dead.
    beat = claims.RunHeartbeat(engine, run_id).start()
    readers = _start_recognition(request, hooks) if request.recognition.enabled else None
    outcome, error = RunStatus.FAILED, None
    summaries: list[DocumentSummary] = []
    stream: PageStream | None = None
    try:
        reread = store.pages_to_reread() if readers is not None and request.skip_processed else {}
        if reread:
            hooks.log(logging.INFO, "%d pages have regions but no text yet: reading them again",
                      len(reread))  # fmt: skip
        for item in found:
            if not isinstance(item, Document):
                hooks.log(logging.WARNING, "%s", item.message, outcome=True)
                summaries.append(_unreadable(store, item))
        documents = [d for d in found if isinstance(d, Document)]
        with ThreadPoolExecutor(4, "ocrflow-count") as pool:  # pdfinfo runs are subprocesses
            counts = list(pool.map(lambda d: count_selected_pages(d, request.ingestion), documents))
        hooks.planned(
            sum(len(selected_pages(c, request.ingestion)) for c in counts if isinstance(c, int))
        )
        settings = StreamSettings(
            params=request.params,
            ingestion=request.ingestion,
            overlay=request.overlay,
            output_dir=request.output_dir,
            skip_processed=request.skip_processed,
            stale_after=stale_after,
            max_in_flight=request.max_in_flight,
        )
        stream = PageStream(store, settings, hooks, readers=readers, reread=reread)
        summaries += stream.run(list(zip(documents, counts, strict=True)))
        claimed = sorted({s.claimed_by for s in summaries if s.claimed_by is not None})
        if claimed:
            hooks.log(
                logging.WARNING,
                "%d document(s) claimed by live run(s) %s: left to them",
                sum(s.status == "claimed" for s in summaries),
                ", ".join(map(str, claimed)),
            )
        outcome = RunStatus.COMPLETED
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        beat.stop()
        if readers is not None:
            readers.close()
        store.finish(outcome, error)  # also drops any claim still held
    return RunSummary(
        run_id=run_id,
        database=database,
        output_dir=str(request.output_dir) if request.overlay.enabled else None,
        documents=summaries,
        seconds=time.perf_counter() - t0,
        stages=stream.stages.as_dict() if stream else {},
    )


def _unreadable(store: ResultsStore, error: IngestError) -> DocumentSummary:
    """A file that never became a document: recorded by content hash when it can be read."""
    summary = DocumentSummary(
        source=str(error.path), sha256=None, status="failed", error=error.message
    )
    if not isinstance(error, OutsideInputRootsError):  # never opened: outside what we may read
        summary.sha256 = store.record_unreadable(str(error.path), error.message)
    return summary


def _sweep_stale_runs(engine: Engine, stale_after: timedelta, hooks: Hooks) -> None:
    """Mark runs silent for ``stale_after`` abandoned (freeing their claims). Best effort."""
    try:
        swept = writes.mark_stale_runs(engine, stale_after)
    except (DatabaseUnavailableError, DBAPIError) as exc:
        hooks.log(logging.WARNING, "stale-run sweep skipped (the database did not answer): %s", exc)
        return
    if swept:
        hooks.log(logging.WARNING, "%d run(s) silent for %s marked abandoned", swept, stale_after)


def _start_recognition(request: RunRequest, hooks: Hooks) -> RecognitionPool | None:
    """The run's Tesseract workers; without Tesseract, detection goes on and says why once."""
    from recognize import RecognitionPool, TesseractNotFoundError, mode_for

    options = request.recognition
    try:
        return RecognitionPool(
            options.workers,
            mode=mode_for(request.params.with_refiner),
            languages=options.languages,
            min_score=options.min_score,
        )
    except TesseractNotFoundError as exc:
        hooks.log(logging.WARNING, "recognition is off for this run: %s", exc)
        return None
