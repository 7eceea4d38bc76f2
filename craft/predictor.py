"""``CraftPredictor``: BGR pages in, ``PageResult`` (rotated regions + timings) out."""

from __future__ import annotations

import time
import weakref
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from craft.backends import InferenceBackend, ScoreMaps, default_threads
from craft.blank import content_window, paste, worth_cropping
from craft.geometry import quads_to_regions, scale_quads, size_filter
from craft.linesplit import split_lines
from craft.orientation import page_orientation, regions_to_original, upright_page
from craft.params import DetectorParams
from craft.postprocess import detect_quads
from craft.preprocess import Prepared, check_page, padded_size, stack_pages
from craft.tighten import InkCrops, tighten_regions
from craft.types import PageResult, Region, StageTimings

if TYPE_CHECKING:
    from craft.post_processes import PostProcessPool

__all__ = [
    "CraftPredictor",
    "FirstPass",
    "ModelInfo",
    "default_post_processes",
    "first_pass",
    "link_map",
    "maps_to_regions",
]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What produced a result: recorded with every run so results stay reproducible."""

    model: str
    model_sha256: str
    refiner: str | None
    refiner_sha256: str | None
    backend: str
    device: str
    precision: str


class CraftPredictor:
    """Runs CRAFT (+ LinkRefiner) on pages of any sizes and returns rotated regions.

    Build one with ``craft.zoo.craft_predictor``; it holds the loaded model, so reuse it.

    ``post_processes`` / ``post_threads``: worker processes (``craft.post_processes``) or
    threads that post-process pages (maps to regions, line splitting, tight boxes,
    orientation), one page per task, while the calling thread runs the next forward pass.
    By default (both None) a CUDA predictor uses a process per core but one
    (:func:`default_post_processes`): a page's post-processing costs more CPU than its
    forward pass costs the GPU, and it holds the GIL most of the time, so threads stay near
    one core; on CPU everything runs inline, the engine already using every core.
    ``overlap`` is the older on/off form of ``post_threads``. Call :meth:`close` to stop
    the processes before the predictor goes.

    ``blank_skip``: run the network on each page's content box only (``craft.blank``) where
    that saves enough (``blank.worth_cropping``), one page per forward pass (windows differ
    per page); ``precision="fast"`` turns it on.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        params: DetectorParams,
        info: ModelInfo,
        overlap: bool | None = None,
        blank_skip: bool = False,
        post_threads: int | None = None,
        post_processes: int | None = None,
    ) -> None:
        self.backend = backend
        self.params = params
        self.info = info
        self.blank_skip = blank_skip
        cuda = info.device.startswith("cuda")
        if post_processes is None:
            by_default = cuda and overlap is None and post_threads is None
            post_processes = default_post_processes() if by_default else 0
        if post_threads is None:
            on = cuda if overlap is None else overlap
            post_threads = default_threads() if on and not post_processes else 0
        if post_threads < 0 or post_processes < 0:
            raise ValueError(
                f"post_threads and post_processes must be >= 0, got {post_threads}, "
                f"{post_processes}"
            )
        if post_threads and post_processes:
            raise ValueError("post-process on threads or on processes, not both")
        self.post_threads = post_threads
        self.post_processes = post_processes
        self._processes: PostProcessPool | None = None

    @property
    def overlap(self) -> bool:
        """Whether post-processing runs beside the forward passes (threads or processes)."""
        return self.post_threads > 0 or self.post_processes > 0

    @overlap.setter
    def overlap(self, on: bool) -> None:
        self.post_threads = (self.post_threads or default_threads()) if on else 0
        if on and self.post_processes:
            self.post_threads = 0  # already beside the forward passes, in processes
        elif not on:
            self.close()
            self.post_processes = 0

    def close(self) -> None:
        """Stop the post-processing processes, if any ran (they start again when needed)."""
        pool, self._processes = self._processes, None
        if pool is not None:
            pool.close()

    def _process_pool(self) -> PostProcessPool:
        if self._processes is None:
            from craft.post_processes import PostProcessPool

            self._processes = PostProcessPool(self.params, self.post_processes)
            weakref.finalize(self, self._processes.close)
        return self._processes

    def __call__(self, pages: Sequence[np.ndarray]) -> list[PageResult]:
        """Alias of :meth:`predict`."""
        return self.predict(pages)

    def predict(self, pages: Sequence[np.ndarray]) -> list[PageResult]:
        """Detect text on each page (3-channel uint8 BGR arrays of any sizes).

        Pages are grouped by padded input size, then run ``batch_size`` at a time: a page
        padded beyond its own 32-aligned size would see different borders than the reference,
        so only pages with equal padded sizes share a forward pass.
        """
        [results] = self.predict_stream([pages])
        return results

    def predict_stream(self, calls: Iterable[Sequence[np.ndarray]]) -> Iterator[list[PageResult]]:
        """:meth:`predict` of each item of ``calls``, in order, lazily.

        With ``post_threads`` or ``post_processes``, the forward passes of later items run
        while earlier pages are still post-processed, so a caller that feeds batches one by
        one (a page stream across documents) keeps the engine busy; with :meth:`predict` per
        batch, every call would wait for its own post-processing. Memory stays bounded:
        before each forward pass, the oldest batches are finished until fewer pages than
        workers wait for post-processing (at most workers + ``batch_size`` pages' maps
        alive). Items are read from ``calls`` only as the engine gets to them.
        """
        threads, processes = self.post_threads, self.post_processes
        workers = threads or processes
        pool = ThreadPoolExecutor(threads, "craft-post") if threads else None
        procs = self._process_pool() if processes else None
        done: deque[list[PageResult | None]] = deque()  # per call, filled in place
        # Per batch: its call's slots, the pages' indices there, the pages, their futures.
        pending: deque[
            tuple[list[PageResult | None], list[int], list[np.ndarray], list[Future[Any]]]
        ] = deque()
        waiting = 0

        def finish_oldest() -> None:
            nonlocal waiting
            slots, idx, batch, futures = pending.popleft()
            for k, (i, future) in enumerate(zip(idx, futures, strict=True)):
                out = future.result()
                slots[i] = self._finish(out, batch[k]) if isinstance(out, FirstPass) else out
            waiting -= len(idx)

        def ready() -> Iterator[list[PageResult]]:
            while done and all(r is not None for r in done[0]):
                yield [r for r in done.popleft() if r is not None]

        try:
            for pages in calls:
                for i, page in enumerate(pages):
                    check_page(page, i)
                slots: list[PageResult | None] = [None] * len(pages)
                done.append(slots)
                for idx in self._batches(pages):
                    while pending and waiting >= workers:
                        finish_oldest()
                    batch = [pages[i] for i in idx]
                    maps, metas, t_pre = self._infer(batch)
                    share = t_pre / len(idx)
                    futures: list[Future[Any]]
                    if procs is not None:
                        futures = [
                            procs.submit(maps, k, metas[k], share, batch[k])
                            for k in range(len(idx))
                        ]
                    elif pool is not None:
                        futures = [
                            pool.submit(self._post_page, maps, k, metas[k], share, batch[k])
                            for k in range(len(idx))
                        ]
                    else:
                        for k, i in enumerate(idx):
                            slots[i] = self._post_page(maps, k, metas[k], share, batch[k])
                        continue
                    pending.append((slots, idx, batch, futures))
                    waiting += len(idx)
                yield from ready()
            while pending:
                finish_oldest()
                yield from ready()
            yield from ready()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _post_page(
        self, maps: ScoreMaps, index: int, meta: Prepared, t_pre: float, page: np.ndarray
    ) -> PageResult:
        """Everything after the forward pass for page ``index`` of a batch (see
        :func:`first_pass`), then, for a turned page, its detection again upright."""
        return self._finish(first_pass(maps, index, meta, t_pre, page, self.params), page)

    def _finish(self, first: FirstPass, page: np.ndarray) -> PageResult:
        """The result of a first pass; a page found turned is detected again upright by a
        twin predictor (this process holds the model) and its regions turned back."""
        res = first.result
        if first.turned is None:
            return res
        t0 = time.perf_counter()
        up = upright_page(page, first.turned)
        [again] = self._upright_twin().predict([up])
        back = regions_to_original(again.regions, first.turned, up.shape[1], up.shape[0])
        t = again.timings
        spent = first.spent + time.perf_counter() - t0 - t.total
        timings = StageTimings(
            preprocess=res.timings.preprocess + t.preprocess,
            forward=res.timings.forward + t.forward,
            refine=res.timings.refine + t.refine,
            postprocess=res.timings.postprocess + spent,
        )
        return replace(res, regions=tuple(back), timings=timings, orientation=first.turned)

    def _upright_twin(self) -> CraftPredictor:
        """This predictor without orientation detection: for pages already turned upright."""
        params = self.params.model_copy(update={"detect_orientation": False})
        return CraftPredictor(
            self.backend, params, self.info, blank_skip=self.blank_skip, post_threads=0
        )

    def _batches(self, pages: Sequence[np.ndarray]) -> Iterable[list[int]]:
        groups: dict[tuple[int, int], list[int]] = {}
        p = self.params
        for i, page in enumerate(pages):
            key = padded_size(page.shape[0], page.shape[1], p.width, p.mag_ratio)
            groups.setdefault(key, []).append(i)
        size = 1 if self.blank_skip else p.batch_size
        for idx in groups.values():
            for start in range(0, len(idx), size):
                yield idx[start : start + size]

    def score_maps(self, pages: Sequence[np.ndarray]) -> tuple[ScoreMaps, list[Prepared]]:
        """The maps of one batch (pages of one padded size) and each page's placement: what
        ``predict`` post-processes, for callers that apply several thresholds to one pass."""
        maps, metas, _ = self._infer(list(pages))
        return maps, metas

    def _infer(self, pages: list[np.ndarray]) -> tuple[ScoreMaps, list[Prepared], float]:
        """Score maps of one batch, its pages' placement, and preprocessing seconds."""
        p = self.params
        t0 = time.perf_counter()
        pixels, metas = stack_pages(pages, p.width, p.mag_ratio)
        if self.blank_skip and len(pages) == 1:
            return self._infer_window(pixels, metas, t0)
        t_stack = time.perf_counter() - t0
        maps = self.backend.run_pixels(pixels, with_refiner=p.with_refiner)
        return maps, metas, t_stack + maps.preprocess_s

    def _infer_window(
        self, pixels: np.ndarray, metas: list[Prepared], t0: float
    ) -> tuple[ScoreMaps, list[Prepared], float]:
        """One page through its content window only; maps pasted back at full size."""
        with_refiner = self.params.with_refiner
        full_hw = (pixels.shape[1], pixels.shape[2])
        window = content_window(pixels[0], metas[0].resized_hw)
        t_window = time.perf_counter() - t0
        if window is not None and not worth_cropping(window, full_hw):
            maps = self.backend.run_pixels(pixels, with_refiner=with_refiner)
            return maps, metas, t_window + maps.preprocess_s
        if window is None:  # one colour: nothing to detect, nothing to run
            blank = paste(None, None, full_hw)
            maps = ScoreMaps(blank, blank, blank if with_refiner else None, 0.0, 0.0)
            return maps, metas, t_window
        crop = np.ascontiguousarray(pixels[:, window.y0 : window.y1, window.x0 : window.x1])
        maps = self.backend.run_pixels(crop, with_refiner=with_refiner)
        t1 = time.perf_counter()
        refined = paste(maps.refined_link, window, full_hw) if with_refiner else None
        full = ScoreMaps(
            paste(maps.text, window, full_hw),
            paste(maps.link, window, full_hw),
            refined,
            maps.forward_s,
            maps.refine_s,
        )
        t_paste = time.perf_counter() - t1
        return full, metas, t_window + maps.preprocess_s + t_paste


def default_post_processes() -> int:
    """Post-processing processes beside a fast engine: a core each, one core left to the
    caller (forward passes, batching, shipping pages). With two cores or fewer, 0: one
    worker process would leave post-processing one core, where threads get it two."""
    cores = default_threads()
    return cores - 1 if cores > 2 else 0


def link_map(maps: ScoreMaps, params: DetectorParams) -> np.ndarray:
    """The link map the parameters join characters with: the refined one ``with_refiner``."""
    if not params.with_refiner:
        return maps.link
    if maps.refined_link is None:
        raise ValueError("with_refiner=True but the maps carry no refined link map")
    return maps.refined_link


def maps_to_regions(
    maps: ScoreMaps, index: int, meta: Prepared, params: DetectorParams
) -> list[Region]:
    """Regions of page ``index`` of a batch, in that page's original pixels."""
    link = link_map(maps, params)
    # Only the page's own area of the map: padding from other pages must not add boxes.
    mh, mw = meta.padded_hw[0] // 2, meta.padded_hw[1] // 2
    boxes = detect_quads(
        maps.text[index, :mh, :mw],
        link[index, :mh, :mw],
        text_threshold=params.score_threshold,
        link_threshold=params.link_threshold,
        low_text=params.text_threshold,
    )
    if params.split_lines:
        boxes = split_lines(maps.text[index, :mh, :mw], boxes, params.text_threshold)
    quads = scale_quads(boxes.quads, meta.ratio)
    regions = quads_to_regions(quads, boxes.scores)
    return size_filter(regions, params.size_threshold)


@dataclass(frozen=True, slots=True)
class FirstPass:
    """A page's post-processing up to what needs the model again.

    ``turned``: quarter turns orientation detection found (the page must be detected again
    upright, where the model is); None when ``result`` is final. ``spent``: seconds of
    orientation work not yet in ``result.timings``.
    """

    result: PageResult
    turned: int | None = None
    spent: float = 0.0


def first_pass(
    maps: ScoreMaps,
    index: int,
    meta: Prepared,
    t_pre: float,
    page: np.ndarray,
    params: DetectorParams,
) -> FirstPass:
    """Page ``index`` of a batch from its maps: regions, then the steps that need the page's
    own pixels (orientation; tight boxes). Needs no model, so it runs in worker processes
    too (``craft.post_processes``)."""
    t0 = time.perf_counter()
    regions = tuple(maps_to_regions(maps, index, meta, params))
    n = maps.text.shape[0]
    res = PageResult(
        meta.width,
        meta.height,
        regions,
        StageTimings(
            preprocess=t_pre,
            forward=maps.forward_s / n,
            refine=maps.refine_s / n,
            postprocess=time.perf_counter() - t0,
        ),
    )
    if not (params.tight_boxes or params.detect_orientation):
        return FirstPass(res)
    t0 = time.perf_counter()
    crops = InkCrops(page)  # regions warped once for both steps
    if params.detect_orientation and (turned := page_orientation(page, res.regions, crops)):
        return FirstPass(res, turned, time.perf_counter() - t0)
    if params.tight_boxes:
        res = replace(res, regions=tuple(tighten_regions(page, res.regions, crops)))
    timings = replace(res.timings, postprocess=res.timings.postprocess + time.perf_counter() - t0)
    return FirstPass(replace(res, timings=timings))
