"""Quad ordering and the row-end points that ``detect_quads`` fits its rectangles to."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from craft.postprocess import detect_quads, order_quad, order_quads, row_ends
from craft.reference import detect_quads_reference
from tests.craft.golden import CONFIGS, IMAGES


def blobs(rng: np.random.Generator) -> np.ndarray:
    """A 0/1 mask of a few filled, turned ellipses, sometimes dilated (like a component)."""
    h, w = int(rng.integers(3, 60)), int(rng.integers(3, 300))
    mask: np.ndarray = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 6))):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(1, 30)), int(rng.integers(1, 10)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    if rng.random() < 0.3:
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return mask


def test_row_ends_give_the_same_rectangle_as_every_pixel() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        mask = blobs(rng)
        every = cv2.findNonZero(mask).reshape(-1, 2) + np.array([7, 11], np.int32)
        ends = row_ends(mask, 7, 11)
        assert ends is not None and ends.dtype == np.int32
        assert len(ends) <= 2 * mask.shape[0]
        assert cv2.minAreaRect(ends) == cv2.minAreaRect(every)
        assert np.array_equal(ends.min(axis=0), every.min(axis=0))
        assert np.array_equal(ends.max(axis=0), every.max(axis=0))


def test_row_ends_of_single_pixels_and_empty_masks() -> None:
    mask = np.zeros((4, 5), np.uint8)
    assert row_ends(mask) is None
    mask[2, 3] = 255
    assert row_ends(mask).tolist() == [[3, 2]]  # type: ignore[union-attr]


def test_order_quads_orders_each_quad_as_order_quad_does() -> None:
    rng = np.random.default_rng(5)
    quads = rng.uniform(0, 50, (200, 4, 2)).astype(np.float32)
    quads[:20] = np.round(quads[:20] / 10) * 10  # ties in x + y
    expected = np.stack([np.roll(q, 4 - int(q.sum(axis=1).argmin()), 0) for q in quads])
    assert np.array_equal(order_quads(quads), expected)
    assert all(np.array_equal(order_quad(q), e) for q, e in zip(quads, expected, strict=True))


@pytest.mark.parametrize("image", IMAGES)
def test_scores_and_quads_are_the_references_to_the_bit(golden_dir: Path, image: str) -> None:
    maps = np.load(golden_dir / f"{image}.maps.npz")
    text = maps["score_text"].astype(np.float32)
    for c in CONFIGS.values():
        link = maps["refined_link" if c["with_refiner"] else "score_link"].astype(np.float32)
        args = (c["score_threshold"], c["link_threshold"], c["text_threshold"])
        fast, ref = detect_quads(text, link, *args), detect_quads_reference(text, link, *args)
        assert np.array_equal(fast.quads, ref.quads)
        assert np.array_equal(fast.scores, ref.scores)
