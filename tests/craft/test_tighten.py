"""Tight boxes on synthetic pages: cut to the ink, same angle, words never split."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from craft.geometry import quad_to_region
from craft.tighten import (
    MIN_CONTRAST,
    InkCrops,
    cut_to_ink,
    ink_crop,
    ink_span,
    low_contrast,
    tighten_quad,
    tighten_regions,
)
from tests.craft.pages import text_page


def ink_bounds(page: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(cv2.cvtColor(page, cv2.COLOR_BGR2GRAY) < 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def test_a_loose_box_is_cut_to_its_ink() -> None:
    page = text_page(["Tight boxes"], size=(120, 400), top=70)
    x0, y0, x1, y1 = ink_bounds(page)
    quad = tighten_quad(cv2.cvtColor(page, cv2.COLOR_BGR2GRAY), rect(10, 20, 390, 110))
    assert quad[0] == pytest.approx((x0, y0), abs=1.5)
    assert quad[2] == pytest.approx((x1, y1), abs=1.5)


def test_the_angle_is_kept_and_the_box_only_shrinks() -> None:
    page = text_page(["Turned words"], size=(300, 400), top=160)
    m = cv2.getRotationMatrix2D((200, 150), 20, 1.0)
    turned = cv2.warpAffine(page, m, (400, 300), borderValue=(255, 255, 255))
    loose = (rect(10, 115, 390, 185).astype(np.float64) @ m[:, :2].T + m[:, 2]).astype(np.float32)
    region = quad_to_region(loose, 0.9)
    [tight] = tighten_regions(turned, [region])
    assert tight.angle == pytest.approx(region.angle, abs=0.05)
    assert tight.size[0] < region.size[0] - 40 and tight.size[1] < region.size[1] - 20
    assert tight.score == region.score
    # every ink pixel of the words is still inside the tight box
    ys, xs = np.nonzero(cv2.cvtColor(turned, cv2.COLOR_BGR2GRAY) < 100)
    poly = np.asarray(tight.polygon, dtype=np.float32)
    inside = [
        cv2.pointPolygonTest(poly, (float(x), float(y)), True) for x, y in zip(xs, ys, strict=True)
    ]
    assert min(inside) >= -2.0


def test_a_neighbours_ink_at_the_border_is_left_out_but_a_space_is_not_a_cut() -> None:
    page = text_page(["two words", "below line"], size=(200, 400), top=60)
    x0, y0, x1, y1 = ink_bounds(text_page(["two words"], size=(200, 400), top=60))
    # the loose box reaches 6 px into the next line's ascenders
    gray = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    top_of_next = ink_bounds(text_page(["", "below line"], size=(200, 400), top=60))[1]
    quad = tighten_quad(gray, rect(5, 25, 395, top_of_next + 6))
    assert quad[0] == pytest.approx((x0, y0), abs=1.5)
    assert quad[2] == pytest.approx((x1, y1), abs=1.5)  # both words, one box


def test_blank_or_flat_regions_are_left_as_they_are() -> None:
    gray = np.full((100, 100), 200, np.uint8)
    quad = rect(10, 10, 90, 50)
    assert np.array_equal(tighten_quad(gray, quad), quad)


def test_ink_span_drops_only_small_border_fragments() -> None:
    profile = np.array([3, 3, 0, 0, 9, 9, 9, 9, 9, 9, 0, 5])
    assert ink_span(profile, main_extent=12, min_gap=2) == (4, 12)  # a 1-px gap keeps the last
    assert ink_span(np.array([0, 0, 4, 0]), 4, 2) == (2, 3)
    assert ink_span(np.zeros(5), 5, 2) is None


def test_low_contrast_answers_as_the_percentiles_do() -> None:
    rng = np.random.default_rng(11)
    for _ in range(3000):
        h, w = int(rng.integers(2, 40)), int(rng.integers(2, 200))
        level, spread = rng.integers(0, 256), rng.uniform(0, 40)
        crop = np.clip(level + rng.normal(0, spread, (h, w)), 0, 255).astype(np.uint8)
        if rng.random() < 0.5:  # a few ink pixels, around the 2 % that the test looks at
            crop[rng.random((h, w)) < rng.uniform(0, 0.06)] = rng.integers(0, 256)
        lo, hi = np.percentile(crop, (2, 98))
        assert low_contrast(crop) == bool(hi - lo < MIN_CONTRAST)


def test_ink_crops_are_made_once_and_equal_ink_crop() -> None:
    page = text_page(["two words", "below line"], size=(200, 400), top=60)
    crops = InkCrops(page)
    gray = cv2.cvtColor(page, cv2.COLOR_BGR2GRAY)
    quad = rect(5, 25, 395, 120)
    first = crops(quad)
    again = ink_crop(gray, quad)
    assert first is not None and again is not None and np.array_equal(first, again)
    assert crops(quad.astype(np.float64)) is first  # same corners, same crop
    assert not first.flags.writeable
    assert crops(rect(10, 10, 11, 11)) is None  # degenerate
    assert np.array_equal(cut_to_ink(quad, first), tighten_quad(gray, quad))
    assert cut_to_ink(quad, None) is quad
