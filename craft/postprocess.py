"""From CRAFT's score maps to rotated quadrilaterals, fast by construction.

The reference walks every connected component with whole-map operations (``labels == k`` over
the full map, a full-size segmentation canvas), so dense pages cost O(components x pixels).
Here every step works inside the component's own dilation window, which is provably the same
computation: the component's pixels and its dilation never leave that window. The result equals
the reference box for box (see ``craft.reference`` and its parity tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MapBoxes", "detect_quads", "order_quad", "order_quads", "row_ends"]


@dataclass(frozen=True, slots=True)
class MapBoxes:
    """Quads in map coordinates (half the network input) with each one's text score."""

    quads: np.ndarray  # (N, 4, 2) float32, clockwise from the top-left-most corner
    scores: np.ndarray  # (N,) float32, mean text score over the component's pixels


def order_quad(box: np.ndarray) -> np.ndarray:
    """Start at the corner with the smallest x + y, keeping cv2.boxPoints' clockwise order."""
    start = int(box.sum(axis=1).argmin())
    return box[_ROLLS[start]]  # what np.roll(box, 4 - start, 0) gives, without its overhead


def order_quads(quads: np.ndarray) -> np.ndarray:
    """``order_quad`` of each of (N, 4, 2) quads at once."""
    start = quads.sum(axis=2).argmin(axis=1)
    return np.take_along_axis(quads, _ROLLS[start][:, :, None], axis=1)


_ROLLS = np.array([[0, 1, 2, 3], [1, 2, 3, 0], [2, 3, 0, 1], [3, 0, 1, 2]])


def row_ends(mask: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray | None:
    """The first and last set pixel of each row of a mask, as (N, 2) int32 (x, y) points
    shifted by (x0, y0).

    Every pixel of a row lies between its two ends, so these points have the same convex hull
    (and min/max x and y) as all the mask's pixels, and ``cv2.minAreaRect``, which works on the
    hull, returns the same rectangle from a few hundred points instead of tens of thousands.
    None when the mask is empty.
    """
    inside = mask if mask.dtype == np.bool_ else np.not_equal(mask, 0)
    hit = np.any(inside, axis=1)
    rows = hit.nonzero()[0]
    if rows.size == 0:
        return None
    if rows.size < hit.size:
        inside = inside[rows]
    first = inside.argmax(axis=1)
    last = inside.shape[1] - 1 - inside[:, ::-1].argmax(axis=1)
    two = np.not_equal(last, first).nonzero()[0]  # a row with one pixel gives one point, not two
    pts = np.empty((rows.size + two.size, 2), np.int32)
    pts[: rows.size, 0] = first
    pts[rows.size :, 0] = last[two]
    pts[: rows.size, 1] = rows
    pts[rows.size :, 1] = rows[two]
    pts += np.array([x0, y0], np.int32)
    return pts


SMALL_WINDOW = 1024  # pixels: below this, passing every pixel beats finding the row ends


def _fit_points(mask: np.ndarray, x0: int, y0: int) -> np.ndarray | None:
    """Points of a 0/1 uint8 mask with its pixels' convex hull, shifted by (x0, y0): every
    pixel in a small window, else each row's ends (``row_ends``). None when empty."""
    if mask.size >= SMALL_WINDOW:
        return row_ends(mask.view(np.bool_), x0, y0)
    pts = cv2.findNonZero(mask)
    if pts is None:
        return None
    pts = pts.reshape(-1, 2)
    pts += np.array([x0, y0], dtype=pts.dtype)
    return pts


def _norm(v: np.ndarray) -> float:
    """``np.linalg.norm`` of a float32 vector, by its own steps (sqrt of the float32 dot
    product), without its per-call overhead."""
    return float(np.sqrt(v.dot(v)))


def _mean(values: np.ndarray) -> float:
    """``values.mean()`` of a 1-D float32 array, by its own steps (the float32 pairwise sum
    over the count, in float32), without its per-call overhead."""
    return float(np.add.reduce(values) / values.size)


def detect_quads(
    textmap: np.ndarray,
    linkmap: np.ndarray,
    text_threshold: float,
    link_threshold: float,
    low_text: float,
    min_area: int = 10,
) -> MapBoxes:
    """CRAFT's ``getDetBoxes_core`` (quads, no polygons) on one page's maps.

    Args:
        textmap: character region score map, float32 (H, W).
        linkmap: affinity (or refined link) map, float32 (H, W).
        text_threshold: a component is kept only if its peak text score reaches this.
        link_threshold: link pixels above this join characters into words / lines.
        low_text: text pixels above this belong to a component.
        min_area: components smaller than this many map pixels are noise (reference: 10).
    """
    textmap = np.ascontiguousarray(textmap, dtype=np.float32)
    linkmap = np.ascontiguousarray(linkmap, dtype=np.float32)
    img_h, img_w = textmap.shape
    text_on = textmap > low_text
    link_on = linkmap > link_threshold
    link_only = link_on & ~text_on
    _, labels, stats, _ = cv2.connectedComponentsWithStats(
        (text_on | link_on).astype(np.uint8), connectivity=4
    )
    seg_on = ~link_only  # a component's pixels that its box is fitted to
    kernels: dict[int, np.ndarray] = {}
    quads: list[np.ndarray] = []
    scores: list[float] = []
    for k, (x, y, w, h, area) in enumerate(stats.tolist()):
        if k == 0 or area < min_area:
            continue
        niter = int(math.sqrt(area * min(w, h) / (w * h)) * 2)
        sx, sy = max(x - niter, 0), max(y - niter, 0)
        ex, ey = min(x + w + niter + 1, img_w), min(y + h + niter + 1, img_h)
        in_comp = labels[sy:ey, sx:ex] == k  # the bounding box widened by niter
        comp = in_comp[y - sy : y - sy + h, x - sx : x - sx + w]
        comp_text = textmap[y : y + h, x : x + w][comp]
        if comp_text.max() < text_threshold:
            continue
        seg = np.logical_and(in_comp, seg_on[sy:ey, sx:ex], out=in_comp)
        if niter not in kernels:
            kernels[niter] = cv2.getStructuringElement(cv2.MORPH_RECT, (1 + niter, 1 + niter))
        pts = _fit_points(cv2.dilate(seg.view(np.uint8), kernels[niter]), sx, sy)
        if pts is None:  # the component was link pixels only: the reference crashes here
            continue
        box = cv2.boxPoints(cv2.minAreaRect(pts))
        bw, bh = _norm(box[0] - box[1]), _norm(box[1] - box[2])
        if abs(1 - max(bw, bh) / (min(bw, bh) + 1e-5)) <= 0.1:
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            box = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
        quads.append(box)
        scores.append(_mean(comp_text))
    if not quads:
        return MapBoxes(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
    return MapBoxes(
        order_quads(np.stack(quads).astype(np.float32)), np.asarray(scores, dtype=np.float32)
    )
