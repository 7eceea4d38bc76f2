"""The page stream: every page of a run's documents through one pipeline.

    reader processes -> detector (this thread) -> writer threads -> recognition processes
                                                -> render threads

Documents are claimed in order, a few ahead on a claims thread (``CLAIM_AHEAD``), and opened
as the readers need work; their pages reach the detector as they are read, mixed across
documents, in batches of pages of one padded size. The detector is never kept waiting for a
batch to fill: when no page is ready it takes what there is. Memory is bounded by
``max_in_flight`` pages, counted from a slice's submission to the end of its pages' writes,
whatever the number or size of the documents.

Everything that touches Prefect, logs or progress bars goes through :class:`Hooks` and runs
on this thread, so the driver (the flow, or the CLI without a server) decides what a batch
of detection or a finished document means to it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from craft import DetectorParams, PageResult
from craft.preprocess import padded_size
from db.claims import Claim
from db.models import DocumentStatus
from ingest import Document, DocumentError, IngestOptions, Page, PageError
from pipeline.documents import DocumentState, claimed_pages, selected_pages
from pipeline.options import OverlayOptions
from pipeline.rasterize import LoadedSlice, Rasterizer
from pipeline.render import overlay_name, render_overlay
from pipeline.store import ResultsStore
from pipeline.summary import DocumentSummary

if TYPE_CHECKING:
    from recognize import RecognitionPool

__all__ = ["Hooks", "PageStream", "StageSeconds", "StreamSettings"]

SLICE_PAGES = 4  # pages per reader job: a PDF's pages render in one poppler call
CLAIM_AHEAD = 4  # documents claimed before the stream needs them


def _log(level: int, message: str, *args: object, outcome: bool = False) -> None:
    logging.getLogger("ocrflow.pipeline").log(level, message, *args)


def _no_total(pages: int) -> None:
    return None


def _no_page(source: str, page_number: int, ok: bool) -> None:
    return None


def _no_document(summary: DocumentSummary, thumbnail_uri: str | None) -> None:
    return None


@dataclass
class Hooks:
    """What the driver plugs into the stream; all are called on the stream's thread.

    ``detect`` runs one batch (the flow makes it a Prefect task, the CLI calls the predictor);
    ``planned`` gets the number of selected pages before any is read, ``page`` is told about
    every one of them once (progress); ``document`` about every
    document when it is finished; ``log`` gets the run's messages (``outcome``: the one line
    per document).
    """

    detect: Callable[[list[Page]], list[PageResult]]
    planned: Callable[[int], None] = _no_total
    page: Callable[[str, int, bool], None] = _no_page
    document: Callable[[DocumentSummary, str | None], None] = _no_document
    log: Callable[..., None] = field(default=_log)


@dataclass(frozen=True)
class StreamSettings:
    """How the stream treats pages (fixed for a run)."""

    params: DetectorParams
    ingestion: IngestOptions
    overlay: OverlayOptions
    output_dir: Path
    skip_processed: bool = True
    stale_after: timedelta = timedelta(minutes=10)
    max_in_flight: int = 0  # 0: enough for two detector calls and the readers' slices
    # Batches per detector call: one task run per call in the flow, and the predictor
    # post-processes a call's pages while its next batch runs (post_threads).
    batches_per_call: int = 4
    writer_threads: int = 2
    render_threads: int = 2

    def in_flight_limit(self, readers: int) -> int:
        """Pages held at once: two detector calls plus a slice per reader and one spare."""
        auto = 2 * self.params.batch_size * self.batches_per_call + SLICE_PAGES * (readers + 1)
        return self.max_in_flight or auto


@dataclass
class StageSeconds:
    """Seconds spent per stage over the run: what each stage costs per page.

    ``read`` is reader-process CPU time; ``detect`` is the detector's wall time (its engine
    has threads of its own); ``register``, ``store`` and ``render`` are CPU time of the
    threads doing them. Divided by pages, they say which stage would limit a faster detector.
    """

    read: float = 0.0
    register: float = 0.0
    detect: float = 0.0
    store: float = 0.0
    render: float = 0.0
    pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage`` (thread-safe)."""
        with self._lock:
            setattr(self, stage, getattr(self, stage) + seconds)

    def as_dict(self) -> dict[str, float]:
        """Stage -> seconds, plus ``pages`` detected."""
        keys = ("read", "register", "detect", "store", "render", "pages")
        return {k: float(getattr(self, k)) for k in keys}


@dataclass(eq=False)
class _Slice:
    state: DocumentState
    numbers: list[int]
    options: IngestOptions
    future: Future[LoadedSlice]


@dataclass(frozen=True)
class _Claimed:
    """A document's claim, made ahead: its id, the claim, whether its pages are all done."""

    doc_id: int
    claim: Claim
    all_done: bool


@dataclass(eq=False)
class _Ready:
    state: DocumentState
    page: Page
    page_id: int
    key: tuple[int, int]


class PageStream:
    """Runs documents' pages through reading, detection and writing; see the module doc."""

    def __init__(
        self,
        store: ResultsStore,
        settings: StreamSettings,
        hooks: Hooks,
        *,
        readers: RecognitionPool | None = None,
        reread: dict[int, int] | None = None,
        rasterizer: Rasterizer | None = None,
    ) -> None:
        self.store, self.settings, self.hooks, self.recognition = store, settings, hooks, readers
        self.reread = reread or {}
        self._reread_documents = set(self.reread.values())
        self._rasterizer = rasterizer
        self.stages = StageSeconds()
        self._slices: deque[_Slice] = deque()
        self._ready: list[_Ready] = []
        self._in_flight = 0  # pages read or being read, detected or not, not yet written
        self._lock = threading.Lock()
        self._poke = threading.Event()  # set when a slice is read or a page's writes end
        self._error: BaseException | None = None
        self._open: list[DocumentState] = []
        self._writers = ThreadPoolExecutor(settings.writer_threads, "ocrflow-write")
        # Documents are claimed a few ahead on a thread of their own, so the claim's round
        # trips (several per document) are not paid on this thread, page by page.
        self._claims = ThreadPoolExecutor(1, "ocrflow-claim")
        self._claiming: deque[tuple[int, Document, int | DocumentError, Future[_Claimed]]]
        self._claiming = deque()
        self._renderers = ThreadPoolExecutor(settings.render_threads, "ocrflow-render")

    # -- the loop -------------------------------------------------------------------------

    def run(
        self, documents: Sequence[tuple[Document, int | DocumentError]]
    ) -> list[DocumentSummary]:
        """Process the documents (each with its page count, or why it cannot be read);
        their summaries, in the order given."""
        own = self._rasterizer is None
        rasterizer = self._rasterizer or Rasterizer()
        limit = self.settings.in_flight_limit(rasterizer.workers)
        queue = deque(enumerate(documents))
        results: dict[int, DocumentSummary] = {}
        order: dict[int, int] = {}  # id(state) -> index
        try:
            while True:
                self._raise_worker_error()
                # Open documents and read their slices while the page budget allows.
                while queue or self._claiming or any(s.to_read for s in self._open):
                    state = next((s for s in self._open if s.to_read and not s.abandoned), None)
                    if state is None:
                        self._claim_ahead(queue)
                        if not self._claiming:
                            break
                        index, document, count, claimed = self._claiming.popleft()
                        opened = self._open_document(document, count, claimed.result())
                        if isinstance(opened, DocumentSummary):
                            results[index] = opened
                            continue
                        order[id(opened)] = index
                        self._open.append(opened)
                        continue
                    numbers = state.to_read[0]
                    if self._in_flight and self._in_flight + len(numbers) > limit:
                        break
                    state.to_read.popleft()
                    self._submit(rasterizer, state, numbers)
                self._close_finished(results, order)
                if self._slices and self._slices[0].future.done():
                    self._take(rasterizer, self._slices.popleft())
                    continue
                batch = self._next_batch(flush=not self._slices or not self._full_batch_soon())
                if batch:
                    self._detect(batch)
                    continue
                if not (self._slices or self._open or queue or self._claiming):
                    break
                self._poke.wait(timeout=1.0)
                self._poke.clear()  # then look again at everything: no wake-up is lost
        finally:
            self._claims.shutdown(wait=True, cancel_futures=True)
            self._writers.shutdown(wait=True)
            self._renderers.shutdown(wait=True)
            if own:
                rasterizer.close()
        self._raise_worker_error()
        self._close_finished(results, order)
        return [results[i] for i in sorted(results)]

    def _release(self, pages: int) -> None:
        """Pages leave the stream (written, skipped or failed): room for more reading."""
        with self._lock:
            self._in_flight -= pages
        self._poke.set()

    # -- documents ------------------------------------------------------------------------

    def _claim_ahead(self, queue: deque[tuple[int, tuple[Document, int | DocumentError]]]) -> None:
        """Start claiming the next documents (up to ``CLAIM_AHEAD`` waiting) on the claims
        thread, in the given order."""
        while queue and len(self._claiming) < CLAIM_AHEAD:
            index, (document, count) = queue.popleft()
            claimed = self._claims.submit(self._claim, document, count)
            self._claiming.append((index, document, count, claimed))

    def _claim(self, document: Document, count: int | DocumentError) -> _Claimed:
        """On the claims thread: upsert and claim the document and, if it is ours, whether
        its selected pages are all done already (the ``skip_processed`` shortcut)."""
        opts = self.settings.ingestion
        known = count if isinstance(count, int) else None
        doc_id, claim = self.store.claim(
            document, known, self.settings.stale_after, claimed_pages(opts)
        )
        done = False
        # A page whose text write a kill cut off is not done while reading is on.
        shortcut = self.settings.skip_processed and doc_id not in self._reread_documents
        if claim.taken and isinstance(count, int) and shortcut:
            done = self.store.document_done(doc_id, selected_pages(count, opts))
        return _Claimed(doc_id, claim, done)

    def _open_document(
        self, document: Document, count: int | DocumentError, claimed: _Claimed
    ) -> DocumentState | DocumentSummary:
        """A claimed document: a state to stream, or the summary of one already finished."""
        opts = self.settings.ingestion
        summary = DocumentSummary(source=document.path, sha256=document.document_id, status="done")
        doc_id, claim = claimed.doc_id, claimed.claim
        if not claim.taken:
            self.hooks.log(
                logging.INFO,
                "%s: claimed by run %d (still running): left to it",
                document.path,
                claim.holder_run_id,
            )
            numbers = selected_pages(count, opts) if isinstance(count, int) else []
            for n in numbers:
                self.hooks.page(document.path, n, True)
            summary.status, summary.claimed_by = "claimed", claim.holder_run_id
            summary.pages = summary.pages_skipped = len(numbers)
            return self._document_closed(summary, None)
        if claim.taken_over_from is not None:
            self.hooks.log(logging.WARNING, "%s: claim taken over: %s", document.path, claim.reason)
        if isinstance(count, DocumentError):
            self.store.finish_document(doc_id, DocumentStatus("failed"), count.message)
            summary.status, summary.error = "failed", count.message
            return self._document_closed(summary, None)
        numbers = selected_pages(count, opts)
        summary.pages = len(numbers)
        if claimed.all_done:
            self.store.finish_document(doc_id, DocumentStatus("done"))
            for n in numbers:
                self.hooks.page(document.path, n, True)
            summary.status, summary.pages_skipped = "skipped", len(numbers)
            return self._document_closed(summary, None)
        state = DocumentState(document, doc_id, numbers, summary)
        state.plan(SLICE_PAGES)
        return state

    def _close_finished(self, results: dict[int, DocumentSummary], order: dict[int, int]) -> None:
        for state in [s for s in self._open if s.finished]:
            self._open.remove(state)
            summary = state.close()
            self.store.finish_document(state.doc_id, DocumentStatus(summary.status), summary.error)
            results[order[id(state)]] = self._document_closed(summary, state.thumbnail_uri)

    def _document_closed(self, summary: DocumentSummary, thumb: str | None) -> DocumentSummary:
        """A document is over: finished (``store.finish_document`` set its status and released its
        claim) or left to the run that holds it."""
        self.hooks.document(summary, thumb)
        return summary

    # -- reading --------------------------------------------------------------------------

    def _submit(self, rasterizer: Rasterizer, state: DocumentState, numbers: list[int]) -> None:
        opts = self.settings.ingestion.model_copy(
            update={"first_page": numbers[0], "last_page": numbers[-1]}
        )
        future = rasterizer.submit(state.document, opts)
        future.add_done_callback(lambda _: self._poke.set())
        state.reading += 1
        with self._lock:
            self._in_flight += len(numbers)
        self._slices.append(_Slice(state, numbers, opts, future))

    def _take(self, rasterizer: Rasterizer, item: _Slice) -> None:
        """A read slice: its pages registered and queued for detection, or its errors kept."""
        state, numbers = item.state, item.numbers
        loaded = rasterizer.result(item.future, state.document, item.options)
        self.stages.add("read", loaded.cpu_s)
        state.work_s += loaded.cpu_s
        queued = 0
        t0 = time.thread_time()
        try:
            if state.abandoned:
                return
            items = loaded.items
            if len(items) == 1 and isinstance(items[0], DocumentError):
                for n in state.fail_whole(items[0].message, numbers[0]):
                    self.hooks.page(state.document.path, n, False)  # the bar still ends
                return
            for page in items:
                if isinstance(page, PageError):
                    self._page_failed(state, page.page_number or 0, page.message)
                    continue
                assert isinstance(page, Page)
                page_id, done = self.store.register_page(state.doc_id, page)
                if done and self.settings.skip_processed and page_id not in self.reread:
                    state.summary.pages_skipped += 1
                    self.hooks.page(state.document.path, page.page_number, True)
                    continue
                p = self.settings.params
                key = padded_size(page.height, page.width, p.width, p.mag_ratio)
                self._ready.append(_Ready(state, page, page_id, key))
                state.page_queued()
                queued += 1
        finally:
            self.stages.add("register", time.thread_time() - t0)
            state.reading -= 1
            self._release(len(numbers) - queued)

    def _page_failed(self, state: DocumentState, page_number: int, message: str) -> None:
        self.store.page_failed(state.doc_id, page_number, message)
        state.summary.pages_failed += 1
        state.summary.error = state.summary.error or message
        self.hooks.page(state.document.path, page_number, False)

    # -- detection ------------------------------------------------------------------------

    def _full_batch_soon(self) -> bool:
        """Whether waiting for the slice being read could fill a batch: only when a batch
        holds more than one page and fewer are ready (else detect what is ready now)."""
        size = self.settings.params.batch_size
        return size > 1 and len(self._ready) < size

    def _next_batch(self, flush: bool) -> list[_Ready]:
        """The pages for one detector call: full batches (``batch_size`` pages of one padded
        size) first, up to ``batches_per_call`` of them; with ``flush``, whatever is ready
        up to that many pages (the predictor groups them by size itself)."""
        if not self._ready:
            return []
        size = self.settings.params.batch_size
        limit = size * self.settings.batches_per_call
        groups: dict[tuple[int, int], list[_Ready]] = {}
        for r in self._ready:
            groups.setdefault(r.key, []).append(r)
        call: list[_Ready] = []
        for group in groups.values():
            full = len(group) - len(group) % size
            call += group[: min(full, limit - len(call))]
        if not call and not flush:
            return []
        if flush:
            taken = {id(r) for r in call}
            call += [r for r in self._ready if id(r) not in taken][: limit - len(call)]
        taken = {id(r) for r in call}
        self._ready = [r for r in self._ready if id(r) not in taken]
        return call

    def _detect(self, batch: list[_Ready]) -> None:
        t0 = time.perf_counter()
        try:
            results = self.hooks.detect([r.page for r in batch])
        except Exception as exc:
            for r in batch:
                where = f"{r.state.document.path}, page {r.page.page_number}"
                self._page_failed(r.state, r.page.page_number, f"{where}: detection failed: {exc}")
                r.state.page_finished()
                self._release(1)
            return
        finally:
            elapsed = time.perf_counter() - t0
            self.stages.add("detect", elapsed)
            for r in batch:
                r.state.work_s += elapsed / len(batch)
        self.stages.add("pages", len(batch))
        for r, result in zip(batch, results, strict=True):
            state = r.state
            state.summary.regions += len(result.regions)
            state.scores.extend(reg.score for reg in result.regions)
            self.hooks.page(state.document.path, r.page.page_number, True)
            self._hand_on(r, result)

    # -- writing, reading text, rendering -------------------------------------------------

    def _hand_on(self, ready: _Ready, result: PageResult) -> None:
        """Queue the page's writes (then its recognition) and its overlay; the page leaves
        the budget when all are done."""
        state, page = ready.state, ready.page
        overlay = self.settings.overlay
        jobs = 2 if overlay.enabled else 1
        remaining = [jobs]
        lock = threading.Lock()

        def one_done(_: object = None) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                state.page_finished()
                self._release(1)

        self._guarded(self._writers, one_done, self._store, ready, result)
        if overlay.enabled:
            name = overlay_name(state.document, page.page_number, overlay.image_format)
            path = self.settings.output_dir / name
            thumb = overlay.thumbnail_side if not state.summary.overlays else None
            state.summary.overlays.append(str(path))
            self._guarded(self._renderers, one_done, self._render, state, page, result, path, thumb)

    def _guarded(
        self,
        pool: ThreadPoolExecutor,
        done: Callable[[], None],
        job: Callable[..., Any],
        *args: Any,
    ) -> None:
        """Run ``job`` on ``pool``; its failure stops the run (raised on the stream's thread),
        and ``done`` is called whatever happens, so the stream never waits for it forever."""

        def run() -> None:
            try:
                job(*args, done)
            except BaseException as exc:
                self._error = self._error or exc
                done()

        pool.submit(run)

    def _store(self, ready: _Ready, result: PageResult, done: Callable[[], None]) -> None:
        t0 = time.thread_time()
        orientation = self.settings.params.detect_orientation
        self.store.store_regions(ready.page_id, result, orientation)
        self.stages.add("store", time.thread_time() - t0)
        if self.recognition is None or not result.regions:
            done()
            return
        reading = self.recognition.submit(ready.page.image, result.regions)

        def write_texts(f: Future[Any]) -> None:
            def job(_: Callable[[], None]) -> None:
                self.store.store_texts(ready.page_id, f.result())
                done()

            self._guarded(self._writers, done, job)

        reading.add_done_callback(write_texts)

    def _render(
        self,
        state: DocumentState,
        page: Page,
        result: PageResult,
        path: Path,
        thumb: int | None,
        done: Callable[[], None],
    ) -> None:
        t0 = time.thread_time()
        overlay = self.settings.overlay
        drawn = render_overlay(
            page.image, result.regions, path, overlay.bgr(), overlay.line_width, thumb
        )
        if drawn.thumbnail_uri and state.thumbnail_uri is None:
            state.thumbnail_uri = drawn.thumbnail_uri
        self.stages.add("render", time.thread_time() - t0)
        done()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error
