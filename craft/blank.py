"""Blank skipping: run the network on a page's content box only, at the page's own scale.

Most of a document page is white margin, and the network's cost is proportional to pixels.
The content box (every pixel that differs from the page's border colour) plus a halo is cut
out of the very input the full page would get, on CRAFT's 32-pixel grid, so every pooling
and upsampling step sees the same pixels in the same phase; the maps of the window are then
pasted back into maps of the full page's size (zero elsewhere: blank paper scores nothing)
and post-processed unchanged. What can differ is context: a box within the network's
receptive field of the window's edge sees zero padding instead of white paper, which is why
the halo is wide and the result is judged by box agreement with the full page.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["HALO", "MAX_SHARE", "TOLERANCE", "Window", "content_window", "paste", "worth_cropping"]

# Halo around the content box, in network-input pixels (see docs/performance.md for the
# halos measured against full-page boxes).
HALO = 128
# Max-channel difference from the border colour that counts as content: above JPEG and
# anti-aliasing noise on paper, far below the contrast of any text CRAFT detects.
TOLERANCE = 24
# Largest share of the input a window may cover and still be run instead of the whole page:
# above it the saving is small, and a cropped input is a new shape for every page, which
# ONNX Runtime pays for (the fp32 path went from 1.08x to 0.56-0.67x the default in mixed page
# order on an AVX2 CPU with windows of 84-100%; docs/performance.md).
MAX_SHARE = 0.8
_GRID = 32  # CRAFT's input alignment: four 2x poolings and the 2x output stride


@dataclass(frozen=True, slots=True)
class Window:
    """Rows ``y0:y1`` and columns ``x0:x1`` of the padded network input (multiples of 32)."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def area(self) -> int:
        return (self.y1 - self.y0) * (self.x1 - self.x0)


def _down(n: int) -> int:
    return max(0, n // _GRID * _GRID)


def _up(n: int, limit: int) -> int:
    return min(limit, -(-n // _GRID) * _GRID)


def content_window(
    pixels: np.ndarray,
    resized_hw: tuple[int, int],
    halo: int = HALO,
    tolerance: int = TOLERANCE,
) -> Window | None:
    """The 32-aligned window of one padded page (H x W x 3 uint8) that holds its content.

    ``resized_hw`` is the page's own area in the padded input (the rest is padding). Returns
    None for a page of one colour (nothing to detect).
    """
    th, tw = resized_hw
    page = pixels[:th, :tw]
    frame = np.concatenate([page[0], page[-1], page[:, 0], page[:, -1]])
    background = np.median(frame, axis=0).astype(np.int16)
    # Per channel, |pixel - background| > tolerance, without an int16 copy of the page.
    content = np.zeros((th, tw), dtype=bool)
    for c in range(3):
        low = max(int(background[c]) - tolerance, 0)
        high = min(int(background[c]) + tolerance, 255)
        plane = page[..., c]
        content |= (plane < low) | (plane > high)
    rows = np.flatnonzero(content.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(content.any(axis=0))
    h, w = pixels.shape[:2]
    return Window(
        y0=_down(int(rows[0]) - halo),
        y1=_up(int(rows[-1]) + 1 + halo, h),
        x0=_down(int(cols[0]) - halo),
        x1=_up(int(cols[-1]) + 1 + halo, w),
    )


def worth_cropping(window: Window, full_hw: tuple[int, int], max_share: float = MAX_SHARE) -> bool:
    """Whether running ``window`` instead of the whole padded input pays (``MAX_SHARE``)."""
    return window.area <= max_share * full_hw[0] * full_hw[1]


def paste(maps: np.ndarray | None, window: Window | None, full_hw: tuple[int, int]) -> np.ndarray:
    """Half-resolution maps of a window (N x h x w) placed in zero maps of the full input."""
    h, w = full_hw[0] // 2, full_hw[1] // 2
    if maps is None or window is None:
        return np.zeros((1 if maps is None else maps.shape[0], h, w), np.float32)
    out = np.zeros((maps.shape[0], h, w), np.float32)
    out[:, window.y0 // 2 : window.y1 // 2, window.x0 // 2 : window.x1 // 2] = maps
    return out
