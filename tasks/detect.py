"""Detection task: a batch of BGR pages through CRAFT.

Tagged ``gpu`` so a Prefect concurrency limit on that tag holds GPU work to one run at a time.
The predictor (weights, ONNX session or CUDA module) is cached per worker process by
``craft.zoo``, so only the first call pays for loading.
"""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from craft import CraftPredictor, DetectorParams, PageResult, craft_predictor

__all__ = ["detect_pages", "get_predictor"]


def get_predictor(params: DetectorParams) -> CraftPredictor:
    """The process-wide predictor for these parameters (engines are shared and cached)."""
    return craft_predictor(params=params)


@task(name="detect-pages", tags=["gpu"], cache_policy=NO_CACHE)
def detect_pages(images: list[np.ndarray], params: DetectorParams) -> list[PageResult]:
    """Rotated text regions for each page, in the order given."""
    return get_predictor(params).predict(images)
