"""Export CRAFT and the LinkRefiner to ONNX once per machine, cached by weights and exporter.

The graphs are derived from the verified torch weights rather than downloaded, so the ONNX
path can never drift from the weights whose sha256 was checked. The cache key covers both
weights' digests, the torch version and this module's export recipe version.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when a graph is actually exported
    import torch

    from craft.model import CRAFT
    from craft.refiner import RefineNet

__all__ = ["EXPORT_RECIPE", "OPSET", "export_onnx", "onnx_cache_paths"]

OPSET = 17
EXPORT_RECIPE = "1"  # bump when the export code changes, so caches are rebuilt


def _cache_key(craft_sha256: str, refiner_sha256: str) -> str:
    # The installed distribution's version, read without importing torch (1 s, 210 MB).
    torch_version = importlib.metadata.version("torch")
    text = f"{craft_sha256}:{refiner_sha256}:{torch_version}:{OPSET}:{EXPORT_RECIPE}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def onnx_cache_paths(cache_root: Path, craft_sha256: str, refiner_sha256: str) -> tuple[Path, Path]:
    """Where the CRAFT and refiner graphs for these weights live in the cache."""
    folder = cache_root / "onnx" / _cache_key(craft_sha256, refiner_sha256)
    return folder / "craft.onnx", folder / "refiner.onnx"


def _atomic_export(
    module: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    dest: Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
) -> None:
    import torch

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.stem, suffix=".onnx.part", dir=dest.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # a shared cache must be readable by other users' workers
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                tmp,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.replace(tmp, dest)  # concurrent exporters: the last complete file wins, none is torn
    finally:
        Path(tmp).unlink(missing_ok=True)


def export_onnx(craft: CRAFT, refiner: RefineNet, craft_path: Path, refiner_path: Path) -> None:
    """Write both graphs with dynamic batch, height and width."""
    import torch

    craft = craft.eval().float().cpu()
    refiner = refiner.eval().float().cpu()
    x = torch.zeros(1, 3, 64, 96)
    with torch.no_grad():
        y, feature = craft(x)
    _atomic_export(
        craft, (x,), craft_path, ["image"], ["y", "feature"],
        {
            "image": {0: "batch", 2: "height", 3: "width"},
            "y": {0: "batch", 1: "map_h", 2: "map_w"},
            "feature": {0: "batch", 2: "map_h", 3: "map_w"},
        },
    )  # fmt: skip
    _atomic_export(
        refiner, (y, feature), refiner_path, ["y", "feature"], ["refined"],
        {
            "y": {0: "batch", 1: "map_h", 2: "map_w"},
            "feature": {0: "batch", 2: "map_h", 3: "map_w"},
            "refined": {0: "batch", 1: "map_h", 2: "map_w"},
        },
    )  # fmt: skip
