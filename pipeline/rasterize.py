"""Rasterizing and decoding in worker processes: the CPU-bound start of the page stream.

A slice (a few pages of one document) is read in a worker and comes back as pages (or the
errors of its pages): the parent never decodes, so a slow PDF does not hold up detection, and
a decoder that crashes on a hostile file takes a worker down, not the run. A slice whose
worker died is read once more in a fresh pool (the crash may have been another slice's); if
it kills that one too, its pages fail with the reason.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import resource
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing.context import BaseContext

from ingest import Document, DocumentError, IngestError, IngestOptions, Page, iter_pages

__all__ = ["LoadedSlice", "Rasterizer", "default_workers", "load_slice"]

logger = logging.getLogger("ocrflow.pipeline")


@dataclass(slots=True)
class LoadedSlice:
    """What a worker read: pages or page errors in page order, or the document's error alone;
    ``cpu_s`` is the CPU time it took, the worker's and poppler's (per-stage accounting)."""

    items: list[Page | IngestError] = field(default_factory=list)
    cpu_s: float = 0.0


def load_slice(document: Document, options: IngestOptions) -> LoadedSlice:
    """Read ``options.first_page..last_page`` of ``document`` (runs in a worker process)."""
    t0 = _cpu_seconds()
    try:
        items: list[Page | IngestError] = list(iter_pages(document, options))
    except DocumentError as exc:
        items = [exc]
    return LoadedSlice(items, _cpu_seconds() - t0)


def _cpu_seconds() -> float:
    """This process's CPU time plus its finished children's (poppler renders PDFs)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def default_workers() -> int:
    """Half the cores, one to eight: the other half post-processes (or runs the CPU
    detector); a GPU's 50+ pages/s need several readers, a 2-core machine one."""
    return max(1, min((os.cpu_count() or 2) // 2, 8))


def _context() -> BaseContext:
    # Not fork: the parent holds model threads (OpenMP, ORT) that a forked child would inherit
    # locked. The fork server starts clean and has ingest imported once for every worker.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["pipeline.rasterize"])
        return context
    return multiprocessing.get_context("spawn")


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one slice per worker; the workers are the parallelism


class Rasterizer:
    """A pool of reader processes; :meth:`submit` a slice, take its :class:`LoadedSlice`."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.workers, mp_context=_context(), initializer=_init_worker, max_tasks_per_child=200
        )

    def warm(self) -> None:
        """Start the workers now (they take a moment), e.g. while the model loads."""
        for _ in range(self.workers):
            self._pool.submit(os.getpid)

    def submit(self, document: Document, options: IngestOptions) -> Future[LoadedSlice]:
        """Queue a slice; a pool broken by an earlier crash is replaced first."""
        try:
            return self._pool.submit(load_slice, document, options)
        except BrokenProcessPool:
            self._restart()
            return self._pool.submit(load_slice, document, options)

    def result(
        self, future: Future[LoadedSlice], document: Document, options: IngestOptions
    ) -> LoadedSlice:
        """The slice, read again once in a fresh pool if its worker died."""
        try:
            return future.result()
        except BrokenProcessPool:
            logger.warning("%s: a reader process died; reading it again", document.path)
            self._restart()
            try:
                return self._pool.submit(load_slice, document, options).result()
            except BrokenProcessPool:
                self._restart()
                problem = "the page decoder crashed on it (its reader process died twice)"
                return LoadedSlice([DocumentError(document.path, problem)])

    def _restart(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._start()

    def close(self) -> None:
        """Stop the workers (queued slices are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
