"""Inference engines that turn a normalised batch into CRAFT score maps.

Two engines give the same maps: torch (the reference, and the CUDA path with autocast,
channels_last and pinned transfers) and ONNX Runtime (2-3x faster than torch on CPU at fp32
with unchanged maps, so it is the CPU default).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import torch

from craft.model import CRAFT
from craft.refiner import RefineNet

__all__ = ["InferenceBackend", "OnnxBackend", "ScoreMaps", "TorchBackend", "resolve_device"]


@dataclass(frozen=True, slots=True)
class ScoreMaps:
    """Maps for a batch at half the input resolution, float32 (N, H/2, W/2)."""

    text: np.ndarray
    link: np.ndarray
    refined_link: np.ndarray | None
    forward_s: float
    refine_s: float


class InferenceBackend(Protocol):
    """What the predictor needs from an engine."""

    name: str
    device: str
    precision: str

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Score maps for an NCHW float32 batch."""
        ...


def resolve_device(device: str) -> str:
    """'auto' becomes 'cuda' when a GPU is visible, else 'cpu'; a missing GPU is an error."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' requested but torch sees no CUDA device")
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device '{device}' (use 'auto', 'cpu', 'cuda' or 'cuda:N')")
    return device


M = TypeVar("M", bound=torch.nn.Module)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend:
    """CRAFT and LinkRefiner in torch; fp32 is the reference, bf16/fp16 use autocast."""

    name = "torch"

    def __init__(
        self,
        craft: CRAFT,
        refiner: RefineNet | None,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool | None = None,
    ) -> None:
        if precision not in ("fp32", *_DTYPES):
            raise ValueError(f"unknown precision '{precision}' (fp32, bf16, fp16)")
        self.device = device
        self.precision = precision
        # channels_last changes the CPU kernels' summation order (maps move by ~1e-6 only);
        # it is off at fp32 on CPU so that path stays the reference's.
        self.channels_last = (
            channels_last if channels_last is not None else (precision != "fp32" or device != "cpu")
        )
        self.craft = self._place(craft)
        self.refiner = self._place(refiner) if refiner is not None else None

    def _place(self, module: M) -> M:
        module = module.eval().to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return module

    def _sync(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def _autocast(self) -> torch.autocast:
        dev_type = "cuda" if self.device.startswith("cuda") else "cpu"
        dtype = _DTYPES.get(self.precision, torch.float32)
        return torch.autocast(dev_type, dtype=dtype, enabled=self.precision != "fp32")

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Forward (and refine) one batch, timing each stage with the device synchronised."""
        if with_refiner and self.refiner is None:
            raise ValueError("this backend was built without the LinkRefiner")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = torch.from_numpy(batch)
        if self.device.startswith("cuda"):
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.contiguous(memory_format=fmt)
        # fp32 on CUDA means fp32: TF32 convolutions would move the maps past reference parity.
        tf32 = self.precision != "fp32"
        with (
            torch.inference_mode(),
            self._autocast(),
            torch.backends.cudnn.flags(
                enabled=True, benchmark=False, deterministic=False, allow_tf32=tf32
            ),
        ):
            self._sync()
            t0 = time.perf_counter()
            y, feature = self.craft(x)
            self._sync()
            t1 = time.perf_counter()
            refined = self.refiner(y, feature) if with_refiner and self.refiner else None
            self._sync()
            t2 = time.perf_counter()
        maps = y.float().cpu().numpy()
        ref = refined.float().cpu().numpy()[..., 0] if refined is not None else None
        return ScoreMaps(maps[..., 0], maps[..., 1], ref, t1 - t0, t2 - t1)


class OnnxBackend:
    """ONNX Runtime on CPU, fp32, over graphs exported from the verified torch weights."""

    name = "onnxruntime"
    device = "cpu"
    precision = "fp32"

    def __init__(
        self, craft_onnx: Path, refiner_onnx: Path | None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(
            os.environ.get("OCRFLOW_THREADS", 0) or (os.cpu_count() or 1)
        )
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The arena keeps every activation size it ever saw (2.4 GB peak on a 1280 px page);
        # without it peak RSS drops to ~1.2 GB for the same speed (bench/bench_detector.py).
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = True
        providers = ["CPUExecutionProvider"]
        self._craft = ort.InferenceSession(str(craft_onnx), opts, providers=providers)
        self._refiner = (
            ort.InferenceSession(str(refiner_onnx), opts, providers=providers)
            if refiner_onnx
            else None
        )

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Forward (and refine) one batch."""
        if with_refiner and self._refiner is None:
            raise ValueError("this backend was built without the LinkRefiner")
        t0 = time.perf_counter()
        y, feature = self._craft.run(None, {"image": np.ascontiguousarray(batch)})
        t1 = time.perf_counter()
        refined = None
        if with_refiner and self._refiner is not None:
            refined = self._refiner.run(None, {"y": y, "feature": feature})[0][..., 0]
        t2 = time.perf_counter()
        return ScoreMaps(y[..., 0], y[..., 1], refined, t1 - t0, t2 - t1)
