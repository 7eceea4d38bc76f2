"""Line splitting on synthetic character maps: stacked lines are cut, a tall line is not."""

from __future__ import annotations

import numpy as np
import pytest

from craft.linesplit import line_cuts, split_lines
from craft.postprocess import MapBoxes


def char_map(lines: list[tuple[int, int]], size: tuple[int, int] = (80, 200)) -> np.ndarray:
    """A character score map: one Gaussian blob per character along each (centre y, height)."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(size, np.float32)
    for cy, height in lines:
        for cx in range(20, 180, max(height // 2, 3)):
            sx, sy = height / 5.0, height / 3.0
            out = np.maximum(out, np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2))
    return out


def box(x0: float, y0: float, x1: float, y1: float) -> MapBoxes:
    quad = np.array([[[x0, y0], [x1, y0], [x1, y1], [x0, y1]]], dtype=np.float32)
    return MapBoxes(quad, np.array([0.6], np.float32))


def test_two_tightly_set_lines_become_two_regions() -> None:
    textmap = char_map([(30, 8), (40, 8)])
    out = split_lines(textmap, box(15, 22, 185, 48), low_text=0.2)
    assert len(out.quads) == 2
    top, bottom = sorted(out.quads, key=lambda q: q[:, 1].mean())
    assert top[:, 1].max() == pytest.approx(35, abs=1.5)  # cut between the lines
    assert bottom[:, 1].min() == pytest.approx(35, abs=1.5)
    assert top[:, 1].min() == pytest.approx(22) and bottom[:, 1].max() == pytest.approx(48)
    assert all(0.2 < s <= 1.0 for s in out.scores)


def test_a_column_of_page_numbers_is_cut_into_its_lines() -> None:
    textmap = char_map([(15, 8), (30, 8), (45, 8), (60, 8)], size=(80, 200))
    out = split_lines(textmap, box(15, 8, 185, 68), low_text=0.2)
    assert len(out.quads) == 4


def test_a_tall_single_line_is_not_cut() -> None:
    textmap = char_map([(40, 40)])
    out = split_lines(textmap, box(10, 15, 190, 65), low_text=0.2)
    assert len(out.quads) == 1 and np.array_equal(out.quads, box(10, 15, 190, 65).quads)


def test_a_turned_region_keeps_its_angle() -> None:
    textmap = np.ascontiguousarray(char_map([(30, 8), (40, 8)]).T)  # the lines run vertically
    out = split_lines(textmap, box(22, 15, 48, 185), low_text=0.2)
    assert len(out.quads) == 2
    for q in out.quads:
        width, height = np.ptp(q[:, 0]), np.ptp(q[:, 1])
        assert height > 4 * width  # still vertical pieces


def test_line_cuts_needs_a_deep_valley_between_real_peaks() -> None:
    assert line_cuts(np.array([0, 0.5, 0.6, 0.5, 0.1, 0.5, 0.6, 0.5, 0.0])) == [4]
    assert line_cuts(np.array([0, 0.5, 0.6, 0.5, 0.4, 0.5, 0.6, 0.5, 0.0])) == []  # shallow
    assert line_cuts(np.array([0, 0.6, 0.1, 0.6, 0.0])) == []  # peaks too close
    assert line_cuts(np.zeros(10)) == []
