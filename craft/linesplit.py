"""Line splitting: cut a region that holds several text lines into one region per line.

The LinkRefiner links characters across the narrow gap between the lines of tightly set
paragraphs (and down a column of page numbers), so one region can cover several lines. The
character map still separates them: across a region, the mean character score rises to one
peak per line and falls between lines. A region is cut at each valley that drops below
``VALLEY`` of both neighbouring peaks, which are at least ``MIN_PITCH`` map pixels apart. A tall
single line is one broad peak (each character is one Gaussian blob), so it is never cut.

Works on one page's maps (half the network input's resolution) before the boxes are scaled to
the page; each piece keeps the region's angle and is trimmed along the line to its own text.
"""

from __future__ import annotations

import itertools

import cv2
import numpy as np

from craft.postprocess import MapBoxes, order_quad

__all__ = ["line_cuts", "split_lines"]

VALLEY = 0.4  # a valley below this share of both neighbouring peaks separates two lines
MIN_PITCH = 3  # map pixels between two lines' peaks (a 6 px line pitch at the input)
MIN_PEAK = 0.15  # mean character score a line's peak must reach


def line_cuts(profile: np.ndarray) -> list[int]:
    """Indices of the valleys separating lines in a profile across a region."""
    p = np.asarray(profile, dtype=np.float64)  # a mean over the whole region: smooth enough
    # A peak: at least MIN_PEAK, above its left neighbour, not below its right one.
    rising = np.ones(len(p), bool)
    rising[1:] = p[1:] > p[:-1]
    not_falling = np.ones(len(p), bool)
    not_falling[:-1] = p[:-1] >= p[1:]
    peaks = np.flatnonzero((p >= MIN_PEAK) & rising & not_falling).tolist()
    # Keep only peaks that stand out from the valley towards their neighbours.
    cuts: list[int] = []
    kept = peaks[:1]
    for nxt in peaks[1:]:
        prev = kept[-1]
        valley = prev + int(np.argmin(p[prev : nxt + 1]))
        if nxt - prev >= MIN_PITCH and p[valley] < VALLEY * min(p[prev], p[nxt]):
            cuts.append(valley)
            kept.append(nxt)
        elif p[nxt] > p[prev]:  # the same line: keep its highest peak
            kept[-1] = nxt
    return cuts


def _frame(quad: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Origin, unit axis along the region's long side and unit axis across it."""
    q = quad.astype(np.float64)
    a, b = q[1] - q[0], q[3] - q[0]
    if np.hypot(*a) >= np.hypot(*b):
        return q[0], a, b
    return q[0], b, a


def split_lines(textmap: np.ndarray, boxes: MapBoxes, low_text: float) -> MapBoxes:
    """Each box holding several lines replaced by one box per line (map coordinates)."""
    quads: list[np.ndarray] = []
    scores: list[float] = []
    for quad, score in zip(boxes.quads, boxes.scores, strict=True):
        origin, along, across = _frame(quad)
        length, height = float(np.hypot(*along)), float(np.hypot(*across))
        cw, ch = round(length), round(height)
        if ch < 2 * MIN_PITCH or cw < 2:
            quads.append(quad)
            scores.append(float(score))
            continue
        src = np.array([origin, origin + along, origin + across], dtype=np.float32)
        dst = np.array([[0, 0], [cw, 0], [0, ch]], dtype=np.float32)
        crop = cv2.warpAffine(textmap, cv2.getAffineTransform(src, dst), (cw, ch))
        cuts = line_cuts(crop.mean(axis=1))
        if not cuts:
            quads.append(quad)
            scores.append(float(score))
            continue
        ux, uy = along / cw, across / ch
        edges = [0, *cuts, ch]
        for y0, y1 in itertools.pairwise(edges):
            band = crop[y0:y1]
            cols = np.flatnonzero((band > low_text).any(axis=0))
            if cols.size == 0:
                continue
            x0, x1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 2, cw)
            piece = np.stack(
                [
                    origin + ux * x0 + uy * y0,
                    origin + ux * x1 + uy * y0,
                    origin + ux * x1 + uy * y1,
                    origin + ux * x0 + uy * y1,
                ]
            ).astype(np.float32)
            (ax, ay), (bx, by) = piece[1] - piece[0], piece[3] - piece[0]
            if ax * by - ay * bx < 0:
                piece = piece[::-1].copy()  # keep clockwise on screen
            quads.append(order_quad(piece))
            scores.append(float(band[band > low_text].mean()) if (band > low_text).any() else 0.0)
    if not quads:
        return boxes
    return MapBoxes(np.stack(quads).astype(np.float32), np.asarray(scores, dtype=np.float32))
