"""Page orientation: the turn transforms, the sideways and upside-down votes, the second pass."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from craft.geometry import quad_to_region
from craft.orientation import (
    page_orientation,
    regions_to_original,
    turn_matrix,
    turn_page,
    upright_page,
)
from craft.tighten import InkCrops, tighten_regions
from craft.types import Region
from tests.craft.pages import text_page

LINES = [
    "The quick brown fox jumps over the lazy dog",
    "Pack my box with five dozen liquor jugs",
    "How vexingly quick daft zebras jump",
    "Sphinx of black quartz, judge my vow",
    "Bright vixens jump; dozy fowl quack",
]


def page_and_lines() -> tuple[np.ndarray, list[Region]]:
    """An upright page and one region per line, cut to the line's ink."""
    page = text_page(LINES, size=(320, 700), scale=0.9, top=50)
    regions = []
    for i in range(len(LINES)):
        only = text_page([""] * i + [LINES[i]], size=(320, 700), scale=0.9, top=50)
        ys, xs = np.nonzero(cv2.cvtColor(only, cv2.COLOR_BGR2GRAY) < 128)
        x0, y0, x1, y1 = xs.min() - 3, ys.min() - 3, xs.max() + 4, ys.max() + 4
        quad = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)
        regions.append(quad_to_region(quad, 0.9))
    return page, regions


def moved(regions: list[Region], degrees: int, w: int, h: int) -> list[Region]:
    return regions_to_original(regions, degrees, w, h)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_turn_matrix_moves_points_as_turn_page_moves_pixels(degrees: int) -> None:
    page = np.zeros((30, 50), np.uint8)
    page[7, 11] = 255
    turned = turn_page(page, degrees)
    y, x = (int(v[0]) for v in np.nonzero(turned))
    centre = turn_matrix(degrees, 50, 30) @ np.array([11.5, 7.5, 1.0])
    assert (x + 0.5, y + 0.5) == pytest.approx(tuple(centre))
    assert np.array_equal(upright_page(turned, degrees), page)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_the_vote_finds_each_quarter_turn(degrees: int) -> None:
    page, regions = page_and_lines()
    h, w = page.shape[:2]
    turned = turn_page(page, degrees)
    assert page_orientation(turned, moved(regions, degrees, w, h)) == degrees


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_crops_shared_with_tight_boxes_give_the_same_vote(degrees: int) -> None:
    page, regions = page_and_lines()
    h, w = page.shape[:2]
    turned, found = turn_page(page, degrees), moved(regions, degrees, w, h)
    crops = InkCrops(turned)
    assert page_orientation(turned, found, crops) == degrees
    assert tighten_regions(turned, found, crops) == tighten_regions(turned, found)


def test_regions_come_back_into_the_given_pages_pixels() -> None:
    page, regions = page_and_lines()
    h, w = page.shape[:2]
    back = regions_to_original(regions, 90, w, h)  # found upright, page given turned 90 cw
    first = np.asarray(back[0].polygon)
    assert first[:, 0].min() == pytest.approx(h - regions[0].bounds[3], abs=0.01)
    assert first[:, 1].min() == pytest.approx(regions[0].bounds[0], abs=0.01)
    assert back[0].size == (regions[0].size[1], regions[0].size[0])  # a vertical box now
    assert back[0].score == regions[0].score


def test_pages_without_long_regions_stay_upright() -> None:
    square = quad_to_region(np.array([[0, 0], [9, 0], [9, 9], [0, 9]], np.float32), 0.5)
    assert page_orientation(np.full((20, 20, 3), 255, np.uint8), [square]) == 0
    assert page_orientation(np.full((20, 20, 3), 255, np.uint8), []) == 0


@pytest.mark.slow
def test_a_turned_page_is_detected_upright_and_reported_in_its_own_pixels(
    golden_dir: Path,
) -> None:
    from craft.zoo import craft_predictor

    page = cv2.imread(str(golden_dir / "page.png"), cv2.IMREAD_COLOR)
    assert page is not None
    h, w = page.shape[:2]
    plain = craft_predictor("words", device="cpu", detect_orientation=False)  # the reference's
    oriented = craft_predictor("words", device="cpu", detect_orientation=True)
    [upright] = plain([page])
    [again] = oriented([page])
    assert again.orientation == 0 and again.regions == upright.regions
    [turned] = oriented([turn_page(page, 270)])
    assert turned.orientation == 270
    assert (turned.width, turned.height) == (h, w)
    expected = np.array(
        [r.polygon for r in regions_to_original(upright.regions, 270, w, h)], np.float32
    )
    found = np.array([r.polygon for r in turned.regions], np.float32)
    assert len(found) == len(expected)
    assert np.abs(np.sort(found.reshape(len(found), -1), axis=0)
                  - np.sort(expected.reshape(len(expected), -1), axis=0)).max() < 0.01  # fmt: skip


def test_the_json_record_carries_the_orientation() -> None:
    from craft.serialize import page_record
    from craft.types import PageResult

    assert page_record("scan.png", 1, PageResult(40, 30, (), orientation=90))["orientation"] == 90
