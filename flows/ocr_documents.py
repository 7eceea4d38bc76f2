"""The ``ocr-documents`` flow: documents in, rotated regions in SQL and overlays out.

Reads top-down: resolve settings, open the run, then per document stream page slices through
rasterize -> detect -> persist / render, with the next slice rasterizing and the previous one
being written while a slice is on the detector. Memory holds at most about three slices.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, get_run_logger
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from craft import DetectorParams, PageResult
from db import claims, writes
from db.errors import DatabaseUnavailableError
from db.migrate import open_results_database
from db.models import DocumentStatus, RunStatus
from db.session import mask_url
from flows import artifacts
from flows.params import (
    DatabaseOptions,
    DatabaseParameter,
    DetectorOptions,
    DetectorParameter,
    IngestionParameter,
    InputsParameter,
    OverlayOptions,
    OverlayParameter,
    RecognitionOptions,
    RecognitionParameter,
)
from flows.progress import DOCUMENT_OUTCOME, PageEvent, emit
from flows.summary import DocumentSummary, RunSummary
from ingest import Document, DocumentError, IngestError, IngestOptions, Page, PageError
from ingest.limits import page_range
from ingest.roots import OutsideInputRootsError, check_inputs
from tasks.detect import detect_pages, get_predictor
from tasks.ingest import count_document_pages, discover_documents, load_pages
from tasks.names import document_label, flow_run_name
from tasks.persist import (
    begin_run,
    claim_document,
    document_done,
    end_run,
    pages_to_reread,
    record_unreadable_document,
    register_page,
    release_document,
    set_document_outcome,
    store_page_error,
    store_page_regions,
)
from tasks.recognize import recognize_page_texts
from tasks.render import Overlay, render_overlay

if TYPE_CHECKING:
    from recognize import RecognitionPool

__all__ = ["ocr_documents", "resolve_database_url"]

SLICE_PAGES = 4  # pages rasterized per load task: small, so memory stays bounded
# Waits before resubmitting a detection whose `gpu` concurrency slot the API could not grant.
SLOT_RETRY_DELAYS_S = (5.0, 20.0, 60.0)


def resolve_database_url(options: DatabaseOptions) -> str:
    """Secret block, else the explicit URL, else settings; refuse passwords in parameters."""
    if options.url_secret_block:
        from prefect.blocks.system import Secret

        secret: Any = Secret.load(options.url_secret_block)  # sync in a sync flow
        return str(secret.get())
    if options.url:
        from sqlalchemy.engine import make_url

        if make_url(options.url).password:
            raise ValueError(
                "the database URL parameter contains a password; store the URL in a Prefect "
                "Secret block and pass its name as url_secret_block (or set "
                "OCRFLOW_DATABASE_URL in the worker's environment)"
            )
        return options.url
    from db.settings import get_database_url

    return get_database_url()


class _Counter:
    """Pages finished across the run, for the progress artifact and the CLI bar."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.artifact_id = artifacts.start_progress()

    def page(self, source: str, page_number: int, ok: bool) -> None:
        self.done += 1
        emit(PageEvent(source, page_number, self.done, self.total, ok))
        artifacts.update_progress(self.artifact_id, self.done, self.total)


def _page_range(count: int, options: IngestOptions) -> list[int]:
    """The selected page numbers; ``count_document_pages`` already refused an empty range."""
    first, last = page_range("", count, options)
    return list(range(first, last + 1))


def _slice_options(options: IngestOptions, numbers: Sequence[int]) -> IngestOptions:
    return options.model_copy(update={"first_page": numbers[0], "last_page": numbers[-1]})


def _heartbeat(engine: Engine, run_id: int, logger: Any) -> None:
    """Mark the run alive. Best effort: a beat missed while the database restarts costs nothing
    (the next one lands), whereas raising here would fail a run whose writes all retry."""
    try:
        writes.heartbeat(engine, run_id)
    except (DatabaseUnavailableError, DBAPIError) as exc:
        logger.warning("heartbeat skipped (the database did not answer): %s", exc)


def _sweep_stale_runs(engine: Engine, stale_after: timedelta, logger: Any) -> None:
    """Mark runs silent for ``stale_after`` abandoned (freeing their claims). Best effort."""
    try:
        swept = writes.mark_stale_runs(engine, stale_after)
    except (DatabaseUnavailableError, DBAPIError) as exc:
        logger.warning("stale-run sweep skipped (the database did not answer): %s", exc)
        return
    if swept:
        logger.warning("%d run(s) silent for %s marked abandoned", swept, stale_after)


def _claimed_elsewhere(
    document: Document,
    claim: claims.Claim,
    page_count: int | DocumentError,
    ingestion: IngestOptions,
    counter: _Counter,
    summary: DocumentSummary,
) -> DocumentSummary:
    """A document another live run holds: reported, its pages counted, nothing written."""
    get_run_logger().info(
        "%s: claimed by run %d (still running): left to it", document.path, claim.holder_run_id
    )
    numbers = _page_range(page_count, ingestion) if isinstance(page_count, int) else []
    for n in numbers:
        counter.page(document.path, n, ok=True)
    summary.status, summary.claimed_by = "claimed", claim.holder_run_id
    summary.pages = summary.pages_skipped = len(numbers)
    return summary


def _record_unreadable(engine: Engine, error: DocumentError) -> DocumentSummary:
    """A file that never became a document: recorded by content hash when it can be read."""
    summary = DocumentSummary(
        source=str(error.path), sha256=None, status="failed", error=error.message
    )
    if isinstance(error, OutsideInputRootsError):
        return summary  # never opened: its bytes are outside what this run may read
    try:
        path = Path(error.path)
        with path.open("rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
        size = path.stat().st_size
    except OSError:
        return summary  # vanished or unreadable: nothing to key it by; the summary names it
    # Retried like every other write (tasks.persist): a database blip must not fail the run.
    record_unreadable_document(engine, sha, str(error.path), size, error.message)
    summary.sha256 = sha
    return summary


def _claimed_pages(ingestion: IngestOptions) -> str:
    """The claim's page range: sibling page-range runs of one PDF must not exclude each other."""
    if ingestion.first_page is None and ingestion.last_page is None:
        return "all"
    return f"{ingestion.first_page or 1}-{ingestion.last_page or ''}"


def _process_document(
    engine: Engine,
    document: Document,
    page_count: int | DocumentError,
    *,
    params: DetectorParams,
    ingestion: IngestOptions,
    overlay: OverlayOptions,
    output_dir: Path,
    run_id: int,
    params_hash: str,
    skip_processed: bool,
    counter: _Counter,
    readers: RecognitionPool | None,
    reread: frozenset[int] = frozenset(),
    reread_documents: frozenset[int] = frozenset(),
    stale_after: timedelta = claims.DEFAULT_STALE_AFTER,
) -> DocumentSummary:
    t0 = time.perf_counter()
    summary = DocumentSummary(source=document.path, sha256=document.document_id, status="done")
    count = page_count if isinstance(page_count, int) else None
    # Claimed before anything is written: a document another live run holds is left to it.
    doc_id, claim = claim_document(
        engine, document, count, run_id, stale_after, _claimed_pages(ingestion)
    )
    if not claim.taken:
        return _claimed_elsewhere(document, claim, page_count, ingestion, counter, summary)
    if claim.taken_over_from is not None:
        get_run_logger().warning("%s: claim taken over: %s", document.path, claim.reason)
    if isinstance(page_count, DocumentError):
        set_document_outcome(engine, doc_id, DocumentStatus.FAILED, page_count.message)
        summary.status, summary.error = "failed", page_count.message
        return summary
    numbers = _page_range(page_count, ingestion)
    summary.pages = len(numbers)
    # A page whose text write a kill cut off is not done (reread: its id) while reading is on.
    shortcut = skip_processed and doc_id not in reread_documents
    if shortcut and document_done(engine, doc_id, numbers, params_hash):
        set_document_outcome(engine, doc_id, DocumentStatus.DONE)
        for n in numbers:
            counter.page(document.path, n, ok=True)
        summary.status, summary.pages_skipped = "skipped", len(numbers)
        return summary

    slices = [numbers[i : i + SLICE_PAGES] for i in range(0, len(numbers), SLICE_PAGES)]
    scores: list[float] = []
    pending: list[PrefectFuture[Any]] = []
    next_load = (
        load_pages.submit(document, _slice_options(ingestion, slices[0])) if slices else None
    )
    records = _TaskRecords()
    for i in range(len(slices)):
        records.trim()
        assert next_load is not None
        loaded: list[Page | IngestError] = next_load.result()
        next_load = (
            load_pages.submit(document, _slice_options(ingestion, slices[i + 1]))
            if i + 1 < len(slices)
            else None
        )
        if len(loaded) == 1 and isinstance(loaded[0], DocumentError):
            summary.status, summary.error = "failed", loaded[0].message
            for n in numbers[numbers.index(slices[i][0]) :]:  # the bar still reaches the end
                counter.page(document.path, n, ok=False)
            break
        todo: list[tuple[Page, int]] = []
        for item in loaded:
            if isinstance(item, PageError):
                number = item.page_number or 0
                store_page_error(engine, doc_id, number, item.message)
                summary.pages_failed += 1
                summary.error = summary.error or item.message
                counter.page(document.path, number, ok=False)
                continue
            assert isinstance(item, Page)
            page_id, done = register_page(engine, doc_id, item, params_hash)
            if done and skip_processed and page_id not in reread:
                summary.pages_skipped += 1
                counter.page(document.path, item.page_number, ok=True)
                continue
            todo.append((item, page_id))
        if not todo:
            continue
        images = [p.image for p, _ in todo]
        label = document_label(document.path, todo[0][0].page_number, todo[-1][0].page_number)
        detection = detect_pages.submit(images, params, label)
        # The previous slice's writes ran while this slice was rasterized and detected;
        # waiting for them here bounds memory to about three slices.
        _wait(pending)
        pending = []
        try:
            results: list[PageResult] = detection_result(
                detection, functools.partial(detect_pages.submit, images, params, label)
            )
        except Exception as exc:
            for page, _ in todo:
                message = f"{document.path}, page {page.page_number}: detection failed: {exc}"
                store_page_error(engine, doc_id, page.page_number, message)
                summary.pages_failed += 1
                summary.error = summary.error or message
                counter.page(document.path, page.page_number, ok=False)
            continue
        for (page, page_id), result in zip(todo, results, strict=True):
            stored = store_page_regions.submit(
                engine, run_id, page_id, result, params.detect_orientation
            )
            pending.append(stored)
            if readers is not None:
                args = (readers, engine, run_id, page_id, page.image, result.regions)
                pending.append(
                    recognize_page_texts.submit(*args, wait_for=[stored], return_state=False)
                )
            if overlay.enabled:
                path = output_dir / _overlay_name(document, page.page_number, overlay)
                thumb = overlay.thumbnail_side if not summary.overlays else None
                pending.append(
                    render_overlay.submit(
                        page.image, result.regions, path, overlay.bgr(), overlay.line_width, thumb
                    )
                )
                summary.overlays.append(str(path))
            summary.regions += len(result.regions)
            scores.extend(r.score for r in result.regions)
            counter.page(document.path, page.page_number, ok=True)
        _heartbeat(engine, run_id, get_run_logger())  # long documents must not look like a dead run
    thumbs = [r for r in _wait(pending) if isinstance(r, Overlay) and r.thumbnail_uri]
    records.trim(all_done=True)
    if thumbs:
        artifacts.document_markdown(summary, thumbs[0].thumbnail_uri)
    summary.mean_score = sum(scores) / len(scores) if scores else None
    summary.seconds = time.perf_counter() - t0
    summary.status = _outcome(summary)
    set_document_outcome(engine, doc_id, DocumentStatus(summary.status), summary.error)
    return summary


def _outcome(summary: DocumentSummary) -> str:
    """``done`` only when every selected page is there: ``failed`` when none is, else
    ``partial``, so an analyst's ``WHERE status = 'done'`` means the pages are in SQL."""
    if summary.status == "failed" or (summary.pages and summary.pages_failed >= summary.pages):
        return "failed"
    return "partial" if summary.pages_failed else "done"


def _start_recognition(
    options: RecognitionOptions, params: DetectorParams
) -> RecognitionPool | None:
    """The run's Tesseract workers; without Tesseract, detection goes on and says why once."""
    from recognize import RecognitionPool, TesseractNotFoundError, mode_for

    try:
        return RecognitionPool(
            options.workers,
            mode=mode_for(params.with_refiner),
            languages=options.languages,
            min_score=options.min_score,
        )
    except TesseractNotFoundError as exc:
        get_run_logger().warning("recognition is off for this run: %s", exc)
        return None


class _TaskRecords:
    """Drops Prefect's records of a document's finished tasks, so memory does not grow per page.

    Prefect 3 keeps, for the whole flow run, a link from every task result to its state (for
    the UI's dependency edges: ``FlowRunContext.run_results``) and the cancel event of every
    submitted task (``ThreadPoolTaskRunner._cancel_events``), and drops neither: about 9 KB a
    page, so RSS grew with the page count (bench/bench_scale.py). ``trim``, once per slice,
    drops the records already there at the previous trim: those tasks were submitted before the
    previous slice began, so they have finished and their results have been passed on. Records
    from before the document (discovery, page counts) stay for the edges of later tasks.
    """

    def __init__(self) -> None:
        ctx = FlowRunContext.get()
        tables = (ctx.run_results, getattr(ctx.task_runner, "_cancel_events", None)) if ctx else ()
        self._tables: list[dict[Any, Any]] = [t for t in tables if isinstance(t, dict)]
        self._before = [dict(t) for t in self._tables]
        self._previous = self._before

    def trim(self, *, all_done: bool = False) -> None:
        """Forget records two slices old; with ``all_done``, all made since the document began."""
        for table, before, previous in zip(self._tables, self._before, self._previous, strict=True):
            for key, value in list((table if all_done else previous).items()):
                if before.get(key) is not value and table.get(key) is value:
                    table.pop(key, None)
        self._previous = [dict(t) for t in self._tables]


def _wait(futures: list[PrefectFuture[Any]]) -> list[Any]:
    return [f.result() for f in futures]


def detection_result(
    future: PrefectFuture[list[PageResult]],
    resubmit: Callable[[], PrefectFuture[list[PageResult]]],
    delays: Sequence[float] = SLOT_RETRY_DELAYS_S,
    sleep: Callable[[float], None] = time.sleep,
    warn: Callable[[str], None] | None = None,
) -> list[PageResult]:
    """The detection's pages, resubmitted while Prefect cannot grant its ``gpu`` slot.

    The engine takes a tag's concurrency slot from the API before the task body runs and
    outside the task's retries, so a busy or restarting server (HTTP 5xx beyond the client's
    own retries; seen with four workers on one SQLite-backed server) fails that step, not
    the detection. Losing the pages for it would be wrong: wait and submit again, then give up.
    """
    for delay in delays:
        try:
            return future.result()
        except ConcurrencySlotAcquisitionError as exc:
            (warn or get_run_logger().warning)(f"{exc}; detecting again in {delay:g} s")
            sleep(delay)
            future = resubmit()
    return future.result()


def _flow_run_url() -> str | None:
    """The run's page in the UI when a configured server keeps it (a temporary one vanishes)."""
    from prefect.settings import get_current_settings
    from prefect.utilities.urls import url_for

    if not get_current_settings().api.url:
        return None
    return url_for("flow-run", obj_id=flow_run.get_id())


def _overlay_name(document: Document, page_number: int, overlay: OverlayOptions) -> str:
    stem = Path(document.path).stem
    return f"{stem}-{document.document_id[:8]}/page-{page_number:04d}.{overlay.image_format}"


@flow(
    name="ocr-documents",
    flow_run_name=flow_run_name,  # what it reads: memo.jpg, report.pdf p1-50, 3 documents
    task_runner=ThreadPoolTaskRunner(max_workers=4),  # type: ignore[arg-type]
    validate_parameters=True,
)
def ocr_documents(
    inputs: InputsParameter,
    detector: DetectorParameter = DetectorOptions(),  # noqa: B008 - frozen, safe as default
    ingestion: IngestionParameter = IngestOptions(),  # noqa: B008
    database: DatabaseParameter = DatabaseOptions(),  # noqa: B008
    overlay: OverlayParameter = OverlayOptions(),  # noqa: B008
    recognition: RecognitionParameter = RecognitionOptions(),  # noqa: B008
    output_dir: str = "ocrflow-output",
    skip_processed: bool = True,
) -> RunSummary:
    """Detect text regions in documents and store them in SQL, with overlays for review.

    Args:
        inputs: Files, folders (recursive) or glob patterns of PDFs and images, as the
            worker sees them, e.g. /data/inbox/memo.jpg or /data/inbox/scans/*.pdf.
        detector: CRAFT preset and the parameters that override it.
        ingestion: PDF resolution, page range and the limits that protect the worker.
        database: Where results go (Secret block name for production, else URL or settings).
        overlay: Review images: colour, line width and format.
        recognition: Read each region's text with Tesseract so SQL can search it.
        output_dir: Folder for full-size overlays.
        skip_processed: Skip pages that already have results for the same parameters and
            weights.
    """
    logger = get_run_logger()
    t0 = time.perf_counter()
    # Before anything else: a run from a deployment reads only inside OCRFLOW_INPUT_ROOTS.
    roots = check_inputs(inputs, from_deployment=deployment.id is not None)
    params = detector.resolve()
    stale_after = claims.get_stale_after()  # OCRFLOW_STALE_AFTER: refuse a bad value up front
    predictor = get_predictor(params)  # load and verify the weights before touching anything
    url = resolve_database_url(database)
    engine = open_results_database(url)
    out = Path(output_dir).resolve()
    logger.info("database %s, overlays in %s", mask_url(url), out)
    info = predictor.info  # `fast` resolves to a concrete path here, said once per run
    logger.info("detector: %s on %s, precision %s", info.backend, info.device, info.precision)
    _sweep_stale_runs(engine, stale_after, logger)  # killed runs free their documents
    run_id, params_hash = begin_run(
        engine, params.model_dump(mode="json"), predictor.info, flow_run.get_id()
    )
    # Beats whatever a page costs, so a slow page never makes this run look dead.
    beat = claims.RunHeartbeat(engine, run_id).start()
    summaries: list[DocumentSummary] = []
    outcome, error = RunStatus.FAILED, None
    readers = _start_recognition(recognition, params) if recognition.enabled else None
    try:
        reading = readers is not None and skip_processed
        reread = pages_to_reread(engine, run_id) if reading else {}
        if reread:
            logger.info("%d pages have regions but no text yet: reading them again", len(reread))
        found = discover_documents(inputs, ingestion, roots)
        documents = [d for d in found if isinstance(d, Document)]
        counts = {d.document_id: count_document_pages(d, ingestion) for d in documents}
        total = sum(len(_page_range(c, ingestion)) for c in counts.values() if isinstance(c, int))
        counter = _Counter(total)
        for item in found:
            if isinstance(item, DocumentError):
                logger.warning("%s", item.message, extra=DOCUMENT_OUTCOME)
                summaries.append(_record_unreadable(engine, item))
        for document in documents:
            summary = _process_document(
                engine,
                document,
                counts[document.document_id],
                params=params,
                ingestion=ingestion,
                overlay=overlay,
                output_dir=out,
                run_id=run_id,
                params_hash=params_hash,
                skip_processed=skip_processed,
                counter=counter,
                readers=readers,
                reread=frozenset(reread),
                reread_documents=frozenset(reread.values()),
                stale_after=stale_after,
            )
            if summary.status != "claimed":  # finished, whatever the outcome: let it go
                release_document(engine, run_id, document.document_id)
            # One line per document: INFO, or WARNING when something in it failed.
            level, line = artifacts.document_log_level(summary), artifacts.document_line(summary)
            logger.log(level, line, extra=DOCUMENT_OUTCOME)
            summaries.append(summary)
            _heartbeat(engine, run_id, logger)
        claimed = sorted({s.claimed_by for s in summaries if s.claimed_by is not None})
        if claimed:
            logger.warning(
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
        end_run(engine, run_id, outcome, error)  # also drops any claim still held
        engine.dispose()
    result = RunSummary(
        run_id=run_id,
        database=mask_url(url),
        output_dir=str(out) if overlay.enabled else None,
        documents=summaries,
        seconds=time.perf_counter() - t0,
        flow_run_url=_flow_run_url(),
    )
    artifacts.run_table(result)
    return result
