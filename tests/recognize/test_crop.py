"""Upright crops: exact pixels for an upright box, rotated boxes come out level, scaling."""

from __future__ import annotations

import numpy as np
import pytest

from recognize.crop import crop_region, quarter_turns
from tests.recognize.conftest import draw_lines, rotate_page

pytestmark = pytest.mark.no_tesseract


def noise_page() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)


def test_upright_box_without_padding_is_the_exact_pixels() -> None:
    page = noise_page()
    box = ((40.0, 30.0), (140.0, 30.0), (140.0, 60.0), (40.0, 60.0))
    crop = crop_region(page, box, padding=0, min_text_height=0)
    assert crop.shape == (30, 100)
    np.testing.assert_array_equal(crop, page[30:60, 40:140])


def test_bgr_pages_become_gray_and_padding_grows_the_crop() -> None:
    page = np.dstack([noise_page()] * 3)
    box = ((40.0, 30.0), (140.0, 30.0), (140.0, 60.0), (40.0, 60.0))
    crop = crop_region(page, box, padding=0.1, min_text_height=0)
    assert crop.dtype == np.uint8 and crop.shape == (36, 106)  # 3 px on every side


@pytest.mark.parametrize("degrees", [-10.0, 10.0, 33.0])
def test_rotated_box_comes_out_level(degrees: float) -> None:
    page, [box] = draw_lines([("level", (40, 40))], size=(240, 120), font_size=40)
    upright = crop_region(page, box, padding=0, min_text_height=0)
    rotated_page, [rotated_box] = rotate_page(page, [box], degrees)
    crop = crop_region(rotated_page, rotated_box, padding=0, min_text_height=0)
    assert abs(crop.shape[0] - upright.shape[0]) <= 1 and abs(crop.shape[1] - upright.shape[1]) <= 1
    h, w = min(crop.shape[0], upright.shape[0]), min(crop.shape[1], upright.shape[1])
    ink_a, ink_b = crop[:h, :w] < 128, upright[:h, :w] < 128
    assert (ink_a & ink_b).sum() / max(ink_b.sum(), 1) > 0.8  # same glyphs, same places


def test_small_text_is_scaled_up_and_huge_text_down() -> None:
    page = noise_page()
    small = ((10.0, 10.0), (60.0, 10.0), (60.0, 20.0), (10.0, 20.0))  # 10 px tall
    assert crop_region(page, small, padding=0, min_text_height=20).shape == (20, 100)
    assert crop_region(page, small, padding=0, min_text_height=0).shape == (10, 50)
    big = ((0.0, 0.0), (300.0, 0.0), (300.0, 200.0), (0.0, 200.0))
    assert crop_region(page, big, padding=0, max_text_height=100).shape == (100, 150)


def test_tall_crops_offer_both_quarter_turns() -> None:
    wide, tall = np.zeros((10, 40), np.uint8), np.zeros((40, 10), np.uint8)
    assert len(quarter_turns(wide)) == 1
    views = quarter_turns(tall)
    assert [v.shape for v in views] == [(40, 10), (10, 40), (10, 40)]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="4 points"):
        crop_region(noise_page(), ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0)))
    with pytest.raises(ValueError, match="page must be"):
        crop_region(np.zeros((4, 4, 2), np.uint8), ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0, 1)))
