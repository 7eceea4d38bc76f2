"""Page orientation: which quarter turn makes a page upright, from the regions found on it.

CRAFT finds characters whatever their direction, so the first pass's regions already say how a
page lies, at the cost of a few array operations:

- **sideways** (90 or 270): the elongated regions (words, lines) run vertically;
- **which way up**: Latin-script lines carry much more ink above their x-height band
  (capitals, b d f h k l t, digits, i-dots) than below their baseline (g j p q y). Each
  elongated region's row profile votes with that asymmetry, weighted by its ink; a page whose
  vote comes out reversed is upside down.

Only a page that is not upright costs a second pass (``CraftPredictor`` detects again on the
turned page and maps the regions back into the original page's pixels).

``orientation`` is the clockwise angle the content is turned by on the page (0, 90, 180,
270): a page scanned a quarter turn clockwise has orientation 90 and is made upright by
turning it 90 degrees counter-clockwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from craft.geometry import quads_to_regions
from craft.postprocess import order_quad, order_quads
from craft.tighten import InkCrops
from craft.types import Region

__all__ = [
    "ORIENTATIONS",
    "Orientation",
    "page_orientation",
    "regions_to_original",
    "turn_matrix",
    "turn_page",
    "updown_vote",
    "upright_page",
]

ORIENTATIONS = (0, 90, 180, 270)
Orientation = int
MAX_REGIONS = 80  # the longest regions are enough to decide; bounds the cost on dense pages
ELONGATED = 2.0  # long / short side from which a region's direction counts
SIDEWAYS = 2.0  # vertical length this many times the horizontal one: the page is sideways
UPSIDE_DOWN = -0.15  # ink-weighted vote below this: upside down (margins: docs/accuracy.md)

_ROTATE = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def turn_page(page: np.ndarray, degrees: int) -> np.ndarray:
    """The page turned clockwise by a multiple of 90 degrees."""
    degrees %= 360
    return page if degrees == 0 else cv2.rotate(page, _ROTATE[degrees])


def upright_page(page: np.ndarray, orientation: int) -> np.ndarray:
    """The page made upright: turned back by its orientation."""
    return turn_page(page, -orientation)


def turn_matrix(degrees: int, width: int, height: int) -> np.ndarray:
    """2x3 affine taking points of a ``width`` x ``height`` page to the same page turned
    clockwise by ``degrees`` (a multiple of 90), as ``turn_page`` turns its pixels."""
    rows = {
        0: [[1, 0, 0], [0, 1, 0]],
        90: [[0, -1, height], [1, 0, 0]],
        180: [[-1, 0, width], [0, -1, height]],
        270: [[0, 1, 0], [-1, 0, width]],
    }[degrees % 360]
    return np.array(rows, dtype=np.float64)


def regions_to_original(
    regions: Sequence[Region], orientation: int, upright_w: int, upright_h: int
) -> list[Region]:
    """Regions found on the upright page, in the pixels of the page as it was given."""
    if orientation % 360 == 0:
        return list(regions)
    if not regions:
        return []
    m = turn_matrix(orientation, upright_w, upright_h)
    # The matrix holds 0 and +-1 only: every product and sum is exact, in any order.
    quads = np.asarray([r.polygon for r in regions], dtype=np.float64) @ m[:, :2].T + m[:, 2]
    return quads_to_regions(order_quads(quads.astype(np.float32)), [r.score for r in regions])


def _elongated(regions: Sequence[Region]) -> list[tuple[np.ndarray, float, bool]]:
    """(quad, long side, runs vertically) of the longest elongated regions."""
    if not regions:
        return []
    q = np.asarray([r.polygon for r in regions], dtype=np.float64)
    a, b = q[:, 1] - q[:, 0], q[:, 3] - q[:, 0]
    la, lb = np.hypot(a[:, 0], a[:, 1]), np.hypot(b[:, 0], b[:, 1])
    short, long = np.minimum(la, lb), np.maximum(la, lb)
    keep = np.flatnonzero((short >= 1) & (long >= ELONGATED * short))
    axis = np.where((la >= lb)[:, None], a, b)
    vertical = np.abs(axis[:, 1]) > np.abs(axis[:, 0])
    keep = keep[np.argsort(-long[keep], kind="stable")][:MAX_REGIONS]
    return [(q[i], float(long[i]), bool(vertical[i])) for i in keep.tolist()]


def _reading_quad(q: np.ndarray, vertical: bool) -> np.ndarray:
    """Corners reordered so that ``ink_crop`` warps the region as read on the page turned
    90 degrees counter-clockwise when it runs vertically (p0 top-right, p1 bottom-right,
    p3 top-left), as it stands otherwise (p0 top-left, p1 top-right, p3 bottom-left)."""
    if not vertical:
        return order_quad(q.astype(np.float32)).astype(np.float64)
    c = q.mean(axis=0)
    qs = q[np.argsort(np.arctan2(q[:, 1] - c[1], q[:, 0] - c[0]))]  # clockwise on screen
    return np.roll(qs, -int(np.argmin(qs[:, 1] - qs[:, 0])), axis=0)


def updown_vote(ink: np.ndarray) -> tuple[float, float]:
    """(vote, weight) of one upright-warped region: + for ink above the x-height band."""
    rows = ink.sum(axis=1).astype(np.float64)
    total = float(rows.sum())
    if total <= 0 or rows.max() <= 0:
        return 0.0, 0.0
    band = np.flatnonzero(rows >= 0.5 * rows.max())
    top, bottom = int(band[0]), int(band[-1])
    above, below = float(rows[:top].sum()), float(rows[bottom + 1 :].sum())
    if above + below <= 0:
        return 0.0, 0.0
    return (above - below) / (above + below), above + below


def page_orientation(
    page: np.ndarray, regions: Sequence[Region], crops: InkCrops | None = None
) -> int:
    """The page's orientation (0, 90, 180, 270) from its first-pass regions.

    ``crops``: the page's ``InkCrops``, to share the regions' crops with tight boxes.
    """
    longest = _elongated(regions)
    if not longest:
        return 0
    vertical = sum(length for _, length, v in longest if v)
    horizontal = sum(length for _, length, v in longest if not v)
    sideways = vertical > SIDEWAYS * horizontal
    crops = InkCrops(page) if crops is None else crops
    votes = weights = 0.0
    for q, _, v in longest:
        if v != sideways:
            continue
        ink = crops(_reading_quad(q, v))
        if ink is None:
            continue
        vote, weight = updown_vote(ink)
        votes += vote * weight
        weights += weight
    score = votes / weights if weights else 0.0
    if sideways:
        # Read as if turned counter-clockwise: upright text then means the page was turned
        # clockwise (90); reversed text means 270.
        return 90 if score >= 0 else 270
    return 180 if score < UPSIDE_DOWN else 0
