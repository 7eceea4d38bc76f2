"""The LinkRefiner in int8, for ``precision="fast"`` on CPUs with VNNI instructions.

The refiner is about a quarter of a page's arithmetic, and its dilated convolutions gain
little from bf16; ONNX Runtime's static int8 (QDQ, per-channel int8 weights, uint8
activations, min/max calibration) runs it ~3x faster than fp32 with VNNI and keeps fp32's
boxes within the fast path's tolerance. CRAFT itself does not survive int8 (every part of it
moved 2-5% of the boxes when quantised; docs/performance.md has the table), so only the
refiner is offered.

Without VNNI, u8 x s8 products saturate and full-range weights break the maps, so the
quantised graph is only chosen on CPUs that have it (``craft.fast``).

The quantised graph is derived from the fp32 refiner graph once per machine and cached next
to it; calibration runs the fp32 CRAFT graph over the pages it is given (the bundled samples,
see ``craft.zoo``), never over pages scored by the agreement test at the same scale.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from craft.preprocess import prepare_batch

__all__ = [
    "QUANT_RECIPE",
    "VNNI_FLAGS",
    "CalibrationFeeds",
    "int8_refiner_path",
    "quantise_refiner",
]

# x86 instructions with u8 x s8 dot products that accumulate without saturating.
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
QUANT_RECIPE = "3"  # bump when the quantisation below changes, so caches are rebuilt
# Calibration keeps every activation of one page at a time. Nearer the 1280 px the detector
# runs at than the 640 px first tried (default-preset boxes moved: 1.3% at 640, 1.05% at 960).
CALIBRATION_WIDTH = 960


def int8_refiner_path(refiner_onnx: Path) -> Path:
    """Where the quantised graph of this fp32 refiner graph is cached (beside it)."""
    version = importlib.metadata.version("onnxruntime")
    key = hashlib.sha256(f"{version}:{QUANT_RECIPE}".encode()).hexdigest()[:12]
    return refiner_onnx.with_name(f"{refiner_onnx.stem}.int8-{key}.onnx")


class CalibrationFeeds:
    """ONNX Runtime's CalibrationDataReader protocol over a list of feeds, with the ranges
    its strided calibration asks for (one page at a time keeps calibration's memory low)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self._feeds = feeds
        self._it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self._feeds[start_index:end_index])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantise_refiner(
    craft_onnx: Path,
    refiner_onnx: Path,
    dest: Path,
    pages: Sequence[np.ndarray],
    width: int = CALIBRATION_WIDTH,
    fp32_nodes: Sequence[str] = (),
) -> Path:
    """Write the int8 refiner graph to ``dest`` (atomically), calibrated on ``pages`` (BGR)
    resized to ``width``; ``fp32_nodes`` (graph node names) stay fp32 (for experiments)."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not pages:
        raise ValueError("the int8 refiner needs at least one calibration page")
    craft = ort.InferenceSession(str(craft_onnx), providers=["CPUExecutionProvider"])
    feeds = []
    for page in pages:
        batch, _ = prepare_batch([page], width, 1.5)
        y, feature = craft.run(None, {"image": batch})
        feeds.append({"y": y, "feature": feature})
    del craft
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        pre = Path(tmp) / "refiner.pre.onnx"
        part = Path(tmp) / "refiner.int8.onnx"
        quant_pre_process(str(refiner_onnx), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre), str(part), CalibrationFeeds(feeds), quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=list(fp32_nodes),
            extra_options={"CalibStridedMinMax": 1},
        )  # fmt: skip
        os.chmod(part, 0o644)  # a shared cache must be readable by other users' workers
        os.replace(part, dest)  # concurrent builders: the last complete file wins
    return dest
