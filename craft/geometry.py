"""Quadrilateral geometry: map quads back to page pixels and describe them as rotated boxes."""

from __future__ import annotations

import math

import numpy as np

from craft.types import Region

__all__ = ["quad_to_region", "scale_quads", "size_filter"]


def scale_quads(quads: np.ndarray, ratio: float, ratio_net: float = 2.0) -> np.ndarray:
    """Map (N, 4, 2) quads from score-map to page pixels, in float32 as the reference does."""
    factor = np.array([ratio * ratio_net, ratio * ratio_net], dtype=np.float64)
    return (quads.astype(np.float64) * factor).astype(np.float32)


def quad_to_region(quad: np.ndarray, score: float, ndigits: int = 2) -> Region:
    """Describe an ordered quad (clockwise from top-left-most) as a rotated box.

    width = |p0 p1|, height = |p1 p2|; angle = direction of p0 -> p1 in degrees, clockwise on
    screen (y down), folded into [-90, 90) so a box and its 180-degree twin agree.
    """
    q = quad.astype(np.float64)
    p0, p1, p2 = q[0], q[1], q[2]
    width = float(np.hypot(*(p1 - p0)))
    height = float(np.hypot(*(p2 - p1)))
    angle = math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0]))
    angle = (angle + 90.0) % 180.0 - 90.0
    cx, cy = q.mean(axis=0)
    poly = tuple((round(float(x), ndigits), round(float(y), ndigits)) for x, y in q)
    return Region(
        polygon=poly,  # type: ignore[arg-type]
        center=(round(float(cx), ndigits), round(float(cy), ndigits)),
        size=(round(width, ndigits), round(height, ndigits)),
        angle=round(angle + 0.0, 4),
        score=round(min(max(float(score), 0.0), 1.0), 6),
    )


def size_filter(regions: list[Region], size_threshold: float) -> list[Region]:
    """Drop regions whose short side is below the threshold (in page pixels).

    ``size_threshold == -1`` derives the threshold from the page itself: half the median short
    side, i.e. half the typical text height, which removes specks at any DPI.
    """
    if not regions or size_threshold == 0:
        return regions
    short = np.array([min(r.size) for r in regions], dtype=np.float64)
    limit = 0.5 * float(np.median(short)) if size_threshold == -1 else float(size_threshold)
    return [r for r, s in zip(regions, short, strict=True) if s >= limit]
