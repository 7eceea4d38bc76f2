"""A generated page with known words at known places: detected, read, stored, found.

Runs the real detector once for the module, then stores and searches on both backends.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import Engine

from db import writes
from db.recognition_writes import write_region_texts
from db.search import search
from recognize.recognizer import recognize_page
from tests.recognize.conftest import draw_lines, rotate_page

LINES = [
    ("Quarterly revenue grew twelve percent", (60, 60)),
    ("The invoice from Lisbon is overdue", (60, 200)),
    ("Shipping address changed in March", (60, 340)),
]


@pytest.fixture(scope="module")
def detected() -> tuple[Any, Any, list[Any]]:
    from craft import craft_predictor

    page, boxes = draw_lines(LINES, size=(900, 460), font_size=32)
    [result] = craft_predictor("default", device="cpu")([page])
    texts = recognize_page(page, result.regions, mode="line")
    return result, boxes, texts


def containing(box: Any, regions: Any) -> int:
    """Index of the region whose centre lies in ``box`` (the known place of a line)."""
    (x0, y0), _, (x1, y1), _ = box
    [index] = [
        i for i, r in enumerate(regions) if x0 <= r.center[0] <= x1 and y0 <= r.center[1] <= y1
    ]
    return index


def test_known_lines_are_read_where_they_were_drawn(detected: Any) -> None:
    result, boxes, texts = detected
    for (line, _), box in zip(LINES, boxes, strict=True):
        assert texts[containing(box, result.regions)].text == line


def test_known_words_are_found_by_search(detected: Any, engine: Engine) -> None:
    result, boxes, texts = detected
    run = writes.start_run(engine, params={"preset": "default"}, model_name="craft_mlt_25k",
                           model_sha256="a" * 64, device="cpu", precision="fp32")  # fmt: skip
    doc = writes.upsert_document(
        engine, sha256=hashlib.sha256(b"generated").hexdigest(), source_uri="/in/generated.png",
        media_type="image/png", size_bytes=1,
    )  # fmt: skip
    page = writes.upsert_page(
        engine, document_id=doc, page_number=1, width=result.width, height=result.height
    )
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=result.regions)
    write_region_texts(engine, run_id=run, page_id=page, texts=texts)

    [match] = search(engine, "invoice from Lisbon")
    assert (match.source_uri, match.page_number) == ("/in/generated.png", 1)
    (bx0, by0), _, (bx1, by1), _ = boxes[1]
    x_min, y_min, x_max, y_max = match.box
    assert x_min < bx0 + 20 and x_max > bx1 - 20 and y_min < by1 and y_max > by0  # drawn there
    assert [m.region_index for m in search(engine, "shipping addresses")] == [
        containing(boxes[2], result.regions)
    ]  # stemmed
    assert search(engine, "revenue invoice") == []


@pytest.mark.parametrize("degrees", [-10.0, 90.0])
def test_detected_rotated_lines_are_read_upright(degrees: float) -> None:
    """The detector's own polygons of tilted and turned lines give upright readings."""
    from craft import craft_predictor

    page, boxes = draw_lines(LINES[:2], size=(900, 320), font_size=32)
    page, boxes = rotate_page(page, boxes, degrees)
    [result] = craft_predictor("default", device="cpu")([page])
    texts = recognize_page(page, result.regions, mode="line")
    assert sorted(t.text for t in texts if t) == sorted(line for line, _ in LINES[:2])
