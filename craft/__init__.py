"""CRAFT text detection (VGG16-BN CRAFT + LinkRefiner) as a plain library.

No Prefect, no database: pages in (BGR uint8 arrays), rotated regions out.
"""

from craft.params import PRESETS, DetectorParams
from craft.predictor import CraftPredictor, ModelInfo
from craft.types import PageResult, Region, StageTimings
from craft.weights_store import WeightsError
from craft.zoo import craft_predictor

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
]
