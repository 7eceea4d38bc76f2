"""Ingestion tasks: thin Prefect wrappers over ``ingest``, where all the logic lives.

Errors are returned, not raised: a bad file or page is a result the flow records against
the document (and page), and the rest of the batch goes on. Only discovery touches the
filesystem in a way worth retrying.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from ingest import (
    Document,
    DocumentError,
    IngestError,
    IngestOptions,
    Page,
    count_pages,
    discover,
    iter_pages,
)
from ingest.limits import page_range
from tasks.names import document_label, options_label, run_name, task_run_namer

__all__ = ["count_document_pages", "discover_documents", "load_pages"]


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


@task(
    name="count-document-pages",
    task_run_name=task_run_namer("count pages", lambda p: document_label(p["document"].path)),
    cache_policy=NO_CACHE,
)
def count_document_pages(
    document: Document, options: IngestOptions | None = None
) -> int | DocumentError:
    """Page count (to plan page slices of big PDFs), or why the document cannot be read.

    The page range is checked here, before any page is read: a range past the document's end
    or longer than ``max_pages`` fails the document with that reason instead of selecting
    nothing and reporting it done.
    """
    try:
        count = count_pages(document, options)
        page_range(document.path, count, options or IngestOptions())
    except DocumentError as exc:
        return exc
    return count


@task(
    name="load-pages",
    task_run_name=task_run_namer("load", lambda p: options_label(p["document"], p.get("options"))),
    cache_policy=NO_CACHE,
)
def load_pages(
    document: Document, options: IngestOptions | None = None
) -> list[Page | IngestError]:
    """Rasterize a document, or its ``first_page..last_page`` slice, into BGR pages.

    The list holds the whole slice, so keep slices small for big PDFs (or stream with
    ``ingest.iter_pages`` inside the detection task). A broken page is a ``PageError`` in
    its place; a whole-document failure is the list's only element.
    """
    try:
        return list(iter_pages(document, options))
    except DocumentError as exc:
        return [exc]
