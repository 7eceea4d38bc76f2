"""Input contract and the reference's resizing, padding and normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from craft.preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    check_page,
    normalise,
    prepare_batch,
    resize_page,
    scaled_size,
    stack_pages,
)


@pytest.mark.parametrize(
    ("hw", "expected"),
    [
        ((1754, 1241), (1280, 905)),  # shrunk to the canvas
        ((390, 860), (390 * 1.5, 1290)),  # magnified, then capped at 1280 below
        ((100, 200), (150, 300)),  # magnified x1.5
        ((10, 10), (15, 15)),
    ],
)
def test_scaled_size(hw: tuple[int, int], expected: tuple[float, float]) -> None:
    _, th, tw = scaled_size(*hw, width=1280, mag_ratio=1.5)
    assert max(th, tw) <= 1280
    if max(expected) <= 1280:
        assert (th, tw) == (int(expected[0]), int(expected[1]))


def test_padding_is_black_before_normalisation() -> None:
    page = np.full((20, 50, 3), 255, np.uint8)
    batch, [meta] = prepare_batch([page], width=1280, mag_ratio=1.0)
    assert batch.shape == (1, 3, 32, 64)
    assert meta.resized_hw == (20, 50) and meta.padded_hw == (32, 64)
    black = (0 - IMAGENET_MEAN) / IMAGENET_STD
    white = (255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(batch[0, :, 25, 60], black, rtol=1e-6)
    np.testing.assert_allclose(batch[0, :, 5, 5], white, rtol=1e-6)


def test_normalisation_is_the_reference_arithmetic_bit_for_bit() -> None:
    """Pages of three sizes in one batch: each exactly as the reference builds its input."""
    rng = np.random.default_rng(0)
    pages = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in ((50, 70), (33, 90), (64, 20))]
    pixels, metas = stack_pages(pages, width=1280, mag_ratio=1.5)
    assert pixels.dtype == np.uint8 and pixels.shape == (3, 96, 160, 3)
    batch = normalise(pixels)
    pad = (np.zeros(3, np.float32) - IMAGENET_MEAN) / IMAGENET_STD
    for i, (page, meta) in enumerate(zip(pages, metas, strict=True)):
        rgb, _ = resize_page(page, 1280, 1.5)
        expected = np.empty((3, 96, 160), np.float32)
        expected[:] = pad[:, None, None]
        th, tw = meta.resized_hw
        expected[:, :th, :tw] = ((rgb.astype(np.float32) - IMAGENET_MEAN) / IMAGENET_STD).transpose(
            2, 0, 1
        )
        np.testing.assert_array_equal(batch[i], expected)


def test_bgr_is_fed_as_rgb() -> None:
    page = np.zeros((32, 32, 3), np.uint8)
    page[..., 0] = 255  # blue in BGR
    batch, _ = prepare_batch([page], width=1280, mag_ratio=1.0)
    assert batch[0, 2, 0, 0] == pytest.approx((255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2])
    assert batch[0, 0, 0, 0] == pytest.approx((0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.zeros((10, 10), np.uint8), "3-channel"),
        (np.zeros((10, 10, 4), np.uint8), "BGRA"),
        (np.zeros((10, 10, 1), np.uint8), "3-channel"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ("page.png", "numpy array"),
    ],
)
def test_bad_input_is_a_clear_value_error(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_page(bad)
