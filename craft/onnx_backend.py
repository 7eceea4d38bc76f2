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

__all__ = ["OnnxBackend"]

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


class OnnxBackend:
    """ONNX Runtime on CPU, fp32; maps equal the torch reference's within 5e-4."""

    name = "onnxruntime"
    device = "cpu"
    precision = "fp32"

    def __init__(
        self, craft_onnx: Path, refiner_onnx: Path | None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        _register_shared_arena(ort)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.enable_mem_pattern = False
        opts.add_session_config_entry("session.use_env_allocators", "1")
        providers = ["CPUExecutionProvider"]
        self._ort = ort
        self._craft = ort.InferenceSession(str(craft_onnx), opts, providers=providers)
        self._refiner = (
            ort.InferenceSession(str(refiner_onnx), opts, providers=providers)
            if refiner_onnx
            else None
        )
        self._last_shape: tuple[int, ...] | None = None
        self._shape_lock = threading.Lock()

    def _release_on_new_shape(self, shape: tuple[int, ...]) -> None:
        """Empty the shared arena when the batch shape changes (see the module docstring)."""
        with self._shape_lock:
            if shape == self._last_shape:
                return
            first = self._last_shape is None
            self._last_shape = shape
        if first:
            return
        options = self._ort.RunOptions()
        options.add_run_config_entry(_SHRINK, "cpu:0")
        # A 32 px run whose only purpose is the shrink that follows it (a few ms).
        tiny = np.zeros((1, 3, 32, 32), np.float32)
        self._craft.run(["y"], {"image": tiny}, options)

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Normalise on the CPU (bit-exact with the reference), then ``run``."""
        return run_normalised(self.run, pixels, with_refiner)

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Forward (and refine) one batch."""
        if with_refiner and self._refiner is None:
            raise ValueError("this backend was built without the LinkRefiner")
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self._release_on_new_shape(batch.shape)
        t0 = time.perf_counter()
        y, feature = self._craft.run(None, {"image": batch})
        t1 = time.perf_counter()
        refined = None
        if with_refiner and self._refiner is not None:
            refined = self._refiner.run(None, {"y": y, "feature": feature})[0][..., 0]
        t2 = time.perf_counter()
        return ScoreMaps(y[..., 0], y[..., 1], refined, t1 - t0, t2 - t1)
