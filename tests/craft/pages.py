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


def rotate_page(page: np.ndarray, angle: float) -> np.ndarray:
    """Rotate around the centre (counter-clockwise for positive ``angle``), white border."""
    h, w = page.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(page, m, (w, h), borderValue=(255, 255, 255))
