"""The box-agreement helper that judges the fast paths: IoU of rotated boxes, one-to-one pairs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from craft.agreement import Agreement, box_agreement, quad_iou


def rect(x: float, y: float, w: float, h: float) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)


def rotated(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    return cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.float32)


def test_iou_of_axis_boxes() -> None:
    assert quad_iou(rect(0, 0, 10, 10), rect(0, 0, 10, 10)) == pytest.approx(1.0)
    assert quad_iou(rect(0, 0, 10, 10), rect(5, 0, 10, 10)) == pytest.approx(50 / 150)
    assert quad_iou(rect(0, 0, 10, 10), rect(20, 0, 10, 10)) == 0.0


def test_iou_of_rotated_boxes_sees_the_rotation() -> None:
    a = rotated(50, 50, 80, 10, 0)
    assert quad_iou(a, rotated(50, 50, 80, 10, 0.5)) > 0.9
    assert quad_iou(a, rotated(50, 50, 80, 10, 20)) < 0.5  # same centre and size, turned
    # Point order (clockwise or not, starting corner) does not matter.
    assert quad_iou(a, a[::-1]) == pytest.approx(1.0)
    assert quad_iou(a, np.roll(a, 1, axis=0)) == pytest.approx(1.0)


def test_degenerate_boxes_have_zero_iou() -> None:
    flat = rect(0, 0, 10, 0)
    assert quad_iou(flat, flat) == 0.0


def test_identical_sets_agree_fully() -> None:
    boxes = [rect(0, 10 * i, 50, 8) for i in range(5)]
    result = box_agreement(boxes, boxes)
    assert result == Agreement(5, 5, 5)
    assert result.reference_recall == result.candidate_recall == 1.0


def test_matching_is_one_to_one() -> None:
    # Two candidates on top of one reference box: only one of them is matched.
    result = box_agreement([rect(0, 0, 50, 10)], [rect(0, 0, 50, 10), rect(0.5, 0, 50, 10)])
    assert result == Agreement(1, 2, 1)
    assert result.reference_recall == 1.0 and result.candidate_recall == 0.5


def test_greedy_pairs_the_best_overlap_first() -> None:
    # Reference b overlaps candidate x best; a must then find y, not steal x.
    a, b = rect(0, 0, 100, 10), rect(1, 0, 100, 10)
    x, y = rect(1, 0, 100, 10), rect(0, 0, 100, 10)
    assert box_agreement([a, b], [x, y]).matched == 2


def test_threshold_counts_only_close_pairs() -> None:
    shifted = rect(4, 0, 100, 10)  # IoU 96/104 = 0.92
    assert box_agreement([rect(0, 0, 100, 10)], [shifted], iou=0.9).matched == 1
    assert box_agreement([rect(0, 0, 100, 10)], [shifted], iou=0.95).matched == 0


def test_lost_and_invented_boxes_lower_each_side() -> None:
    ref = [rect(0, 20 * i, 50, 10) for i in range(10)]
    cand = [*ref[:8], rect(200, 0, 50, 10)]  # two lost, one invented
    result = box_agreement(ref, cand)
    assert result == Agreement(10, 9, 8)
    assert result.reference_recall == pytest.approx(0.8)
    assert result.candidate_recall == pytest.approx(8 / 9)


def test_empty_sides() -> None:
    assert box_agreement([], []) == Agreement(0, 0, 0)
    assert box_agreement([], []).reference_recall == 1.0
    assert box_agreement([rect(0, 0, 5, 5)], []).reference_recall == 0.0
    assert box_agreement([], [rect(0, 0, 5, 5)]).candidate_recall == 0.0


def test_pages_pool_their_counts() -> None:
    assert Agreement(3, 4, 2) + Agreement(5, 5, 5) == Agreement(8, 9, 7)
