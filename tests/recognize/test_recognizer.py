"""Pages of regions read upright at any angle, skipped below a score, in worker processes."""

from __future__ import annotations

import pytest

from recognize.engine import TesseractNotFoundError
from recognize.recognizer import (
    PageJob,
    RecognitionPool,
    mode_for,
    recognize_page,
)
from tests.db_fixtures import FakeRegion
from tests.recognize.conftest import Box, draw_lines, rotate_page

LINES = [
    ("Quarterly revenue grew 12 percent", (40, 40)),
    ("Invoice 4711 is overdue", (40, 120)),
    ("Signed in Lisbon", (40, 200)),
]


def regions(boxes: list[Box], score: float = 0.9) -> list[FakeRegion]:
    return [FakeRegion(polygon=b, center=(0, 0), size=(0, 0), angle=0, score=score) for b in boxes]


@pytest.mark.parametrize("degrees", [0.0, -10.0, 10.0, 90.0, -90.0])
def test_rotated_lines_are_read_upright(degrees: float) -> None:
    page, boxes = draw_lines(LINES, size=(640, 260))
    page, boxes = rotate_page(page, boxes, degrees)
    texts = recognize_page(page, regions(boxes), mode="line")
    assert [t.text if t else None for t in texts] == [text for text, _ in LINES]
    assert all(t is not None and t.confidence > 0.6 for t in texts)


def test_words_read_as_single_words() -> None:
    page, boxes = draw_lines([("overdue", (40, 40)), ("4711", (240, 40))], size=(400, 100))
    texts = recognize_page(page, regions(boxes), mode="word")
    assert [t.text if t else None for t in texts] == ["overdue", "4711"]


def test_regions_below_min_score_are_not_read() -> None:
    page, boxes = draw_lines(LINES[:2], size=(640, 200))
    low = FakeRegion(polygon=boxes[1], center=(0, 0), size=(0, 0), angle=0, score=0.2)
    texts = recognize_page(page, [*regions(boxes[:1]), low], min_score=0.5)
    assert texts[0] is not None and texts[0].text == LINES[0][0]
    assert texts[1] is None


def test_mode_follows_the_refiner() -> None:
    assert mode_for(True) == "line" and mode_for(False) == "word"


def test_pool_reads_pages_in_order_like_one_process() -> None:
    jobs = []
    for i in range(4):
        lines = [(f"Page {i + 1} of four", (30, 20)), (LINES[i % 3][0], (30, 100))]
        page, boxes = draw_lines(lines, size=(640, 160))
        jobs.append(PageJob(page, regions(boxes)))
    expected = [recognize_page(j.image, j.regions) for j in jobs]
    with RecognitionPool(2, max_pending=2, max_tasks_per_child=2) as pool:
        got = list(pool.map(iter(jobs)))  # an iterator: the pool must not need len()
        single = pool.submit(jobs[0].image, jobs[0].regions).result()
        # Workers hold Tesseract and a page, not the parent's imports (torch is ~400 MiB).
        assert all(0 < mib < 300 for mib in pool.peak_rss_mib())
    assert [[t.text for t in page if t] for page in got] == [
        [t.text for t in page if t] for page in expected
    ]
    assert got[0][0] is not None and got[0][0].text == "Page 1 of four"
    assert single == got[0]


@pytest.mark.no_tesseract
def test_pool_fails_in_the_parent_without_data(tmp_path: object) -> None:
    with pytest.raises(TesseractNotFoundError, match="tesseract-ocr-eng"):
        RecognitionPool(1, tessdata=str(tmp_path))


@pytest.mark.no_tesseract
def test_pool_fails_in_the_parent_without_tesserocr(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tesserocr", None)
    with pytest.raises(TesseractNotFoundError, match="pip install tesserocr"):
        RecognitionPool(1)
