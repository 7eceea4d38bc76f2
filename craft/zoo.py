"""Factories: verified weights -> models -> a ready ``CraftPredictor``, cached per process.

Loading CRAFT costs about a second and 80 MB; flows call ``craft_predictor`` per task, so the
loaded engines are memoised by everything that changes them. torch is imported only by the
paths that need it (the torch engine, or exporting the ONNX graphs once): a CPU worker running
the cached ONNX graphs never loads it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from craft.backends import InferenceBackend, resolve_device
from craft.fast import fast_path
from craft.int8_refiner import int8_refiner_path, quantise_refiner
from craft.onnx_backend import OnnxBackend, OnnxRefiner
from craft.onnx_export import onnx_cache_paths
from craft.params import DetectorParams, Preset
from craft.predictor import CraftPredictor, ModelInfo
from craft.weights_store import WEIGHTS, cache_dir, resolve_weights

if TYPE_CHECKING:
    import torch

    from craft.model import CRAFT
    from craft.refiner import RefineNet

__all__ = [
    "clear_cache",
    "craft_predictor",
    "ensure_int8_refiner",
    "ensure_onnx",
    "load_craft",
    "load_refiner",
    "weight_digests",
]

logger = logging.getLogger(__name__)

CRAFT_WEIGHTS = "craft_mlt_25k"
REFINER_WEIGHTS = "craft_refiner_CTW1500"


def weight_digests(params: DetectorParams) -> tuple[str, str | None]:
    """``(model_sha256, refiner_sha256 or None)`` of the weights ``params`` run with.

    The pinned digests: every weight file is verified against them on load, so they are what
    would run, known without loading anything. What a run records (``ModelInfo``) and what a
    planner expects before any run (``db.writes.params_hash`` of these and the parameters)
    both come from here.
    """
    refiner = WEIGHTS[REFINER_WEIGHTS].sha256 if params.with_refiner else None
    return WEIGHTS[CRAFT_WEIGHTS].sha256, refiner


def _load_state(path: Path) -> dict[str, torch.Tensor]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k.removeprefix("module."): v for k, v in state.items()}


@functools.lru_cache(maxsize=4)
def load_craft(path: Path) -> CRAFT:
    """CRAFT with verified weights (``path`` must come from ``resolve_weights``)."""
    from craft.model import CRAFT

    model = CRAFT()
    model.load_state_dict(_load_state(path), strict=True)
    return model.eval()


@functools.lru_cache(maxsize=4)
def load_refiner(path: Path) -> RefineNet:
    """LinkRefiner with verified weights (``path`` must come from ``resolve_weights``)."""
    from craft.refiner import RefineNet

    model = RefineNet()
    model.load_state_dict(_load_state(path), strict=True)
    return model.eval()


def ensure_onnx(
    craft_path: Path, refiner_path: Path, cache_root: Path | None = None, force: bool = False
) -> tuple[Path, Path]:
    """Return the cached ONNX graphs for these weights, exporting them on first use."""
    root = cache_root or cache_dir()
    craft_onnx, refiner_onnx = onnx_cache_paths(
        root, WEIGHTS[CRAFT_WEIGHTS].sha256, WEIGHTS[REFINER_WEIGHTS].sha256
    )
    if force or not (craft_onnx.is_file() and refiner_onnx.is_file()):
        from craft.onnx_export import export_onnx

        export_onnx(load_craft(craft_path), load_refiner(refiner_path), craft_onnx, refiner_onnx)
    return craft_onnx, refiner_onnx


def calibration_pages() -> list[np.ndarray]:
    """The pages the int8 LinkRefiner is calibrated on: the bundled samples (BGR).

    The sample PDF at 100 dpi (the agreement test scores it at 150) and the memo photo.
    ``ingest`` renders the PDF: imported here, the one place ``craft`` reads a document.
    """
    import importlib.resources

    import cv2

    from ingest import IngestOptions, Page, iter_pages, open_document

    samples = Path(str(importlib.resources.files("samples")))
    options = IngestOptions(dpi=100)
    document = open_document(samples / "natnotes.pdf", options)
    pages = [p.image for p in iter_pages(document, options) if isinstance(p, Page)]
    memo = cv2.imread(str(samples / "memo.jpg"), cv2.IMREAD_COLOR)
    return [*pages, *([memo] if memo is not None else [])]


def ensure_int8_refiner(craft_path: Path, refiner_path: Path, force: bool = False) -> Path:
    """The cached int8 LinkRefiner graph for these weights, quantised on first use."""
    craft_onnx, refiner_onnx = ensure_onnx(craft_path, refiner_path)
    dest = int8_refiner_path(refiner_onnx)
    if force or not dest.is_file():
        logger.info("quantising the LinkRefiner to int8 for this machine (once, under a minute)")
        quantise_refiner(craft_onnx, refiner_onnx, dest, calibration_pages())
    return dest


def _pick_backend(params: DetectorParams, device: str) -> str:
    if params.backend != "auto":
        return params.backend
    return "onnxruntime" if device == "cpu" and params.precision == "fp32" else "torch"


@functools.lru_cache(maxsize=8)
def _engine(
    backend: str,
    device: str,
    precision: str,
    craft_path: Path,
    refiner_path: Path,
    int8_refiner: bool = False,
) -> InferenceBackend:
    if backend == "onnxruntime":
        if device != "cpu" or precision != "fp32":
            raise ValueError(
                f"backend 'onnxruntime' runs fp32 on the CPU only (got device '{device}', "
                f"precision '{precision}'); use backend 'torch' or 'auto'"
            )
        craft_onnx, refiner_onnx = ensure_onnx(craft_path, refiner_path)
        if int8_refiner:
            refiner_onnx = ensure_int8_refiner(craft_path, refiner_path)
        return OnnxBackend(craft_onnx, refiner_onnx)
    if backend == "torch":
        from craft.model import CRAFT, fold_batch_norms
        from craft.refiner import RefineNet
        from craft.torch_backend import TorchBackend

        # Separate module copies per engine: .to(device) moves modules in place.
        craft = CRAFT()
        craft.load_state_dict(load_craft(craft_path).state_dict())
        if precision != "fp32" and device == "cpu":
            fold_batch_norms(craft.eval())  # measured on CPU only; fp32 keeps parity unfolded
        if int8_refiner:
            external = OnnxRefiner(ensure_int8_refiner(craft_path, refiner_path))
            return TorchBackend(craft, None, device, precision, external_refiner=external)
        refiner = RefineNet()
        refiner.load_state_dict(load_refiner(refiner_path).state_dict())
        return TorchBackend(craft, refiner, device=device, precision=precision)
    raise ValueError(f"unknown backend '{backend}' (auto, onnxruntime, torch)")


# What ``craft_predictor`` returns instead of building a predictor, while ``substituted`` is
# active: the one hook a simulation (``craft.replay``) needs to reach every in-process caller.
_substitute: Callable[[DetectorParams], CraftPredictor] | None = None


@contextlib.contextmanager
def substituted(factory: Callable[[DetectorParams], CraftPredictor]) -> Iterator[None]:
    """Within the block, ``craft_predictor`` returns ``factory(params)`` for the resolved
    parameters, loading no weights and no engine.

    For simulations and benchmarks (``craft.replay.replaying``): the flow, the CLI and the
    page pipeline get the stand-in without a parameter of their own. Process-wide, not
    thread-local; blocks nest (the previous substitute comes back on exit).
    """
    global _substitute
    previous, _substitute = _substitute, factory
    try:
        yield
    finally:
        _substitute = previous


def craft_predictor(
    preset: Preset = "default",
    params: DetectorParams | None = None,
    *,
    craft_weights: str | os.PathLike[str] | None = None,
    refiner_weights: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> CraftPredictor:
    """Build (or reuse) a predictor.

    >>> predictor = craft_predictor("words", width=960)
    >>> [page] = predictor([cv2.imread("scan.png")])
    >>> page.regions[0].polygon

    Args:
        preset: "default" (product card, lines), "words" (CRAFT defaults) or "lines".
        params: full parameters; ``overrides`` are applied on top of it or of the preset.
        craft_weights: explicit path to ``craft_mlt_25k.pth`` (else env, package, cache).
        refiner_weights: explicit path to ``craft_refiner_CTW1500.pth``.
    """
    if params is None:
        params = DetectorParams.preset(preset, **overrides)
    elif overrides:
        params = params.model_copy(update=overrides)
        params = DetectorParams.model_validate(params.model_dump())
    if _substitute is not None:
        return _substitute(params)
    craft_path = resolve_weights(CRAFT_WEIGHTS, craft_weights)
    refiner_path = resolve_weights(REFINER_WEIGHTS, refiner_weights)
    device = resolve_device(params.device)
    backend = _pick_backend(params, device)
    precision: str = params.precision
    label: str = params.precision
    blank_skip = int8_refiner = False
    if params.precision == "fast":
        fast = fast_path(device, params.backend)
        backend, precision, label = fast.backend, fast.precision, fast.label
        blank_skip, int8_refiner = fast.blank_skip, fast.int8_refiner
    engine = _engine(backend, device, precision, craft_path, refiner_path, int8_refiner)
    model_sha256, refiner_sha256 = weight_digests(params)
    info = ModelInfo(
        model=CRAFT_WEIGHTS,
        model_sha256=model_sha256,
        refiner=REFINER_WEIGHTS if params.with_refiner else None,
        refiner_sha256=refiner_sha256,
        backend=engine.name,
        device=device,
        precision=label,  # for "fast", the concrete path (e.g. bf16+crop), as runs record it
    )
    return CraftPredictor(engine, params, info, blank_skip=blank_skip)


def clear_cache() -> None:
    """Forget loaded models and engines (tests, or to free memory)."""
    _engine.cache_clear()
    fast_path.cache_clear()
    load_craft.cache_clear()
    load_refiner.cache_clear()
