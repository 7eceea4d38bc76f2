"""Regenerate ``memo.jpg``: a synthetic phone photo of a memo (our own work, Apache-2.0).

Run ``python samples/make_memo.py``; it is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

LINES = [
    ("MEMORANDUM", 1.6, 3),
    ("To: Document processing team", 0.9, 2),
    ("From: ocrflow maintainers", 0.9, 2),
    ("Date: 26 November 2026", 0.9, 2),
    ("", 0.9, 2),
    ("Subject: rotated text regions in SQL", 0.9, 2),
    ("", 0.9, 2),
    ("Every page is rasterized, detected with CRAFT and", 0.8, 2),
    ("the LinkRefiner, and stored as rotated boxes with", 0.8, 2),
    ("scores, so analysts can query them in plain SQL.", 0.8, 2),
    ("", 0.9, 2),
    ("Invoice 2026-0042      Total due: 1,234.56 EUR", 0.8, 2),
]


def make_memo(seed: int = 7) -> np.ndarray:
    """Draw the memo page; seeded, so the committed JPEG can be regenerated identically."""
    page = np.full((1100, 900, 3), 250, np.uint8)
    y = 110
    for text, scale, thick in LINES:
        if text:
            cv2.putText(page, text, (70, y), cv2.FONT_HERSHEY_DUPLEX, scale, (30, 30, 30), thick,
                        cv2.LINE_AA)  # fmt: skip
        y += int(62 * max(scale, 0.9))
    # A phone photo: the sheet on a desk, slightly turned and in perspective, with noise.
    h, w = page.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[90, 60], [w + 60, 110], [w + 20, h + 120], [40, h + 70]])
    m = cv2.getPerspectiveTransform(src, dst)
    photo = cv2.warpPerspective(page, m, (w + 140, h + 200), borderValue=(95, 120, 140))
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 4, photo.shape)
    return np.clip(photo.astype(np.float32) + noise, 0, 255).astype(np.uint8)


if __name__ == "__main__":
    out = Path(__file__).with_name("memo.jpg")
    cv2.imwrite(str(out), make_memo(), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(out)
