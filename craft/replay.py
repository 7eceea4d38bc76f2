"""Replay: a stand-in detector that returns recorded score maps in a GPU's measured time.

Until a GPU is lent, what has to be shown is that everything around the detector
(rasterizing, post-processing, database writes, overlays) sustains more pages/s than a GPU
would. ``ReplayBackend`` is an ``InferenceBackend`` whose forward pass is a lookup of the maps
the real fp32 detector computed once for the same network input, plus a sleep up to the
measured GPU time; everything downstream (post-processing included) runs for real on real
text maps.

- A ``Recording`` keeps maps by a digest of the page's padded uint8 network input, which
  fixes the page, ``width`` and ``mag_ratio``; it lives on disk in the user cache
  (``OCRFLOW_CACHE_DIR``, else ``~/.cache/ocrflow``) under ``replay/<weights>``, never in git.
  ``Recording.record`` runs the fp32 CPU engine on pages not yet recorded (seconds per page).
- An input that was not recorded gets the maps of a recorded input of the closest padded size:
  cropped when that one is larger both ways, else resized (``misses`` counts them).
- The sleep covers the whole batch (``seconds_per_page`` x pages, the lookup included) under a
  lock, so concurrent callers queue as they would for one GPU.
- ``replaying`` installs a replay predictor for every in-process ``craft_predictor`` call
  (``craft.zoo.substituted``): the flow, the CLI and the page pipeline get it unchanged.

>>> recording = Recording.open()
>>> recording.record(pages, DetectorParams.preset("default"))
>>> with replaying(recording) as engine:
...     results = craft_predictor("default", batch_size=8)(pages)
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from craft import zoo
from craft.backends import ScoreMaps, default_threads
from craft.params import DetectorParams
from craft.predictor import CraftPredictor, ModelInfo, default_post_processes
from craft.preprocess import stack_pages
from craft.weights_store import WEIGHTS, cache_dir

__all__ = [
    "H200_FAST_SECONDS_PER_PAGE",
    "Recording",
    "ReplayBackend",
    "replay_predictor",
    "replaying",
]

# docs/performance.md, "On a GPU (NVIDIA H200, 2026-11-26)", row `precision="bf16"` (the fast
# precision on CUDA is bf16 autocast, craft/fast.py): forward 0.010 + refine 0.004 s/page,
# 8 pages per predictor call. No batch-8 row was measured; the fp16 batch-4 row has the same
# 0.010 + 0.004. The CPU side of preprocessing (resizing) runs for real in the predictor.
H200_FAST_SECONDS_PER_PAGE = 0.014

_Maps = tuple[np.ndarray, np.ndarray, np.ndarray]  # text, link, refined link (float16, H/2 x W/2)


def _digest(pixels: np.ndarray) -> str:
    """Key of one page's padded network input (H x W x 3 uint8): its shape and bytes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(pixels.shape, np.int64).tobytes())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


def _float32(maps: _Maps, fit: Callable[[np.ndarray], np.ndarray] = lambda m: m) -> _Maps:
    text, link, refined = (np.asarray(fit(m.astype(np.float32)), np.float32) for m in maps)
    return text, link, refined


class Recording:
    """Score maps of real pages, one ``<digest>.npz`` (float16) per network input in ``folder``.

    Loaded into memory on open (about 1.8 MB per full page), so a replay costs no disk reads.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._maps: dict[str, _Maps] = {}
        self._by_size: dict[tuple[int, int], list[str]] = {}
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            with np.load(path) as data:
                self._add(path.stem, (data["text"], data["link"], data["refined"]))

    @classmethod
    def open(cls, root: Path | None = None) -> Recording:
        """The recording for the verified CRAFT + LinkRefiner weights under ``root`` (default:
        the user cache's ``replay`` folder); maps depend on nothing else but the input."""
        craft, refiner = (WEIGHTS[zoo.CRAFT_WEIGHTS], WEIGHTS[zoo.REFINER_WEIGHTS])
        base = root if root is not None else cache_dir() / "replay"
        return cls(base / f"{craft.sha256[:16]}-{refiner.sha256[:16]}")

    def __len__(self) -> int:
        return len(self._maps)

    def __contains__(self, digest: object) -> bool:
        return digest in self._maps

    def _add(self, digest: str, maps: _Maps) -> None:
        if digest not in self._maps:
            self._by_size.setdefault(maps[0].shape, []).append(digest)
        self._maps[digest] = maps

    def record(
        self,
        pages: Sequence[np.ndarray],
        params: DetectorParams,
        predictor: CraftPredictor | None = None,
    ) -> int:
        """Run the real detector (fp32, CPU, with the refiner) on the pages not yet recorded
        at these ``width``/``mag_ratio``, store their maps, and return how many were new.

        ``predictor``: the engine to record with (default: ``craft_predictor`` at fp32 on the
        CPU); it must not be a replay (record outside ``replaying``).
        """
        if predictor is None:
            real = params.model_copy(
                update={"device": "cpu", "backend": "onnxruntime", "precision": "fp32"}
            )
            predictor = zoo.craft_predictor(params=real)
        if isinstance(predictor.backend, ReplayBackend):
            raise ValueError("record with a real engine, outside replaying()")
        new = 0
        for page in pages:
            pixels, _ = stack_pages([page], params.width, params.mag_ratio)
            digest = _digest(pixels[0])
            if digest in self._maps:
                continue
            out = predictor.backend.run_pixels(pixels, with_refiner=True)
            if out.refined_link is None:  # pragma: no cover - the engines always refine here
                raise ValueError("the recording engine returned no refined link map")
            maps = (out.text[0], out.link[0], out.refined_link[0])
            half = tuple(m.astype(np.float16) for m in maps)
            self._save(digest, (half[0], half[1], half[2]))
            new += 1
        return new

    def _save(self, digest: str, maps: _Maps) -> None:
        """Write atomically (temp file, then rename): concurrent recorders never see half a file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{digest}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
        np.savez_compressed(tmp, text=maps[0], link=maps[1], refined=maps[2])
        os.replace(tmp, self.folder / f"{digest}.npz")
        self._add(digest, maps)

    def lookup(self, pixels: np.ndarray) -> tuple[_Maps, bool]:
        """Float32 maps for one padded page input (H x W x 3), and whether they were recorded
        for exactly this input (else: those of the closest recorded size, cropped or resized)."""
        digest = _digest(pixels)
        th, tw = pixels.shape[0] // 2, pixels.shape[1] // 2
        if digest in self._maps:
            return _float32(self._maps[digest]), True
        if not self._maps:
            raise LookupError("the replay recording is empty: record some pages first")
        size = min(self._by_size, key=lambda s: abs(math.log(s[0] / th)) + abs(math.log(s[1] / tw)))
        candidates = self._by_size[size]
        maps = self._maps[candidates[int(digest, 16) % len(candidates)]]
        if size[0] >= th and size[1] >= tw:
            return _float32(maps, lambda m: m[:th, :tw]), False
        return _float32(
            maps, lambda m: cv2.resize(m, (tw, th), interpolation=cv2.INTER_LINEAR)
        ), False


class ReplayBackend:
    """An ``InferenceBackend`` that replays recorded maps in ``seconds_per_page`` per page."""

    name = "replay"
    device = "replay"
    precision = "replay"

    def __init__(
        self, recording: Recording, seconds_per_page: float = H200_FAST_SECONDS_PER_PAGE
    ) -> None:
        if seconds_per_page < 0:
            raise ValueError(f"seconds_per_page must be >= 0, got {seconds_per_page}")
        self.recording = recording
        self.seconds_per_page = seconds_per_page
        self.pages = 0
        self.misses = 0  # pages answered with another input's maps
        self._device = threading.Lock()  # one GPU: batches run one at a time

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Not supported: recordings are keyed by the uint8 input (use ``run_pixels``)."""
        raise NotImplementedError("the replay engine takes uint8 pixels (run_pixels)")

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """The recorded maps of each page of the batch, after ``seconds_per_page`` x pages."""
        with self._device:
            t0 = time.perf_counter()
            found = [self.recording.lookup(page) for page in pixels]
            text, link, refined = (np.stack([f[0][k] for f in found]) for k in range(3))
            self.pages += len(found)
            self.misses += sum(not exact for _, exact in found)
            remaining = self.seconds_per_page * len(found) - (time.perf_counter() - t0)
            if remaining > 0:
                time.sleep(remaining)
            elapsed = time.perf_counter() - t0
        return ScoreMaps(text, link, refined if with_refiner else None, elapsed, 0.0)


def replay_predictor(
    backend: ReplayBackend,
    params: DetectorParams,
    post_threads: int | None = None,
    post_processes: int | None = None,
) -> CraftPredictor:
    """A predictor on the replay engine, configured as on a GPU: no blank skipping (the CUDA
    fast path has none), post-processing on ``post_processes`` worker processes or
    ``post_threads`` threads (default: as a CUDA predictor, a process per core but one, or
    threads on two cores or fewer)."""
    with_refiner = params.with_refiner
    info = ModelInfo(
        model=zoo.CRAFT_WEIGHTS,
        model_sha256=WEIGHTS[zoo.CRAFT_WEIGHTS].sha256,
        refiner=zoo.REFINER_WEIGHTS if with_refiner else None,
        refiner_sha256=WEIGHTS[zoo.REFINER_WEIGHTS].sha256 if with_refiner else None,
        backend=backend.name,
        device=backend.device,
        precision=backend.precision,
    )
    if post_threads is None and post_processes is None:
        post_processes = default_post_processes()
        post_threads = 0 if post_processes else default_threads()
    return CraftPredictor(
        backend, params, info, post_threads=post_threads or 0, post_processes=post_processes or 0
    )


@contextmanager
def replaying(
    recording: Recording,
    seconds_per_page: float = H200_FAST_SECONDS_PER_PAGE,
    post_threads: int | None = None,
    post_processes: int | None = None,
) -> Iterator[ReplayBackend]:
    """Within the block, every ``craft.zoo.craft_predictor`` call in this process returns a
    replay predictor (one per parameter set, as the zoo caches engines) on one shared
    ``ReplayBackend``, which the block yields (its ``pages`` and ``misses`` count the work)."""
    backend = ReplayBackend(recording, seconds_per_page)
    predictors: dict[DetectorParams, CraftPredictor] = {}
    lock = threading.Lock()

    def factory(params: DetectorParams) -> CraftPredictor:
        with lock:
            if params not in predictors:
                predictors[params] = replay_predictor(backend, params, post_threads, post_processes)
            return predictors[params]

    try:
        with zoo.substituted(factory):
            yield backend
    finally:
        for predictor in predictors.values():
            predictor.close()
