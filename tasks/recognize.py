"""Recognition task: a page's regions through the Tesseract worker pool, then into SQL.

The pool (one Tesseract engine per worker process) belongs to the flow run; the task only
queues the page on it, so both cores read while the detector works on the next slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy import Engine

from craft import Region
from db.recognition_writes import write_region_texts
from recognize import RecognitionPool

__all__ = ["recognize_page_texts"]


@task(name="recognize-page-texts", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def recognize_page_texts(
    pool: RecognitionPool,
    engine: Engine,
    run_id: int,
    page_id: int,
    image: np.ndarray,
    regions: Sequence[Region],
) -> int:
    """Read every region of a stored page result and write the texts onto its regions.

    Submit it with ``wait_for`` the page's region write: the texts update those rows.
    """
    texts = pool.submit(image, regions).result()
    return write_region_texts(engine, run_id=run_id, page_id=page_id, texts=texts)
