"""The ONNX Runtime engine: CPU, fp32, over graphs exported from the verified torch weights.

Memory is the subtle part. Without an arena every run maps its ~1 GB of activations afresh
and the kernel zero-fills every page: 0.5-1 s of system time per 1280 px page, about a sixth
of the run. ORT's default arena avoids that but grows by powers of two and keeps every shape
it ever saw (3.3 GB after three page sizes). So both sessions share one arena that grows by
exactly what is asked, with the memory pattern planner off (its one big block per shape is
what fragments the arena), and the arena is emptied whenever the page size changes: pages of
one size (a PDF) reuse warm memory; a new size starts from an empty arena, so the peak is
that of the largest single page, never the sum of sizes seen.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from craft.backends import ScoreMaps, default_threads, run_normalised

__all__ = ["OnnxBackend", "OnnxRefiner", "ort_session"]

_SHRINK = "memory.enable_memory_arena_shrinkage"
_arena_lock = threading.Lock()
_arena_registered = False


def _register_shared_arena(ort: Any) -> None:
    """Register the process-wide CPU arena once (ORT refuses a second registration)."""
    global _arena_registered
    with _arena_lock:
        if _arena_registered:
            return
        # max_mem 0 = unlimited, strategy 1 = kSameAsRequested, defaults for the rest.
        config = ort.OrtArenaCfg(0, 1, -1, -1)
        info = ort.OrtMemoryInfo(
            "Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT
        )
        ort.create_and_register_allocator(info, config)
        _arena_registered = True


class _ShapeWatch:
    """Whether a session's input shape changed since its last run (not on the first run)."""

    def __init__(self) -> None:
        self._last: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    def changed(self, shape: tuple[int, ...]) -> bool:
        with self._lock:
            first, same = self._last is None, shape == self._last
            self._last = shape
        return not (first or same)


def _shrink_arena(session: Any, tiny: dict[str, np.ndarray]) -> None:
    """Empty the shared arena (see the module docstring) by a tiny run that shrinks it after."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry(_SHRINK, "cpu:0")
    session.run(None, tiny, options)  # a few ms: its only purpose is the shrink that follows


def ort_session(path: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session on the shared arena (see the module docstring)."""
    import onnxruntime as ort

    _register_shared_arena(ort)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_mem_pattern = False
    opts.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxRefiner:
    """The LinkRefiner alone in ONNX Runtime: ``(y, feature)`` arrays to the refined link map.

    What another engine calls to run the refiner here (``craft.torch_backend`` with the int8
    refiner of ``craft.int8_refiner``).
    """

    def __init__(self, refiner_onnx: Path, threads: int | None = None) -> None:
        self._session = ort_session(refiner_onnx, threads)
        self._shapes = _ShapeWatch()

    def __call__(self, y: np.ndarray, feature: np.ndarray) -> np.ndarray:
        """Refined link maps (N, H/2, W/2) for CRAFT's outputs of one batch."""
        if self._shapes.changed(y.shape):
            tiny = {"y": np.zeros((1, 16, 16, 2), np.float32)}
            tiny["feature"] = np.zeros((1, 32, 16, 16), np.float32)
            _shrink_arena(self._session, tiny)
        feeds = {"y": np.ascontiguousarray(y), "feature": np.ascontiguousarray(feature)}
        return np.asarray(self._session.run(None, feeds)[0][..., 0])


class OnnxBackend:
    """ONNX Runtime on CPU; fp32 CRAFT, whose maps equal the torch reference's within 5e-4.

    The refiner graph is fp32 too, or the int8 one of ``craft.int8_refiner`` (the fast path
    on VNNI CPUs).
    """

    name = "onnxruntime"
    device = "cpu"
    precision = "fp32"

    def __init__(
        self, craft_onnx: Path, refiner_onnx: Path | None, threads: int | None = None
    ) -> None:
        self._craft = ort_session(craft_onnx, threads)
        self._refiner = ort_session(refiner_onnx, threads) if refiner_onnx else None
        self._shapes = _ShapeWatch()

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Normalise on the CPU (bit-exact with the reference), then ``run``."""
        return run_normalised(self.run, pixels, with_refiner)

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Forward (and refine) one batch."""
        if with_refiner and self._refiner is None:
            raise ValueError("this backend was built without the LinkRefiner")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        if self._shapes.changed(batch.shape):
            _shrink_arena(self._craft, {"image": np.zeros((1, 3, 32, 32), np.float32)})
        t0 = time.perf_counter()
        y, feature = self._craft.run(None, {"image": batch})
        t1 = time.perf_counter()
        refined = None
        if with_refiner and self._refiner is not None:
            refined = self._refiner.run(None, {"y": y, "feature": feature})[0][..., 0]
        t2 = time.perf_counter()
        return ScoreMaps(y[..., 0], y[..., 1], refined, t1 - t0, t2 - t1)
