"""The torch engine: the reference at fp32, and the CUDA path (autocast, channels_last, pinned)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import numpy as np
import torch

from craft.backends import ScoreMaps, cpu_flags, run_normalised, slow_cpu_precision
from craft.model import CRAFT
from craft.preprocess import IMAGENET_MEAN, IMAGENET_STD
from craft.refiner import RefineNet

__all__ = ["TorchBackend"]

M = TypeVar("M", bound=torch.nn.Module)

_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# A refiner run by another engine: CRAFT's ``y`` (N, H/2, W/2, 2) and ``feature``
# (N, 32, H/2, W/2) as float32 arrays in, the refined link map (N, H/2, W/2) out.
ExternalRefiner = Callable[[np.ndarray, np.ndarray], np.ndarray]


class TorchBackend:
    """CRAFT and LinkRefiner in torch; fp32 is the reference, bf16/fp16 use autocast.

    ``external_refiner`` runs the LinkRefiner elsewhere instead (the fast path on VNNI CPUs:
    ``craft.int8_refiner`` in ONNX Runtime); ``refiner`` is then unused.
    """

    name = "torch"

    def __init__(
        self,
        craft: CRAFT,
        refiner: RefineNet | None,
        device: str = "cpu",
        precision: str = "fp32",
        channels_last: bool | None = None,
        allow_tf32: bool | None = None,
        external_refiner: ExternalRefiner | None = None,
    ) -> None:
        if precision not in ("fp32", *_DTYPES):
            raise ValueError(f"unknown precision '{precision}' (fp32, bf16, fp16)")
        self.device = device
        self._cuda = device.startswith("cuda")
        self.precision = precision
        if not self._cuda and precision in _DTYPES:
            slow = slow_cpu_precision(precision, cpu_flags())
            if slow:
                warnings.warn(slow, RuntimeWarning, stacklevel=2)
        # channels_last changes the CPU kernels' summation order (maps move by ~1e-6 only);
        # it is off at fp32 on CPU so that path stays the reference's.
        self.channels_last = (
            channels_last if channels_last is not None else (precision != "fp32" or device != "cpu")
        )
        # fp32 on CUDA means fp32 by default: TF32 convolutions (torch's own default, so the
        # official CRAFT code's) move the maps past reference parity.
        self.allow_tf32 = allow_tf32 if allow_tf32 is not None else precision != "fp32"
        self._mean = torch.from_numpy(IMAGENET_MEAN).reshape(1, 3, 1, 1).to(device)
        self._std = torch.from_numpy(IMAGENET_STD).reshape(1, 3, 1, 1).to(device)
        self.craft = self._place(craft)
        self.external_refiner = external_refiner
        self.refiner = (
            self._place(refiner) if refiner is not None and external_refiner is None else None
        )

    def _place(self, module: M) -> M:
        module = module.eval().to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        return module

    def _sync(self) -> None:
        if self._cuda:
            torch.cuda.synchronize(self.device)

    def _autocast(self) -> torch.autocast:
        dev_type = "cuda" if self._cuda else "cpu"
        dtype = _DTYPES.get(self.precision, torch.float32)
        return torch.autocast(dev_type, dtype=dtype, enabled=self.precision != "fp32")

    def run(self, batch: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """Forward (and refine) one normalised NCHW float32 batch."""
        return self._forward(self._upload(batch), with_refiner)

    def run_pixels(self, pixels: np.ndarray, with_refiner: bool) -> ScoreMaps:
        """On CUDA, ship uint8 pixels (4x fewer bytes) and normalise on the GPU; on CPU,
        normalise with numpy. Either way the input is bit-identical to the reference's."""
        if not self._cuda:
            return run_normalised(self.run, pixels, with_refiner)
        t0 = time.perf_counter()
        x = self.device_input(pixels)
        self._sync()
        t_pre = time.perf_counter() - t0
        return replace(self._forward(x, with_refiner), preprocess_s=t_pre)

    def device_input(self, pixels: np.ndarray) -> torch.Tensor:
        """The normalised NCHW float32 input on this engine's device.

        ``(x - mean) / std`` with per-channel device tensors: the same two IEEE float32
        operations as numpy (a Python-scalar divisor would let CUDA multiply by a reciprocal
        instead). The NCHW view of NHWC pixels is already channels_last.
        """
        x = self._upload(pixels)
        return (x.permute(0, 3, 1, 2).float() - self._mean) / self._std

    def _upload(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the engine's device (through pinned memory on CUDA)."""
        x = torch.from_numpy(array)
        return x.pin_memory().to(self.device, non_blocking=True) if self._cuda else x

    def _forward(self, x: torch.Tensor, with_refiner: bool) -> ScoreMaps:
        if with_refiner and self.refiner is None and self.external_refiner is None:
            raise ValueError("this backend was built without the LinkRefiner")
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.contiguous(memory_format=fmt)
        with (
            torch.inference_mode(),
            self._autocast(),
            torch.backends.cudnn.flags(
                enabled=True, benchmark=False, deterministic=False, allow_tf32=self.allow_tf32
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
        refine_s = t2 - t1
        if with_refiner and self.external_refiner is not None:
            ref = self.external_refiner(maps, feature.float().cpu().numpy())
            refine_s = time.perf_counter() - t2
        return ScoreMaps(maps[..., 0], maps[..., 1], ref, t1 - t0, refine_s)
