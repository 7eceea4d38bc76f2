"""The ``ocr-documents`` flow: documents in, rotated regions in SQL and overlays out.

Orchestration only: settings are resolved, the inputs discovered and the model loaded here;
the pages of every document then stream through :mod:`pipeline` (reading, detection, writes,
overlays, recognition) with this flow's hooks: each detection batch is a ``detect-pages``
task (tagged ``gpu``), each document one log line and one artifact card, and the run keeps a
progress artifact and a table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import deployment, flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from craft import DetectorParams, PageResult
from db.migrate import open_results_database
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
    url_has_password,
)
from flows.prefect_internals import TaskRecords, detection_result
from flows.progress import DOCUMENT_OUTCOME, PageEvent, emit
from ingest import IngestOptions, Page
from ingest.roots import check_inputs
from pipeline.run import RunRequest, run_documents
from pipeline.stream import Hooks
from pipeline.summary import DocumentSummary, RunSummary
from tasks.detect import detect_pages, get_predictor
from tasks.ingest import discover_documents
from tasks.names import batch_label, flow_run_name

__all__ = ["ocr_documents", "resolve_database_url"]

PROGRESS_EVERY_S = 2.0  # the progress artifact is an API call: not one per page


def resolve_database_url(options: DatabaseOptions) -> str:
    """Secret block, else the explicit URL, else settings; refuse passwords in parameters."""
    if options.url_secret_block:
        from prefect.blocks.system import Secret

        secret: Any = Secret.load(options.url_secret_block)  # sync in a sync flow
        return str(secret.get())
    if options.url:
        if url_has_password(options.url):  # the options refuse it too: never let one through
            raise ValueError(
                "the database URL parameter contains a password; store the URL in a Prefect "
                "Secret block and pass its name as url_secret_block (or set "
                "OCRFLOW_DATABASE_URL in the worker's environment)"
            )
        return options.url
    from db.settings import get_database_url

    return get_database_url()


class _FlowHooks:
    """The page stream as this flow run shows it: tasks, log lines, artifacts, progress."""

    def __init__(self, params: DetectorParams) -> None:
        self.params = params
        self.logger = get_run_logger()
        self.total, self.done = 1, 0
        self.progress = artifacts.start_progress()
        self.shown_at = 0.0
        self.records = TaskRecords()

    def hooks(self) -> Hooks:
        """The callbacks :func:`pipeline.run.run_documents` calls."""
        return Hooks(
            detect=self.detect,
            planned=self.planned,
            page=self.page,
            document=self.document,
            log=self.log,
        )

    def detect(self, pages: list[Page]) -> list[PageResult]:
        """One batch as one ``detect-pages`` task run, named after its pages."""
        images = [p.image for p in pages]
        label = batch_label([(p.source, p.page_number) for p in pages])
        results = detection_result(
            detect_pages.submit(images, self.params, label),
            lambda: detect_pages.submit(images, self.params, label),
        )
        self.records.forget_finished()  # nothing else is in flight between batches
        return results

    def planned(self, total: int) -> None:
        """Pages the run will go through."""
        self.total = max(total, 1)

    def page(self, source: str, page_number: int, ok: bool) -> None:
        """A page finished: the CLI's bar at once, the artifact every few seconds."""
        self.done += 1
        emit(PageEvent(source, page_number, self.done, self.total, ok))
        now = time.monotonic()
        if now - self.shown_at >= PROGRESS_EVERY_S or self.done >= self.total:
            self.shown_at = now
            artifacts.update_progress(self.progress, self.done, self.total)

    def document(self, summary: DocumentSummary, thumbnail_uri: str | None) -> None:
        """One log line per document (INFO, or WARNING when something failed) and its card."""
        line = artifacts.document_line(summary)
        self.logger.log(artifacts.document_log_level(summary), line, extra=DOCUMENT_OUTCOME)
        if thumbnail_uri:
            artifacts.document_markdown(summary, thumbnail_uri)

    def log(self, level: int, message: str, *args: object, outcome: bool = False) -> None:
        """The stream's messages in the run's log."""
        self.logger.log(level, message, *args, extra=DOCUMENT_OUTCOME if outcome else None)


def _flow_run_url() -> str | None:
    """The run's page in the UI when a configured server keeps it (a temporary one vanishes)."""
    from prefect.settings import get_current_settings
    from prefect.utilities.urls import url_for

    if not get_current_settings().api.url:
        return None
    return url_for("flow-run", obj_id=flow_run.get_id())


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
    from db import claims

    logger = get_run_logger()
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
    try:
        found = discover_documents(inputs, ingestion, roots)
        request = RunRequest(
            params=params,
            ingestion=ingestion,
            overlay=overlay,
            recognition=recognition,
            output_dir=out,
            skip_processed=skip_processed,
        )
        summary = run_documents(
            found,
            request,
            engine=engine,
            info=info,
            hooks=_FlowHooks(params).hooks(),
            database=mask_url(url),
            flow_run_id=str(flow_run.get_id()) if flow_run.get_id() else None,
            stale_after=stale_after,
        )
    finally:
        engine.dispose()
    summary.flow_run_url = _flow_run_url()
    artifacts.run_table(summary)
    return summary
