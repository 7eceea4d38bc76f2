"""Prefect artifacts of a run: progress, a table of documents, a card per document.

The Artifacts page lists keyed artifacts, one entry per key with its versions: so the keys
are few and fixed (``ocr-progress``, ``ocr-documents``; each run adds a version), and the
per-document cards are unkeyed artifacts of their flow run (its Artifacts tab), however many
documents an inbox brings. Full-size overlays stay on disk and are named by path, as text: a
``file://`` link opens nothing from the UI's page, and the card's thumbnail is embedded (its
data URI is bounded by ``pipeline.render.MAX_DATA_URI_BYTES``, as Prefect stores artifacts in its
database).
"""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from pipeline.summary import DocumentSummary, RunSummary

__all__ = [
    "DOCUMENTS_KEY",
    "PROGRESS_KEY",
    "document_line",
    "document_log_level",
    "document_markdown",
    "run_table",
    "start_progress",
    "update_progress",
]

PROGRESS_KEY = "ocr-progress"
DOCUMENTS_KEY = "ocr-documents"


def start_progress() -> UUID:
    """Progress artifact at 0 %, updated as pages finish."""
    artifact_id = create_progress_artifact(
        progress=0.0, key=PROGRESS_KEY, description="Pages finished in this run"
    )
    assert isinstance(artifact_id, UUID)  # sync context: never a coroutine
    return artifact_id


def update_progress(artifact_id: UUID, done: int, total: int) -> None:
    """Set the progress artifact to ``done / total``."""
    update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, 100.0 * done / total))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def document_line(summary: DocumentSummary) -> str:
    """The flow log's line for a document: status, pages, regions, s/page and the error."""
    name = Path(summary.source).name or summary.source
    if summary.status == "claimed":
        return f"{name}: claimed by run {summary.claimed_by} (still running), left to it"
    parts = [_plural(summary.pages, "page")]
    if summary.pages_failed:
        parts[0] += f" ({summary.pages_failed} failed)"
    if summary.pages_skipped:
        parts[0] += f" ({summary.pages_skipped} already done)"
    if summary.status != "skipped":
        parts.append(_plural(summary.regions, "region"))
    if summary.seconds_per_page is not None:
        parts.append(f"{summary.seconds_per_page:.2f} s/page")
    line = f"{name}: {summary.status}, {', '.join(parts)}"
    return f"{line}; error: {summary.error}" if summary.error else line


def document_log_level(summary: DocumentSummary) -> int:
    """INFO, or WARNING when the document or some of its pages failed."""
    return logging.WARNING if summary.error or summary.pages_failed else logging.INFO


def _overlay_folder(summary: DocumentSummary) -> str:
    return str(Path(summary.overlays[0]).parent) if summary.overlays else ""


def document_markdown(summary: DocumentSummary, thumbnail_uri: str | None) -> None:
    """An unkeyed markdown card of the run: status, counts, the first page's overlay inline."""
    lines = [
        f"### {Path(summary.source).name}",
        "",
        f"- status: **{summary.status}**, pages: {summary.pages}, regions: {summary.regions}",
        f"- source: `{summary.source}`",
        f"- sha256: `{summary.sha256}`",
    ]
    if summary.overlays:
        lines.append(f"- full-size overlays (on the worker): `{_overlay_folder(summary)}`")
    if summary.error:
        lines.append(f"- error: {summary.error}")
    if thumbnail_uri:
        lines += ["", f"![overlay of page 1]({thumbnail_uri})"]
    create_markdown_artifact(markdown="\n".join(lines), description=summary.source)


def run_table(result: RunSummary) -> None:
    """The run's keyed table: one row per document, with where its overlays are."""
    rows = [
        {
            "document": d.source,
            "status": d.status,
            "pages": d.pages,
            "failed pages": d.pages_failed,
            "regions": d.regions,
            "mean score": None if d.mean_score is None else round(d.mean_score, 3),
            "s/page": None if d.seconds_per_page is None else round(d.seconds_per_page, 2),
            "error": d.error or "",
            "overlays": _overlay_folder(d),
        }
        for d in result.documents
    ]
    where = f"; overlays under {result.output_dir} on the worker" if result.output_dir else ""
    create_table_artifact(
        key=DOCUMENTS_KEY,
        table=rows,
        description=f"Run {result.run_id}: {_plural(len(rows), 'document')}{where}",
    )
