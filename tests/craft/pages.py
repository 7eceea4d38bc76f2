"""Synthetic pages drawn with OpenCV's Hershey fonts (no fixture files needed)."""

from __future__ import annotations

import cv2
import numpy as np


def text_page(
    lines: list[str], size: tuple[int, int] = (400, 640), scale: float = 1.0, top: int = 60
) -> np.ndarray:
    """White BGR page with one line of black text per entry, 50 px apart."""
    page = np.full((*size, 3), 255, np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(page, text, (30, top + 50 * i), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2,
                    cv2.LINE_AA)  # fmt: skip
    return page


def mixed_pages() -> list[np.ndarray]:
    """Pages for predictor tests, small to stay cheap on CPU: sizes that share and do not
    share a padded size, a tilted page, a sideways page (the default preset detects it again
    upright) and a blank one."""
    sideways = text_page(["Sideways line of text"], size=(120, 420), top=70)
    return [
        text_page(["First page"], size=(100, 200)),
        text_page(["Second page", "and a second line"], size=(160, 300)),
        text_page(["Third"], size=(100, 200)),
        rotate_page(text_page(["A tilted line"], size=(160, 300), top=90), 6),
        np.ascontiguousarray(np.rot90(sideways)),
        np.full((64, 64, 3), 255, np.uint8),
        text_page(["Seventh"], size=(100, 200)),
    ]


def rotate_page(page: np.ndarray, angle: float) -> np.ndarray:
    """Rotate around the centre (counter-clockwise for positive ``angle``), white border."""
    h, w = page.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(page, m, (w, h), borderValue=(255, 255, 255))
