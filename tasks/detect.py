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
from tasks.names import task_run_namer

__all__ = ["detect_pages", "get_predictor"]


def get_predictor(params: DetectorParams) -> CraftPredictor:
    """The process-wide predictor for these parameters (engines are shared and cached)."""
    return craft_predictor(params=params)


@task(
    name="detect-pages",
    task_run_name=task_run_namer("detect", lambda p: p["label"] or f"{len(p['images'])} pages"),
    tags=["gpu"],
    cache_policy=NO_CACHE,
)
def detect_pages(
    images: list[np.ndarray], params: DetectorParams, label: str = ""
) -> list[PageResult]:
    """Rotated text regions for each page, in the order given.

    ``label`` names the task run in the UI (``memo.jpg p1-4``); it changes nothing else.
    """
    return get_predictor(params).predict(images)
