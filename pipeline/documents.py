"""One document's progress through the page stream, in one object.

The stream opens a document (claims it, plans its slices), feeds its pages to the detector
mixed with other documents' pages, and closes it when its last page is written: this object
holds what that takes, so no function needs fifteen arguments.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from ingest import Document, IngestOptions
from ingest.limits import page_range
from pipeline.summary import DocumentSummary

__all__ = ["DocumentState", "claimed_pages", "outcome", "selected_pages"]


def selected_pages(count: int, options: IngestOptions) -> list[int]:
    """The page numbers the options select (the range was checked when pages were counted)."""
    first, last = page_range("", count, options)
    return list(range(first, last + 1))


def claimed_pages(options: IngestOptions) -> str:
    """The claim's page range: sibling page-range runs of one PDF must not exclude each other."""
    if options.first_page is None and options.last_page is None:
        return "all"
    return f"{options.first_page or 1}-{options.last_page or ''}"


def outcome(summary: DocumentSummary) -> str:
    """``done`` only when every selected page is there: ``failed`` when none is, else
    ``partial``, so an analyst's ``WHERE status = 'done'`` means the pages are in SQL."""
    if summary.status == "failed" or (summary.pages and summary.pages_failed >= summary.pages):
        return "failed"
    return "partial" if summary.pages_failed else "done"


@dataclass(eq=False)
class DocumentState:
    """A claimed document with pages still to read, detect or write."""

    document: Document
    doc_id: int
    numbers: list[int]
    summary: DocumentSummary
    to_read: deque[list[int]] = field(default_factory=deque)  # slices not yet submitted
    reading: int = 0  # slices submitted, not yet taken back
    pending: int = 0  # pages read and not yet finished (waiting for the detector, or written)
    abandoned: bool = False  # the document failed as a whole: later slices are dropped
    scores: list[float] = field(default_factory=list)
    thumbnail_uri: str | None = None
    work_s: float = 0.0  # its slices' reading and its pages' share of detector calls
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def plan(self, slice_pages: int) -> None:
        """Cut the selected pages into slices of ``slice_pages`` to read."""
        n = self.numbers
        self.to_read.extend(n[i : i + slice_pages] for i in range(0, len(n), slice_pages))

    def page_queued(self) -> None:
        """A read page waits for the detector."""
        with self._lock:
            self.pending += 1

    def page_finished(self) -> None:
        """A queued page is finished: written (from a writer thread), or failed."""
        with self._lock:
            self.pending -= 1

    @property
    def finished(self) -> bool:
        """Nothing of it left anywhere in the stream."""
        with self._lock:
            return not self.to_read and not self.reading and not self.pending

    def fail_whole(self, message: str, from_page: int) -> list[int]:
        """The document failed as a whole: what was not yet finished is lost; the pages from
        ``from_page`` on (to count as failed) are returned and no more slices are read."""
        self.abandoned = True
        self.to_read.clear()
        self.summary.status, self.summary.error = "failed", message
        return [n for n in self.numbers if n >= from_page]

    def close(self) -> DocumentSummary:
        """The finished document's summary, with its outcome, mean score and work time (not
        the wall time from open to close: in a stream documents overlap and wait their turn)."""
        s = self.summary
        s.mean_score = sum(self.scores) / len(self.scores) if self.scores else None
        s.seconds = self.work_s
        s.status = outcome(s)
        return s
