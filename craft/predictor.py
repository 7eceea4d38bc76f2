"""``CraftPredictor``: BGR pages in, ``PageResult`` (rotated regions + timings) out."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from craft.backends import InferenceBackend, ScoreMaps
from craft.blank import content_window, paste
from craft.geometry import quad_to_region, scale_quads, size_filter
from craft.linesplit import split_lines
from craft.orientation import page_orientation, regions_to_original, upright_page
from craft.params import DetectorParams
from craft.postprocess import detect_quads
from craft.preprocess import Prepared, check_page, padded_size, stack_pages
from craft.tighten import tighten_regions
from craft.types import PageResult, Region, StageTimings

__all__ = ["CraftPredictor", "ModelInfo", "maps_to_regions"]


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

    ``overlap``: post-process batch k on a helper thread while batch k+1 runs. The default
    (None) turns it on for CUDA, where the CPU-side post-processing of a batch takes about as
    long as the next forward pass; on CPU the engine already uses every core.

    ``blank_skip``: run the network on each page's content box only (``craft.blank``), one
    page per forward pass (windows differ per page); ``precision="fast"`` turns it on.
    """

    def __init__(
        self,
        backend: InferenceBackend,
        params: DetectorParams,
        info: ModelInfo,
        overlap: bool | None = None,
        blank_skip: bool = False,
    ) -> None:
        self.backend = backend
        self.params = params
        self.info = info
        self.overlap = info.device.startswith("cuda") if overlap is None else overlap
        self.blank_skip = blank_skip

    def __call__(self, pages: Sequence[np.ndarray]) -> list[PageResult]:
        """Alias of :meth:`predict`."""
        return self.predict(pages)

    def predict(self, pages: Sequence[np.ndarray]) -> list[PageResult]:
        """Detect text on each page (3-channel uint8 BGR arrays of any sizes).

        Pages are grouped by padded input size, then run ``batch_size`` at a time: a page
        padded beyond its own 32-aligned size would see different borders than the reference,
        so only pages with equal padded sizes share a forward pass.
        """
        for i, page in enumerate(pages):
            check_page(page, i)
        results: list[PageResult | None] = [None] * len(pages)

        def store(idx: list[int], batch_results: list[PageResult]) -> None:
            for i, res in zip(idx, batch_results, strict=True):
                results[i] = res

        batches = list(self._batches(pages))
        if not self.overlap or len(batches) < 2:
            for idx in batches:
                store(idx, self._regions(*self._infer([pages[i] for i in idx])))
            return self._finish(pages, [r for r in results if r is not None])
        # At most one batch being post-processed while the next runs: memory stays bounded
        # however far the helper falls behind.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="craft-post") as pool:
            pending: tuple[list[int], Future[list[PageResult]]] | None = None
            for idx in batches:
                inferred = self._infer([pages[i] for i in idx])
                if pending is not None:
                    store(pending[0], pending[1].result())
                pending = (idx, pool.submit(self._regions, *inferred))
            if pending is not None:
                store(pending[0], pending[1].result())
        return self._finish(pages, [r for r in results if r is not None])

    def _finish(self, pages: Sequence[np.ndarray], results: list[PageResult]) -> list[PageResult]:
        """Steps that need the page's own pixels, after the score maps: orientation (a turned
        page is detected again upright, by a twin predictor), then tight boxes."""
        p = self.params
        if not (p.tight_boxes or p.detect_orientation):
            return results
        out = []
        for page, res in zip(pages, results, strict=True):
            t0 = time.perf_counter()
            if p.detect_orientation and (turned := page_orientation(page, res.regions)):
                up = upright_page(page, turned)
                [again] = self._upright_twin().predict([up])
                back = regions_to_original(again.regions, turned, up.shape[1], up.shape[0])
                t = again.timings
                timings = StageTimings(
                    preprocess=res.timings.preprocess + t.preprocess,
                    forward=res.timings.forward + t.forward,
                    refine=res.timings.refine + t.refine,
                    postprocess=res.timings.postprocess + (time.perf_counter() - t0 - t.total),
                )
                out.append(replace(res, regions=tuple(back), timings=timings, orientation=turned))
                continue
            regions = tuple(tighten_regions(page, res.regions)) if p.tight_boxes else res.regions
            timings = replace(
                res.timings, postprocess=res.timings.postprocess + time.perf_counter() - t0
            )
            out.append(replace(res, regions=regions, timings=timings))
        return out

    def _upright_twin(self) -> CraftPredictor:
        """This predictor without orientation detection: for pages already turned upright."""
        params = self.params.model_copy(update={"detect_orientation": False})
        return CraftPredictor(
            self.backend, params, self.info, overlap=False, blank_skip=self.blank_skip
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
        if window is not None and window.area == full_hw[0] * full_hw[1]:
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

    def _regions(self, maps: ScoreMaps, metas: list[Prepared], t_pre: float) -> list[PageResult]:
        """Post-process one batch's maps into per-page results with their stage timings."""
        n = len(metas)
        out = []
        for i, meta in enumerate(metas):
            t1 = time.perf_counter()
            result_regions = maps_to_regions(maps, i, meta, self.params)
            t_post = time.perf_counter() - t1
            timings = StageTimings(
                preprocess=t_pre / n,
                forward=maps.forward_s / n,
                refine=maps.refine_s / n,
                postprocess=t_post,
            )
            out.append(PageResult(meta.width, meta.height, tuple(result_regions), timings))
        return out


def maps_to_regions(
    maps: ScoreMaps, index: int, meta: Prepared, params: DetectorParams
) -> list[Region]:
    """Regions of page ``index`` of a batch, in that page's original pixels."""
    link = maps.link
    if params.with_refiner:
        if maps.refined_link is None:
            raise ValueError("with_refiner=True but the maps carry no refined link map")
        link = maps.refined_link
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
    regions = [quad_to_region(q, s) for q, s in zip(quads, boxes.scores, strict=True)]
    return size_filter(regions, params.size_threshold)
