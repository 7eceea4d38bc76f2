"""Discovery as a Prefect task: what the run found is visible (and retried) in the UI.

Errors are returned, not raised: a bad file is a result the run records against it, and the
rest of the batch goes on. Pages are read by the page stream's reader processes
(:mod:`pipeline.rasterize`), not by tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from ingest import Document, DocumentError, IngestOptions, discover
from tasks.names import run_name, task_run_namer

__all__ = ["discover_documents"]


@task(
    name="discover-documents",
    task_run_name=task_run_namer("discover", lambda p: run_name(p["inputs"])),
    retries=2,
    retry_delay_seconds=[1, 5],
    cache_policy=NO_CACHE,
)
def discover_documents(
    inputs: list[str], options: IngestOptions | None = None, roots: Sequence[Path] | None = None
) -> list[Document | DocumentError]:
    """Expand files, folders and glob patterns into distinct documents, or their errors.

    With ``roots``, a file resolving outside them is an ``OutsideInputRootsError``, unread.
    """
    return list(discover(inputs, options, roots=roots))
