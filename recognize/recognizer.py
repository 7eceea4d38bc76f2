"""Read a page's regions, in this process or in a pool of worker processes.

:func:`recognize_page` crops every region upright (:mod:`recognize.crop`) and reads it with this
process's Tesseract engine (:mod:`recognize.engine`). :class:`RecognitionPool` spreads pages
over worker processes, because one Tesseract read uses one core and pages are independent:
with 2 workers both cores are busy. Memory stays bounded: at most ``max_pending`` pages are in
flight (the caller's iterator is not drained ahead), pages travel as grayscale, and workers are
replaced after ``max_tasks_per_child`` pages so a slow leak in the C library cannot grow.

Workers are forked from a forkserver that has imported only this module (spawned where there
is no forkserver), never from the parent itself: the parent may hold threads (Prefect, ONNX
Runtime), and a fork of a threaded process can deadlock. Like spawn, the forkserver still runs
the parent's ``__main__`` module in each worker (that is how multiprocessing finds functions
defined there), so an entry point should import heavy modules (torch) lazily: with torch
imported at the top of ``__main__``, a worker peaks near 280 MiB instead of about 70. Regions
travel as plain tuples, so workers never import the detector.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import NamedTuple, Protocol

import cv2
import numpy as np

from recognize.crop import DEFAULT_PADDING, MIN_TEXT_HEIGHT, crop_region, quarter_turns
from recognize.engine import Mode, TesseractEngine, get_engine

__all__ = [
    "PageJob",
    "Recognition",
    "RecognitionPool",
    "RegionLike",
    "mode_for",
    "recognize_page",
]

Polygon = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]


class RegionLike(Protocol):
    """What a region must offer; :class:`craft.types.Region` fits."""

    @property
    def polygon(self) -> Sequence[tuple[float, float]]:
        """4 corners clockwise from the top-left-most one."""
        ...

    @property
    def score(self) -> float:
        """Detection score in [0, 1]."""
        ...


class Recognition(NamedTuple):
    """Text read in one region and Tesseract's mean word confidence in [0, 1]."""

    text: str
    confidence: float


class PageJob(NamedTuple):
    """One page for :meth:`RecognitionPool.map`: the image and its regions."""

    image: np.ndarray
    regions: Sequence[RegionLike]


def mode_for(with_refiner: bool) -> Mode:
    """Tesseract mode for the detector's output: refined regions are lines, others words."""
    return "line" if with_refiner else "word"


def _read(engine: TesseractEngine, crop: np.ndarray, mode: Mode) -> Recognition:
    best = Recognition("", 0.0)
    for view in quarter_turns(crop):
        text, confidence = engine.read(view, mode)
        if text and (not best.text or confidence > best.confidence):
            best = Recognition(text, confidence)
    return best


def recognize_page(
    image: np.ndarray,
    regions: Sequence[RegionLike],
    *,
    mode: Mode = "line",
    languages: str = "eng",
    min_score: float = 0.0,
    padding: float = DEFAULT_PADDING,
    min_text_height: float = MIN_TEXT_HEIGHT,
    engine: TesseractEngine | None = None,
) -> list[Recognition | None]:
    """Read every region of one page.

    Args:
        image: the page (HxWx3 BGR or HxW gray uint8) the regions were detected on.
        regions: the detector's regions, e.g. ``PageResult.regions``.
        mode: ``"line"`` for refined (line) regions, ``"word"`` for word regions; see
            :func:`mode_for`.
        languages: Tesseract languages, e.g. ``"eng"`` or ``"eng+deu"``.
        min_score: regions with a detection score below this are not read (``None``).
        padding: crop margin as a fraction of the text height.
        min_text_height: smaller text is scaled up to this height (pixels) before reading.
        engine: an engine to use instead of this process's :func:`get_engine`.

    Returns:
        One entry per region, in the regions' order (so index i is ``region_index`` i):
        a :class:`Recognition` (text may be empty), or ``None`` when the region was skipped.

    Raises:
        TesseractNotFoundError: Tesseract or the language data is missing.
    """
    engine = engine or get_engine(languages)
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    out: list[Recognition | None] = []
    for region in regions:
        if region.score < min_score:
            out.append(None)
            continue
        crop = crop_region(gray, region.polygon, padding=padding, min_text_height=min_text_height)
        out.append(_read(engine, crop, mode))
    return out


class _Plain(NamedTuple):
    polygon: Polygon
    score: float


def _plain(regions: Sequence[RegionLike]) -> list[_Plain]:
    out = []
    for r in regions:
        (a, b), (c, d), (e, f), (g, h) = r.polygon
        poly = (
            (float(a), float(b)),
            (float(c), float(d)),
            (float(e), float(f)),
            (float(g), float(h)),
        )
        out.append(_Plain(poly, float(r.score)))
    return out


_WORKER: dict[str, object] = {}


def _context() -> BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])  # not "__main__": see the module docstring
        return context
    return multiprocessing.get_context("spawn")


def _init_worker(languages: str, tessdata: str | None, settings: dict[str, object]) -> None:
    cv2.setNumThreads(1)
    _WORKER.clear()
    _WORKER.update(settings, engine=get_engine(languages, tessdata))


def _work(gray: np.ndarray, regions: list[_Plain]) -> list[Recognition | None]:
    engine = _WORKER["engine"]
    assert isinstance(engine, TesseractEngine)
    return recognize_page(
        gray,
        regions,
        mode=_WORKER["mode"],  # type: ignore[arg-type]
        min_score=float(_WORKER["min_score"]),  # type: ignore[arg-type]
        padding=float(_WORKER["padding"]),  # type: ignore[arg-type]
        min_text_height=float(_WORKER["min_text_height"]),  # type: ignore[arg-type]
        engine=engine,
    )


class RecognitionPool:
    """Worker processes that recognise whole pages in parallel, one engine each.

    Example:
        >>> with RecognitionPool(workers=2, mode="line") as pool:
        ...     for texts in pool.map(PageJob(p.image, r.regions) for p, r in pages):
        ...         ...  # list[Recognition | None], in page order
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        mode: Mode = "line",
        languages: str = "eng",
        min_score: float = 0.0,
        padding: float = DEFAULT_PADDING,
        min_text_height: float = MIN_TEXT_HEIGHT,
        tessdata: str | None = None,
        max_pending: int | None = None,
        max_tasks_per_child: int = 100,
    ) -> None:
        """Start the workers (each loads Tesseract once).

        Args:
            workers: processes; default ``os.cpu_count()``.
            mode, languages, min_score, padding, min_text_height: as in
                :func:`recognize_page`.
            tessdata: Tesseract data folder; default: found by :func:`find_tessdata`.
            max_pending: pages in flight at once in :meth:`map` (bounds memory);
                default ``2 * workers``.
            max_tasks_per_child: pages a worker reads before it is replaced.

        Raises:
            TesseractNotFoundError: checked here, in the parent, before any worker starts.
        """
        from recognize.engine import check_tesseract

        # Workers inherit it; it must be in the environment before they load libgomp, which a
        # spawned worker may do while re-importing the parent's __main__ (see engine._tesserocr).
        os.environ.setdefault("OMP_THREAD_LIMIT", "1")
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.max_pending = max(1, max_pending or 2 * self.workers)
        found: str | None = check_tesseract(languages, tessdata)  # fail here, not per worker
        settings: dict[str, object] = {
            "mode": mode,
            "min_score": min_score,
            "padding": padding,
            "min_text_height": min_text_height,
        }
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=_context(),
            initializer=_init_worker,
            initargs=(languages, found, settings),
            max_tasks_per_child=max_tasks_per_child,
        )

    def submit(
        self, image: np.ndarray, regions: Sequence[RegionLike]
    ) -> Future[list[Recognition | None]]:
        """Queue one page; the future gives :func:`recognize_page`'s list."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return self._executor.submit(_work, gray, _plain(regions))

    def map(self, jobs: Iterable[PageJob]) -> Iterator[list[Recognition | None]]:
        """Recognise pages in order, with at most ``max_pending`` pages in flight."""
        pending: deque[Future[list[Recognition | None]]] = deque()
        for job in jobs:
            pending.append(self.submit(job.image, job.regions))
            if len(pending) >= self.max_pending:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def peak_rss_mib(self) -> list[float]:
        """Peak resident memory of each live worker in MiB (Linux; [] elsewhere)."""
        out = []
        for pid in list(getattr(self._executor, "_processes", None) or {}):
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            out.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
        return out

    def close(self) -> None:
        """Stop the workers (waits for queued pages)."""
        self._executor.shutdown(wait=True, cancel_futures=False)

    def __enter__(self) -> RecognitionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
