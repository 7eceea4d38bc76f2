"""Tight boxes: shrink each region to the ink it holds, in the page's own pixels.

CRAFT's boxes come from a dilated, half-resolution score map thresholded at ``low_text``: the
lower that threshold, the looser the box (the product card's 0.2 grows every box well past
its glyphs). Here each region is warped upright at page resolution (its own angle, so the angle
never changes), its ink is found by Otsu's threshold inside it, and the box is cut to the rows
and columns that hold ink. Ink of a neighbouring line or word that a loose box reaches into is
left out when it only touches the box's border, is small and is separated from the region's
own ink by a gap; everything between the outermost kept ink stays, so words are never split.
"""

from __future__ import annotations

import cv2
import numpy as np

from craft.geometry import quads_to_regions
from craft.postprocess import order_quads
from craft.types import Region

__all__ = [
    "InkCrops",
    "cut_to_ink",
    "ink_crop",
    "ink_span",
    "low_contrast",
    "tighten_quad",
    "tighten_regions",
    "to_gray",
]

MIN_CONTRAST = 40  # gray levels between ink and paper below which a region is left as it is


def to_gray(page: np.ndarray) -> np.ndarray:
    """A BGR page as uint8 gray (a gray page passes through)."""
    return page if page.ndim == 2 else cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)


def ink_span(profile: np.ndarray, main_extent: float, min_gap: float) -> tuple[int, int] | None:
    """First and last index of a profile's ink, edge fragments left out.

    Runs of inked entries are found; a run at either end is dropped while it touches the border,
    is shorter than half of ``main_extent`` and lies at least ``min_gap`` from the next run: the
    ink of a neighbour that a loose box reaches into, not a part of the region's own text.
    """
    on = profile > 0
    edges = np.flatnonzero(np.diff(on, prepend=False, append=False)).tolist()
    if not edges:
        return None
    starts, ends = edges[::2], edges[1::2]  # run k is [starts[k], ends[k])
    first, last, n = 0, len(starts) - 1, len(profile)
    while last > first:
        a, b = starts[first], ends[first]
        if a == 0 and b - a < 0.5 * main_extent and starts[first + 1] - b >= min_gap:
            first += 1
            continue
        a, b = starts[last], ends[last]
        if b == n and b - a < 0.5 * main_extent and a - ends[last - 1] >= min_gap:
            last -= 1
            continue
        break
    return starts[first], ends[last]


def ink_crop(gray: np.ndarray, quad: np.ndarray) -> np.ndarray | None:
    """The quad warped upright (p0 -> p1 along x, p0 -> p3 along y) as a 0/1 ink mask.

    None when the quad is degenerate or holds too little contrast to tell ink from paper.
    """
    q = quad.astype(np.float64)
    cw, ch = (
        round(float(np.hypot(*(q[1] - q[0])))),
        round(float(np.hypot(*(q[3] - q[0])))),
    )
    if cw < 2 or ch < 2:
        return None
    src = np.array([q[0], q[1], q[3]], dtype=np.float32)
    dst = np.array([[0, 0], [cw, 0], [0, ch]], dtype=np.float32)
    crop = cv2.warpAffine(
        gray, cv2.getAffineTransform(src, dst), (cw, ch), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip
    if low_contrast(crop):
        return None
    _, ink = cv2.threshold(crop, 0, 1, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
    if 2 * cv2.countNonZero(ink) > ink.size:  # light text on a dark ground: the minority is ink
        ink = 1 - ink
    return ink


def low_contrast(crop: np.ndarray) -> bool:
    """Whether the 2nd and 98th percentiles of a uint8 crop lie under ``MIN_CONTRAST`` apart.

    ``np.percentile`` sorts the crop; the order statistics around both percentiles come from
    its 256-bin histogram instead. Each percentile lies between its two neighbouring order
    statistics, so only when those bounds leave the answer open (rare) is ``np.percentile``
    asked, and the answer is always the one ``np.percentile`` gives.
    """
    n = crop.size
    counts = cv2.calcHist([crop], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    cum = np.cumsum(counts)
    # Sorted-order positions bracketing each percentile (one extra either side for safety).
    k_lo, k_hi = int((n - 1) * 0.02), int((n - 1) * 0.98)
    ranks = [min(max(k, 0), n - 1) for k in (k_lo - 1, k_lo + 2, k_hi - 1, k_hi + 2)]
    lo_min, lo_max, hi_min, hi_max = np.searchsorted(cum, ranks, side="right").tolist()
    if hi_min - lo_max >= MIN_CONTRAST:
        return False
    if hi_max - lo_min < MIN_CONTRAST:
        return True
    lo, hi = np.percentile(crop, (2, 98))
    return bool(hi - lo < MIN_CONTRAST)


def tighten_quad(gray: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The quad cut to its ink: same angle, same corner order, never larger."""
    return cut_to_ink(quad, ink_crop(gray, quad))


def cut_to_ink(quad: np.ndarray, ink: np.ndarray | None) -> np.ndarray:
    """``tighten_quad`` given the quad's ``ink_crop`` (None: the quad as it is)."""
    if ink is None:
        return quad
    q = quad.astype(np.float64)
    ch, cw = ink.shape
    u, v = q[1] - q[0], q[3] - q[0]
    rows = ink.sum(axis=1)
    rows_span = ink_span(rows, main_extent=ch, min_gap=2)
    if rows_span is None:
        return quad
    y0, y1 = rows_span
    cols = ink[y0:y1].sum(axis=0)
    cols_span = ink_span(cols, main_extent=y1 - y0, min_gap=max(2.0, 0.3 * (y1 - y0)))
    if cols_span is None:
        return quad
    x0, x1 = cols_span
    ux, vy = u / cw, v / ch  # page step per crop pixel along the box's axes
    p0 = q[0] + ux * x0 + vy * y0
    p1 = q[0] + ux * x1 + vy * y0
    p2 = q[0] + ux * x1 + vy * y1
    p3 = q[0] + ux * x0 + vy * y1
    return np.stack([p0, p1, p2, p3]).astype(np.float32)


class InkCrops:
    """``ink_crop`` on one page, each quad's crop made once.

    Orientation detection and tight boxes warp many of the same regions of a page (the
    first pass's quads, as float64 corners): sharing one ``InkCrops`` between them does each
    warp once. Crops are read-only.
    """

    def __init__(self, page: np.ndarray) -> None:
        self.gray = to_gray(page)
        self._crops: dict[bytes, np.ndarray | None] = {}

    def __call__(self, quad: np.ndarray) -> np.ndarray | None:
        """``ink_crop(gray, quad)``, computed on the first call for these corners."""
        key = np.asarray(quad, dtype=np.float64).tobytes()
        if key not in self._crops:
            ink = ink_crop(self.gray, quad)
            if ink is not None:
                ink.flags.writeable = False
            self._crops[key] = ink
        return self._crops[key]


def tighten_regions(
    page: np.ndarray,
    regions: list[Region] | tuple[Region, ...],
    crops: InkCrops | None = None,
) -> list[Region]:
    """Every region cut to its ink on ``page`` (BGR or gray, the page the regions are on).

    ``crops``: the page's ``InkCrops`` when another step (orientation) already made some.
    """
    if not regions:
        return []
    crops = InkCrops(page) if crops is None else crops
    quads = np.asarray([r.polygon for r in regions], dtype=np.float32)
    tight = np.stack([cut_to_ink(q, crops(q)) for q in quads])
    return quads_to_regions(order_quads(tight), [r.score for r in regions])
