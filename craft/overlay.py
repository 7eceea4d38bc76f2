"""Draw detected regions on a page, as Visual NLP's ImageDrawRegions does (green, 4 px)."""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from craft.types import Region

__all__ = ["GREEN", "draw_regions", "thumbnail"]

GREEN = (0, 255, 0)  # BGR


def draw_regions(
    page: np.ndarray,
    regions: Iterable[Region],
    color: tuple[int, int, int] = GREEN,
    thickness: int = 4,
) -> np.ndarray:
    """Return a copy of the BGR page with each region's rotated polygon outlined."""
    canvas = np.ascontiguousarray(page).copy()
    polys = [np.round(np.asarray(r.polygon)).astype(np.int32) for r in regions]
    if polys:
        cv2.polylines(canvas, polys, isClosed=True, color=color, thickness=thickness,
                      lineType=cv2.LINE_AA)  # fmt: skip
    return canvas


def thumbnail(image: np.ndarray, max_side: int = 800) -> np.ndarray:
    """Shrink (never enlarge) so the long side is at most ``max_side``; area-averaged."""
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return image
    size = (max(int(w * scale), 1), max(int(h * scale), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
