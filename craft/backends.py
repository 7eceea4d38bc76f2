"""What an inference engine gives the predictor, and which device it runs on.

Two engines give the same maps: torch (``craft.torch_backend``: the reference, and the CUDA
path with autocast, channels_last and pinned transfers) and ONNX Runtime
(``craft.onnx_backend``: faster than torch on CPU at fp32 with unchanged maps, so it is the
CPU default). This module imports neither, so a CPU worker never pays for importing torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import numpy as np

from craft.preprocess import normalise

__all__ = [
    "InferenceBackend",
    "ScoreMaps",
    "cpu_flags",
    "default_threads",
    "gpu_device_present",
    "resolve_device",
    "run_normalised",
    "slow_cpu_precision",
]

# Device nodes a CUDA (NVIDIA) or ROCm driver creates; torch cannot see a GPU without them.
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia/version", "/dev/kfd")

# CPU instructions (x86 names, then Arm's) that make bf16 / fp16 autocast fast. Without them
# the type is emulated: bf16 took 76.8 s/page against fp32's 7.05 on an AVX2-only Zen 3
# (docs/performance.md).
_LOW_PRECISION_FLAGS = {
    "bf16": ("avx512_bf16", "amx_bf16", "bf16"),
    "fp16": ("avx512_fp16", "amx_fp16", "asimdhp"),
}


@dataclass(frozen=True, slots=True)
class ScoreMaps:
    """Maps for a batch at half the input resolution, float32 (N, H/2, W/2)."""

    text: np.ndarray
    link: np.ndarray
    refined_link: np.ndarray | None
    forward_s: float
    refine_s: float
    preprocess_s: float = 0.0  # the engine's share of preprocessing (normalisation, upload)


class InferenceBackend(Protocol):
    """What the predictor needs from an engine."""

    name: str
    device: str
    precision: str

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Score maps for an NCHW float32 batch, already normalised."""
        ...

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Score maps for a uint8 NHWC RGB batch (``preprocess.stack_pages``): the engine
        normalises where it is cheapest (the GPU for CUDA) and times it in ``preprocess_s``."""
        ...


def run_normalised(
    run: Callable[[np.ndarray, bool], ScoreMaps], pixels: np.ndarray, with_refiner: bool
) -> ScoreMaps:
    """``run_pixels`` for an engine that normalises on the CPU: numpy, timed, then ``run``."""
    t0 = time.perf_counter()
    batch = normalise(pixels)
    t_norm = time.perf_counter() - t0
    return replace(run(batch, with_refiner), preprocess_s=t_norm)


def gpu_device_present(nodes: tuple[str, ...] = _GPU_NODES) -> bool:
    """Whether a GPU driver is loaded at all: a cheap check that spares CPU hosts torch's import.

    Importing torch costs about 1 s and 210 MB of RSS per worker; without a driver's device
    node ``torch.cuda.is_available()`` is False anyway, so it is only asked when one exists.
    """
    return any(Path(node).exists() for node in nodes)


def _cuda_available() -> bool:
    if not gpu_device_present():
        return False
    import torch

    return bool(torch.cuda.is_available())


def resolve_device(device: str) -> str:
    """'auto' becomes 'cuda' when a GPU is visible, else 'cpu'; a missing GPU is an error."""
    if device == "auto":
        return "cuda" if _cuda_available() else "cpu"
    if device.startswith("cuda") and not _cuda_available():
        raise ValueError(f"device '{device}' requested but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device '{device}' (use 'auto', 'cpu', 'cuda' or 'cuda:N')")
    return device


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return None


def slow_cpu_precision(precision: str, flags: frozenset[str] | None) -> str | None:
    """Why ``precision`` autocast would crawl on a CPU with these flags, or None.

    bf16/fp16 are only faster than fp32 on CPUs that have instructions for them; elsewhere
    they are an order of magnitude slower, which a user asking for "faster" must be told.
    """
    needed = _LOW_PRECISION_FLAGS.get(precision)
    if needed is None or flags is None or flags.intersection(needed):
        return None
    return (
        f"precision '{precision}' on a CPU without {precision} instructions: torch emulates "
        f"{precision} there, about 10x slower than fp32 (use precision 'fp32', or a GPU)"
    )


def default_threads() -> int:
    """Intra-op threads: ``OCRFLOW_THREADS`` if set, else every core."""
    return int(os.environ.get("OCRFLOW_THREADS", 0) or (os.cpu_count() or 1))
