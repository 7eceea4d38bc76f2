"""Turn BGR pages into the normalised, 32-aligned tensor CRAFT was trained on.

Mirrors the reference exactly (RGB, INTER_LINEAR resize of uint8 pixels, black padding before
normalisation, float32 arithmetic in the same order) because the score maps, and so every box,
depend on these details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Prepared",
    "check_page",
    "normalise",
    "padded_size",
    "prepare_batch",
    "resize_page",
    "scaled_size",
    "stack_pages",
]

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * np.float32(255.0)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * np.float32(255.0)


@dataclass(frozen=True, slots=True)
class Prepared:
    """Where one page sits inside the network input.

    ``ratio`` is original pixels per resized pixel (the reference's ``ratio_w == ratio_h``);
    ``resized_hw`` is the content size before padding, ``padded_hw`` the 32-aligned size.
    """

    height: int
    width: int
    ratio: float
    resized_hw: tuple[int, int]
    padded_hw: tuple[int, int]


def check_page(image: object, index: int = 0) -> np.ndarray:
    """Validate the detector's input contract and say precisely what is wrong if it is broken."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"page {index}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(
            f"page {index}: expected a 3-channel BGR image of shape (H, W, 3), got shape "
            f"{image.shape}; convert grayscale with cv2.COLOR_GRAY2BGR and BGRA with "
            "cv2.COLOR_BGRA2BGR first"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"page {index}: expected dtype uint8, got {image.dtype}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"page {index}: empty image of shape {image.shape}")
    return image


def _align32(n: int) -> int:
    return n if n % 32 == 0 else n + (32 - n % 32)


def scaled_size(h: int, w: int, width: int, mag_ratio: float) -> tuple[float, int, int]:
    """Scale factor and resized (h, w): long side ``min(mag_ratio * long side, width)``."""
    ratio = min(mag_ratio * max(h, w), float(width)) / max(h, w)
    return ratio, max(int(h * ratio), 1), max(int(w * ratio), 1)


def padded_size(h: int, w: int, width: int, mag_ratio: float) -> tuple[int, int]:
    """The 32-aligned network input size of an h x w page."""
    _, th, tw = scaled_size(h, w, width, mag_ratio)
    return _align32(th), _align32(tw)


def resize_page(bgr: np.ndarray, width: int, mag_ratio: float) -> tuple[np.ndarray, Prepared]:
    """Resize as the reference does (see ``scaled_size``); RGB uint8 out."""
    h, w = bgr.shape[:2]
    ratio, th, tw = scaled_size(h, w, width, mag_ratio)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_LINEAR)
    meta = Prepared(
        height=h,
        width=w,
        ratio=1.0 / ratio,
        resized_hw=(th, tw),
        padded_hw=(_align32(th), _align32(tw)),
    )
    return resized, meta


def stack_pages(
    pages: Sequence[np.ndarray], width: int, mag_ratio: float
) -> tuple[np.ndarray, list[Prepared]]:
    """Resize each page and stack them into one uint8 NHWC RGB array, zero-padded at the
    bottom/right to the batch's 32-aligned size.

    Pixels stay uint8 so a CUDA engine can ship 4x fewer bytes and normalise on the device;
    black padding before normalisation is the reference's, so a page alone in its batch gets
    exactly the reference's input.
    """
    resized = []
    metas = []
    for i, page in enumerate(pages):
        img, meta = resize_page(check_page(page, i), width, mag_ratio)
        resized.append(img)
        metas.append(meta)
    H = max(m.padded_hw[0] for m in metas)
    W = max(m.padded_hw[1] for m in metas)
    pixels = np.zeros((len(pages), H, W, 3), dtype=np.uint8)
    for i, (img, meta) in enumerate(zip(resized, metas, strict=True)):
        th, tw = meta.resized_hw
        pixels[i, :th, :tw] = img
    return pixels, metas


def normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 NCHW, ImageNet-normalised.

    Bit-identical to the reference's ``(img.astype(float32) - mean) / std``: the same two
    float32 operations per element, written channel by channel straight into the output
    (no temporaries, no transpose copy: ~4x faster on a 1280 px page).
    """
    n, h, w, _ = pixels.shape
    out = np.empty((n, 3, h, w), dtype=np.float32)
    for c in range(3):
        plane = out[:, c]
        np.subtract(pixels[..., c], IMAGENET_MEAN[c], out=plane, dtype=np.float32)
        np.divide(plane, IMAGENET_STD[c], out=plane)
    return out


def prepare_batch(
    pages: Sequence[np.ndarray], width: int, mag_ratio: float
) -> tuple[np.ndarray, list[Prepared]]:
    """The network input as one NCHW float32 array (``stack_pages`` then ``normalise``)."""
    pixels, metas = stack_pages(pages, width, mag_ratio)
    return normalise(pixels), metas
