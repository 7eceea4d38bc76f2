"""Run the flow in this process for the CLI: quiet Prefect, a rich progress bar, tables.

Prefect is configured before it is imported: telemetry off (nothing leaves the machine) and
a startup timeout that a cold ephemeral server on a small machine can meet.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flows.params import DetectorOptions
from flows.summary import RunSummary

__all__ = [
    "configure_prefect",
    "print_summary",
    "run_flow_with_progress",
]

console = Console(stderr=True)


def configure_prefect() -> None:
    """Defaults for running flows from the CLI; explicit environment settings win."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def run_flow_with_progress(
    inputs: Sequence[str],
    *,
    detector: DetectorOptions,
    database_url: str | None,
    output: Path,
    ingestion: dict[str, Any] | None = None,
    skip_processed: bool = True,
    overlays: bool = True,
    recognition: dict[str, Any] | None = None,
) -> RunSummary:
    """Run ``ocr-documents`` with a progress bar (pages and pages/s), then print a summary."""
    configure_prefect()
    if database_url:
        # Through the environment, not a flow parameter: a password must never reach the UI.
        os.environ["OCRFLOW_DATABASE_URL"] = database_url
    from flows.ocr_documents import ocr_documents
    from flows.params import OverlayOptions, RecognitionOptions
    from flows.progress import PageEvent, listening
    from ingest import IngestOptions

    columns = (
        TextColumn("[bold]pages"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} pages/s"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task_id = bar.add_task("pages", total=None, rate="-")

        def on_page(event: PageEvent) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{event.pages_done / elapsed:.2f}" if elapsed > 0 else "-"
            bar.update(task_id, completed=event.pages_done, total=event.pages_total, rate=rate)

        if not os.environ.get("PREFECT_API_URL"):
            console.print("[dim]starting a temporary local Prefect server (~10-20 s)...[/dim]")
        with listening(on_page):
            summary = ocr_documents(
                inputs=list(inputs),
                detector=detector,
                ingestion=IngestOptions(**{k: v for k, v in (ingestion or {}).items() if v}),
                overlay=OverlayOptions(enabled=overlays),
                recognition=RecognitionOptions(**(recognition or {})),
                output_dir=str(output),
                skip_processed=skip_processed,
            )
    print_summary(summary)
    return summary


def print_summary(summary: RunSummary) -> None:
    """A table of documents and, below it, every error in full."""
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
    for d in summary.failed:
        console.print(f"[red]{d.source}[/red]: {d.error}")
