"""``ocrflow run`` in this process: the page pipeline here, or the flow on a configured server.

Without a Prefect server configured, nothing would keep a temporary server's runs, so the
pipeline runs directly (no 10-20 s start-up). With one, Prefect is configured before it is
imported: telemetry off (nothing leaves the machine), quiet logs, the progress bar and tables.
"""

from __future__ import annotations

import logging
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.params import DetectorOptions
from pipeline.summary import RunSummary

if TYPE_CHECKING:
    from ingest import Document, DocumentError, IngestOptions
    from pipeline.options import OverlayOptions, RecognitionOptions

__all__ = [
    "NothingToRunError",
    "configure_prefect",
    "preflight",
    "print_summary",
    "run_flow_with_progress",
    "server_configured",
]

console = Console(stderr=True)


class NothingToRunError(Exception):
    """The run cannot start (no readable input): said before any server or model starts."""

    def __init__(self, messages: Sequence[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def configure_prefect(verbose: bool = False) -> None:
    """Defaults for running flows from the CLI; explicit environment settings win.

    The terminal shows the progress bar and the summary, which already name every document and
    error, plus the run's warnings (``--verbose``: its whole log). The temporary server's logs
    stay out: its services complain when it is stopped under them (events not flushed), which
    says nothing about the user's run.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO" if verbose else "WARNING")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING" if verbose else "CRITICAL")


def server_configured() -> bool:
    """Whether runs should go to a Prefect server: ``PREFECT_API_URL`` in the environment or
    in the active Prefect profile (read without importing Prefect, which takes seconds)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml"))
    try:
        data = tomllib.loads(profiles.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    settings = data.get("profiles", {}).get(active, {})
    return bool(isinstance(settings, dict) and settings.get("PREFECT_API_URL"))


def preflight(
    inputs: Sequence[str], ingestion: IngestOptions, database_url: str | None
) -> tuple[str, list[Document | DocumentError]]:
    """Check what needs no Prefect before starting it: readable inputs, then the database.

    Returns the database URL to use and what discovery found (the run reads it: the inputs
    are hashed once). A missing file or a database that does not answer is said in one line
    in a second, before any model loads or server starts.

    Raises:
        NothingToRunError: no input is a readable document.
        db.errors.DatabaseError: the database is unusable (bad URL, unreachable, no schema).
    """
    from db.migrate import open_results_database
    from db.settings import get_database_url
    from ingest import Document, discover
    from ingest.roots import check_inputs

    roots = check_inputs(inputs, from_deployment=False)
    found = list(discover(inputs, ingestion, roots=roots))
    if not any(isinstance(item, Document) for item in found):
        raise NothingToRunError([item.message for item in found if not isinstance(item, Document)])
    url = database_url or get_database_url()
    open_results_database(url).dispose()
    return url, found


def run_flow_with_progress(
    inputs: Sequence[str],
    *,
    detector: DetectorOptions,
    database_url: str | None,
    output: Path,
    ingestion: IngestOptions | None = None,
    skip_processed: bool = True,
    overlays: bool = True,
    recognition: dict[str, Any] | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> RunSummary:
    """Run the documents with a progress bar (pages and pages/s), then print a summary.

    With a Prefect server configured the ``ocr-documents`` flow runs there (its runs, logs and
    artifacts stay, and the run's URL is printed); without one the same page pipeline runs
    right here, with the same claims, retries and rows, and no temporary server that would
    keep nothing.

    Raises:
        NothingToRunError, db.errors.DatabaseError: see :func:`preflight`; nothing ran.
    """
    from ingest import IngestOptions
    from pipeline.options import OverlayOptions, RecognitionOptions

    ingestion = ingestion or IngestOptions()
    url, found = preflight(inputs, ingestion, database_url)
    overlay = OverlayOptions(enabled=overlays)
    reading = RecognitionOptions(**(recognition or {}))
    columns = (
        TextColumn("[bold]pages"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} pages/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet) as bar:
        task_id = bar.add_task("pages", total=None, rate="-")

        def on_page(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{done / elapsed:.2f}" if elapsed > 0 else "-"
            bar.update(task_id, completed=done, total=total, rate=rate)

        job = _Job(detector, url, output, ingestion, skip_processed, overlay, reading, verbose)
        if server_configured():
            summary = _run_on_server(job, inputs, on_page)
        else:
            summary = _run_here(job, found, on_page)
    print_summary(summary, quiet=quiet)
    return summary


@dataclass(frozen=True)
class _Job:
    """What ``ocrflow run`` was asked to do, checked by :func:`preflight`."""

    detector: DetectorOptions
    url: str
    output: Path
    ingestion: IngestOptions
    skip_processed: bool
    overlay: OverlayOptions
    recognition: RecognitionOptions
    verbose: bool


def _run_here(
    job: _Job, found: list[Document | DocumentError], on_page: Callable[[int, int], None]
) -> RunSummary:
    """The page pipeline in this process: the predictor called directly, warnings to stderr."""
    from craft.zoo import craft_predictor
    from db.migrate import open_results_database
    from db.session import mask_url
    from pipeline.run import RunRequest, run_documents
    from pipeline.stream import Hooks

    params = job.detector.resolve()
    predictor = craft_predictor(params=params)
    pages = {"done": 0, "total": 1}

    def planned(total: int) -> None:
        pages["total"] = max(total, 1)

    def page(source: str, page_number: int, ok: bool) -> None:
        pages["done"] += 1
        on_page(pages["done"], pages["total"])

    def log(level: int, message: str, *args: object, outcome: bool = False) -> None:
        """The run's warnings (``--verbose``: everything, per-document lines too) to stderr."""
        if job.verbose or (level >= logging.WARNING and not outcome):
            print(f"{logging.getLevelName(level).lower()}: {message % args}", file=sys.stderr)

    engine = open_results_database(job.url)
    try:
        request = RunRequest(
            params=params,
            ingestion=job.ingestion,
            overlay=job.overlay,
            recognition=job.recognition,
            output_dir=job.output.resolve(),
            skip_processed=job.skip_processed,
        )
        return run_documents(
            found,
            request,
            engine=engine,
            info=predictor.info,
            hooks=Hooks(
                detect=lambda batch: predictor.predict([p.image for p in batch]),
                planned=planned,
                page=page,
                log=log,
            ),
            database=mask_url(job.url),
        )
    finally:
        engine.dispose()


def _run_on_server(
    job: _Job, inputs: Sequence[str], on_page: Callable[[int, int], None]
) -> RunSummary:
    """The ``ocr-documents`` flow, reported to the configured server."""
    configure_prefect(job.verbose)
    # Through the environment, not a flow parameter: a password must never reach the UI.
    os.environ["OCRFLOW_DATABASE_URL"] = job.url
    from flows.ocr_documents import ocr_documents
    from flows.progress import PageEvent, hide_document_outcomes, listening

    if not job.verbose:
        hide_document_outcomes()

    def on_event(event: PageEvent) -> None:
        on_page(event.pages_done, event.pages_total)

    with listening(on_event):
        return ocr_documents(
            inputs=list(inputs),
            detector=job.detector,
            ingestion=job.ingestion,
            overlay=job.overlay,
            recognition=job.recognition,
            output_dir=str(job.output),
            skip_processed=job.skip_processed,
        )


def print_summary(summary: RunSummary, *, quiet: bool = False) -> None:
    """A table of documents (not with ``quiet``) and, below it, every error in full.

    Errors go to stderr one per line, unwrapped whatever the terminal width, each naming its
    file once; with a server configured, the flow run's URL comes last.
    """
    if not quiet:
        _print_table(summary)
    for d in summary.failed:
        name = Path(d.source).name
        error = d.error or "failed"
        print(f"{name}: {error}" if d.source not in error else error, file=sys.stderr)
    if summary.flow_run_url:
        print(f"flow run: {summary.flow_run_url}", file=sys.stderr)


def _print_table(summary: RunSummary) -> None:
    table = Table(title=f"run {summary.run_id} ({summary.seconds:.1f} s) -> {summary.database}")
    for col in ("document", "status", "pages", "failed", "regions", "mean score", "s/page"):
        table.add_column(col, justify="left" if col in ("document", "status") else "right")
    for d in summary.documents:
        table.add_row(
            Path(d.source).name,
            d.status,
            str(d.pages),
            str(d.pages_failed),
            str(d.regions),
            "-" if d.mean_score is None else f"{d.mean_score:.3f}",
            "-" if d.seconds_per_page is None else f"{d.seconds_per_page:.2f}",
        )
    Console().print(table)
