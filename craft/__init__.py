"""CRAFT text detection (VGG16-BN CRAFT + LinkRefiner) as a plain library.

No Prefect, no database: pages in (BGR uint8 arrays), rotated regions out. The predictor and
its factory load torch, so they are imported on first use: ``import craft`` for parameters and
result types stays light (worker processes and the CLI's start-up depend on it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from craft.params import PRESETS, DetectorParams
from craft.types import PageResult, Region, StageTimings
from craft.weights_store import WeightsError

if TYPE_CHECKING:
    from craft.predictor import CraftPredictor, ModelInfo
    from craft.zoo import craft_predictor, weight_digests

__all__ = [
    "PRESETS",
    "CraftPredictor",
    "DetectorParams",
    "ModelInfo",
    "PageResult",
    "Region",
    "StageTimings",
    "WeightsError",
    "craft_predictor",
    "weight_digests",
]

_LAZY = {
    "CraftPredictor": "craft.predictor",
    "ModelInfo": "craft.predictor",
    "craft_predictor": "craft.zoo",
    "weight_digests": "craft.zoo",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'craft' has no attribute '{name}'")
