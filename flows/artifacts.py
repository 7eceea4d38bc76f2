"""Prefect artifacts of a run: progress, a table of documents, a thumbnail per document.

Full-size overlays stay on disk; artifacts only hold small data (the thumbnail data URI is
bounded by ``tasks.render.MAX_DATA_URI_BYTES``) because Prefect stores them in its database.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from flows.summary import DocumentSummary, RunSummary

__all__ = [
    "document_markdown",
    "overlay_link",
    "run_table",
    "start_progress",
    "update_progress",
]


def start_progress() -> UUID:
    """Progress artifact at 0 %, updated as pages finish."""
    artifact_id = create_progress_artifact(
        progress=0.0, key="ocr-progress", description="Pages finished in this run"
    )
    assert isinstance(artifact_id, UUID)  # sync context: never a coroutine
    return artifact_id


def update_progress(artifact_id: UUID, done: int, total: int) -> None:
    """Set the progress artifact to ``done / total``."""
    update_progress_artifact(artifact_id=artifact_id, progress=min(100.0, 100.0 * done / total))


def document_key(summary: DocumentSummary) -> str:
    """Artifact keys allow lowercase letters, digits and dashes only."""
    return f"ocr-doc-{(summary.sha256 or 'unknown')[:16]}"


def document_markdown(summary: DocumentSummary, thumbnail_uri: str | None) -> None:
    """A markdown card: status, counts and the first page's overlay thumbnail inline."""
    lines = [
        f"### {Path(summary.source).name}",
        "",
        f"- status: **{summary.status}**, pages: {summary.pages}, regions: {summary.regions}",
        f"- sha256: `{summary.sha256}`",
    ]
    if summary.overlays:
        lines.append(f"- full-size overlays: `{Path(summary.overlays[0]).parent}`")
    if summary.error:
        lines.append(f"- error: {summary.error}")
    if thumbnail_uri:
        lines += ["", f"![overlay of page 1]({thumbnail_uri})"]
    create_markdown_artifact(
        key=document_key(summary), markdown="\n".join(lines), description=summary.source
    )


def run_table(result: RunSummary) -> None:
    """One row per document: pages, regions, mean score, seconds per page, error."""
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
        }
        for d in result.documents
    ]
    create_table_artifact(
        key="ocr-documents", table=rows, description=f"Run {result.run_id}: documents"
    )


def overlay_link(folder: Path) -> None:
    """Where the full-size overlays are (a file URI: open it on the worker's machine)."""
    create_link_artifact(
        key="ocr-overlays", link=folder.as_uri(), link_text=str(folder),
        description="Full-size overlays on the worker's disk",
    )  # fmt: skip
