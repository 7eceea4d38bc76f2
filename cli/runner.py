"""Run the flow in this process for the CLI: quiet Prefect, a rich progress bar, tables.

Prefect is configured before it is imported: telemetry off (nothing leaves the machine) and
a startup timeout that a cold ephemeral server on a small machine can meet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.params import DetectorOptions
from flows.summary import RunSummary

if TYPE_CHECKING:
    from ingest import IngestOptions

__all__ = [
    "NothingToRunError",
    "configure_prefect",
    "preflight",
    "print_summary",
    "run_flow_with_progress",
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


def preflight(inputs: Sequence[str], ingestion: IngestOptions, database_url: str | None) -> str:
    """Check what needs no Prefect before starting it: readable inputs, then the database.

    Returns the database URL to use. A missing file or a database that does not answer is
    said in one line in a second, not after a temporary server's 10-20 s start-up.

    Raises:
        NothingToRunError: no input is a readable document.
        db.errors.DatabaseError: the database is unusable (bad URL, unreachable, no schema).
    """
    from db.migrate import open_results_database
    from db.settings import get_database_url
    from ingest import Document, discover

    found = list(discover(inputs, ingestion))
    if not any(isinstance(item, Document) for item in found):
        raise NothingToRunError([item.message for item in found if not isinstance(item, Document)])
    url = database_url or get_database_url()
    open_results_database(url).dispose()
    return url


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
    """Run ``ocr-documents`` with a progress bar (pages and pages/s), then print a summary.

    Raises:
        NothingToRunError, db.errors.DatabaseError: see :func:`preflight`; nothing ran.
    """
    from ingest import IngestOptions

    ingestion = ingestion or IngestOptions()
    url = preflight(inputs, ingestion, database_url)
    configure_prefect(verbose)
    # Through the environment, not a flow parameter: a password must never reach the UI.
    os.environ["OCRFLOW_DATABASE_URL"] = url
    from flows.ocr_documents import ocr_documents
    from flows.params import OverlayOptions, RecognitionOptions
    from flows.progress import PageEvent, hide_document_outcomes, listening

    if not verbose:
        hide_document_outcomes()

    columns = (
        TextColumn("[bold]pages"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} pages/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet) as bar:
        task_id = bar.add_task("pages", total=None, rate="-")

        def on_page(event: PageEvent) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{event.pages_done / elapsed:.2f}" if elapsed > 0 else "-"
            bar.update(task_id, completed=event.pages_done, total=event.pages_total, rate=rate)

        if not os.environ.get("PREFECT_API_URL") and not quiet:
            console.print("[dim]starting a temporary local Prefect server (~10-20 s)...[/dim]")
        with listening(on_page):
            summary = ocr_documents(
                inputs=list(inputs),
                detector=detector,
                ingestion=ingestion,
                overlay=OverlayOptions(enabled=overlays),
                recognition=RecognitionOptions(**(recognition or {})),
                output_dir=str(output),
                skip_processed=skip_processed,
            )
    print_summary(summary, quiet=quiet)
    return summary


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
