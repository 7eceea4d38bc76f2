"""Quadrilateral geometry: map quads back to page pixels and describe them as rotated boxes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from craft.types import Region

__all__ = ["quad_to_region", "quads_to_regions", "scale_quads", "size_filter"]


def scale_quads(quads: np.ndarray, ratio: float, ratio_net: float = 2.0) -> np.ndarray:
    """Map (N, 4, 2) quads from score-map to page pixels, in float32 as the reference does."""
    factor = np.array([ratio * ratio_net, ratio * ratio_net], dtype=np.float64)
    return (quads.astype(np.float64) * factor).astype(np.float32)


def quad_to_region(quad: np.ndarray, score: float, ndigits: int = 2) -> Region:
    """Describe an ordered quad (clockwise from top-left-most) as a rotated box.

    width = |p0 p1|, height = |p1 p2|; angle = direction of p0 -> p1 in degrees, clockwise on
    screen (y down), folded into [-90, 90) so a box and its 180-degree twin agree.
    """
    [region] = quads_to_regions(np.asarray(quad)[None], [score], ndigits)
    return region


def quads_to_regions(
    quads: np.ndarray, scores: Sequence[float] | np.ndarray, ndigits: int = 2
) -> list[Region]:
    """``quad_to_region`` of each of (N, 4, 2) ordered quads, the arithmetic done per array.

    Sides and centres are numpy element-wise operations (the same float64 results as per quad);
    the angle stays ``math.atan2`` and the rounding Python's ``round``, as per quad, so the
    regions are the same to the last bit.
    """
    q = np.asarray(quads, dtype=np.float64).reshape(-1, 4, 2)
    if len(q) != len(scores):
        raise ValueError(f"{len(q)} quads but {len(scores)} scores")
    d01, d12 = q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]
    widths = np.hypot(d01[:, 0], d01[:, 1]).tolist()
    heights = np.hypot(d12[:, 0], d12[:, 1]).tolist()
    centers = q.mean(axis=1).tolist()
    corners = q.tolist()
    dx, dy = d01[:, 0].tolist(), d01[:, 1].tolist()
    out = []
    for i, score in enumerate(scores):
        angle = (math.degrees(math.atan2(dy[i], dx[i])) + 90.0) % 180.0 - 90.0
        cx, cy = centers[i]
        poly = tuple((round(x, ndigits), round(y, ndigits)) for x, y in corners[i])
        out.append(
            Region(
                polygon=poly,  # type: ignore[arg-type]
                center=(round(cx, ndigits), round(cy, ndigits)),
                size=(round(widths[i], ndigits), round(heights[i], ndigits)),
                angle=round(angle + 0.0, 4),
                score=round(min(max(float(score), 0.0), 1.0), 6),
            )
        )
    return out


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
