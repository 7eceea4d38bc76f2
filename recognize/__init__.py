"""Recognition: the text inside each detected region, read by Tesseract 5 (``tesserocr``).

Prefect-free and detector-free (no prefect, sqlalchemy or torch), so the flow's tasks, the CLI
and worker processes share it.

Example:
    >>> from recognize import RecognitionPool, PageJob, mode_for, recognize_page
    >>> texts = recognize_page(page_bgr, result.regions, mode=mode_for(with_refiner=True))
    >>> texts[0]  # Recognition(text='Reference sheet for natbib usage', confidence=0.93)
"""

from __future__ import annotations

from .crop import crop_region
from .engine import (
    Mode,
    TesseractEngine,
    TesseractNotFoundError,
    check_tesseract,
    find_tessdata,
    get_engine,
)
from .recognizer import PageJob, Recognition, RecognitionPool, mode_for, recognize_page

__all__ = [
    "Mode",
    "PageJob",
    "Recognition",
    "RecognitionPool",
    "TesseractEngine",
    "TesseractNotFoundError",
    "check_tesseract",
    "crop_region",
    "find_tessdata",
    "get_engine",
    "mode_for",
    "recognize_page",
]
