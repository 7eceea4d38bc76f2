"""Generated text images for the recognition tests, and the database fixtures.

Text is drawn with Pillow's bundled scalable font (no system fonts needed) at known places, so
every test knows what each region says and where it is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.db_fixtures import database_url, engine, pg_admin_url, pg_url, sqlite_url

__all__ = [
    "Box",
    "craft_order",
    "database_url",
    "draw_lines",
    "engine",
    "pg_admin_url",
    "pg_url",
    "rotate_page",
    "sqlite_url",
    "tesseract_missing",
]

Point = tuple[float, float]
Box = tuple[Point, Point, Point, Point]


def tesseract_missing() -> str | None:
    """Why recognition cannot run here (None: it can)."""
    from recognize.engine import TesseractNotFoundError, find_tessdata

    try:
        import tesserocr  # noqa: F401

        find_tessdata("eng")
    except (ImportError, TesseractNotFoundError) as error:
        return str(error)
    return None


@pytest.fixture(autouse=True)
def _needs_tesseract(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("no_tesseract") is None and (why := tesseract_missing()):
        pytest.fail(f"Tesseract is part of ocrflow's set-up: {why}", pytrace=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_tesseract: runs without Tesseract installed")


def draw_lines(
    lines: Sequence[tuple[str, tuple[float, float]]],
    size: tuple[int, int] = (1000, 700),
    font_size: int = 28,
) -> tuple[np.ndarray, list[Box]]:
    """A white BGR page with each text drawn at its top-left point, and each text's box.

    Boxes are axis-aligned, clockwise from the top-left, padded by 3 px like a detector's.
    """
    font = ImageFont.load_default(size=font_size)
    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    boxes: list[Box] = []
    for text, (x, y) in lines:
        draw.text((x, y), text, fill=0, font=font)
        x0, y0, x1, y1 = draw.textbbox((x, y), text, font=font)
        x0, y0, x1, y1 = x0 - 3, y0 - 3, x1 + 3, y1 + 3
        boxes.append(((x0, y0), (x1, y0), (x1, y1), (x0, y1)))
    gray = np.asarray(image)
    return np.ascontiguousarray(cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)), boxes


def rotate_page(page: np.ndarray, boxes: list[Box], degrees: float) -> tuple[np.ndarray, list[Box]]:
    """Rotate a page by ``degrees`` clockwise on screen (canvas grown to fit), boxes with it."""
    h, w = page.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), -degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = math.ceil(w * cos + h * sin), math.ceil(w * sin + h * cos)
    matrix[0, 2] += out_w / 2 - w / 2
    matrix[1, 2] += out_h / 2 - h / 2
    rotated = cv2.warpAffine(page, matrix, (out_w, out_h), borderValue=(255, 255, 255))
    moved = []
    for box in boxes:
        pts = np.hstack([np.asarray(box, dtype=np.float64), np.ones((4, 1))]) @ matrix.T
        moved.append(craft_order([(float(x), float(y)) for x, y in pts]))
    return np.ascontiguousarray(rotated), moved


def craft_order(points: list[Point]) -> Box:
    """Order 4 corners as CRAFT does: clockwise on screen from the top-left-most (min x + y)."""
    area = sum(
        points[i][0] * points[(i + 1) % 4][1] - points[(i + 1) % 4][0] * points[i][1]
        for i in range(4)
    )
    if area < 0:  # counter-clockwise on screen (y down): reverse
        points = points[::-1]
    start = min(range(4), key=lambda i: points[i][0] + points[i][1])
    p = points[start:] + points[:start]
    return (p[0], p[1], p[2], p[3])
