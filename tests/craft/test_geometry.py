"""Angle convention, polygon order, coordinate scaling and the size filter."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from craft.geometry import quad_to_region, quads_to_regions, scale_quads, size_filter
from craft.postprocess import order_quad


def rotated_quad(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """Corners of a w x h box turned ``angle`` degrees clockwise on screen, in CRAFT order."""
    return order_quad(cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.float32))


def test_axis_aligned_box() -> None:
    quad = np.array([[10, 20], [110, 20], [110, 50], [10, 50]], np.float32)
    r = quad_to_region(quad, 0.8)
    assert r.polygon == ((10, 20), (110, 20), (110, 50), (10, 50))
    assert r.center == (60, 35)
    assert r.size == (100, 30)
    assert r.angle == 0
    assert r.bounds == (10, 20, 110, 50)


@pytest.mark.parametrize("angle", [-30.0, -10.0, 5.0, 20.0, 40.0])
def test_angle_is_clockwise_degrees_of_the_top_edge(angle: float) -> None:
    r = quad_to_region(rotated_quad(200, 100, 160, 30, angle), 0.5)
    assert r.angle == pytest.approx(angle, abs=0.01)
    assert r.size == pytest.approx((160, 30), abs=0.02)
    assert r.center == pytest.approx((200, 100), abs=0.01)


def test_clockwise_tilt_moves_right_end_down() -> None:
    r = quad_to_region(rotated_quad(200, 100, 160, 30, 15), 0.5)
    (x0, y0), (x1, y1) = r.polygon[0], r.polygon[1]
    assert x1 > x0 and y1 > y0  # image y points down: positive angle = clockwise on screen


def test_polygon_starts_top_left_most_and_runs_clockwise() -> None:
    for angle in (-40, -5, 0, 12, 33):
        poly = np.asarray(quad_to_region(rotated_quad(50, 60, 80, 20, angle), 1).polygon)
        assert np.argmin(poly.sum(axis=1)) == 0
        # shoelace with y down: positive signed area = clockwise on screen
        x, y = poly[:, 0], poly[:, 1]
        assert 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y) > 0


def test_angle_range_and_180_twin() -> None:
    quad = np.array([[110, 50], [10, 50], [10, 20], [110, 20]], np.float32)  # starts bottom-right
    r = quad_to_region(quad, 1.0)
    assert -90 <= r.angle < 90
    assert r.angle == 0


def test_scores_are_clipped_to_unit_interval() -> None:
    quad = rotated_quad(10, 10, 8, 4, 0)
    assert quad_to_region(quad, 1.2).score == 1.0
    assert quad_to_region(quad, -0.1).score == 0.0


def test_scale_quads_maps_score_map_to_page_pixels() -> None:
    quads = np.array([[[1, 2], [3, 2], [3, 4], [1, 4]]], np.float32)
    out = scale_quads(quads, ratio=1.5)
    np.testing.assert_allclose(out[0], quads[0] * 3.0)
    assert out.dtype == np.float32


def test_size_filter_uses_short_side_in_page_pixels() -> None:
    tall = quad_to_region(rotated_quad(50, 50, 9, 100, 0), 1)  # short side 9
    wide = quad_to_region(rotated_quad(50, 50, 100, 12, 0), 1)  # short side 12
    assert size_filter([tall, wide], 10) == [wide]
    assert size_filter([tall, wide], 0) == [tall, wide]
    assert size_filter([], 10) == []


def test_size_filter_auto_uses_half_the_median_height() -> None:
    lines = [quad_to_region(rotated_quad(50, 20 * i, 300, 20, 0), 1) for i in range(1, 6)]
    speck = quad_to_region(rotated_quad(400, 400, 6, 6, 0), 1)
    assert size_filter([*lines, speck], -1) == lines


def one_by_one(quad: np.ndarray, score: float) -> tuple:
    """The per-quad arithmetic ``quads_to_regions`` must reproduce bit for bit."""
    q = quad.astype(np.float64)
    p0, p1, p2 = q[0], q[1], q[2]
    angle = (math.degrees(math.atan2(p1[1] - p0[1], p1[0] - p0[0])) + 90.0) % 180.0 - 90.0
    cx, cy = q.mean(axis=0)
    return (
        tuple((round(float(x), 2), round(float(y), 2)) for x, y in q),
        (round(float(cx), 2), round(float(cy), 2)),
        (round(float(np.hypot(*(p1 - p0))), 2), round(float(np.hypot(*(p2 - p1))), 2)),
        round(angle + 0.0, 4),
        round(min(max(float(score), 0.0), 1.0), 6),
    )


def test_quads_to_regions_equals_the_per_quad_arithmetic() -> None:
    rng = np.random.default_rng(7)
    cx, cy, w, h = rng.uniform(0, 2000, (2, 500)).tolist() + rng.uniform(1, 400, (2, 500)).tolist()
    angles = rng.uniform(-90, 90, 500).tolist()
    quads = np.stack([rotated_quad(*box) for box in zip(cx, cy, w, h, angles, strict=True)])
    quads[::7] = np.round(quads[::7])  # axis-aligned integer corners too
    scores = rng.uniform(-0.1, 1.1, len(quads)).astype(np.float32)
    regions = quads_to_regions(quads, scores)
    assert [(r.polygon, r.center, r.size, r.angle, r.score) for r in regions] == [
        one_by_one(q, s) for q, s in zip(quads, scores, strict=True)
    ]
    assert quads_to_regions(np.zeros((0, 4, 2), np.float32), []) == []
    with pytest.raises(ValueError, match="2 quads but 1 scores"):
        quads_to_regions(quads[:2], scores[:1])
