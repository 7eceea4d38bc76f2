"""The Tesseract engine: reads clean text, is reused, and fails with one clear message."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recognize.crop import crop_region
from recognize.engine import (
    TesseractEngine,
    TesseractNotFoundError,
    check_tesseract,
    find_tessdata,
    get_engine,
    tesseract_version,
)
from tests.recognize.conftest import draw_lines


def test_reads_a_word_and_a_line() -> None:
    page, [word, line] = draw_lines(
        [("Invoice", (20, 20)), ("Payment due in 30 days", (20, 90))], size=(500, 150)
    )
    engine = get_engine("eng")
    text, confidence = engine.read(crop_region(page, word), "word")
    assert text == "Invoice" and 0.5 < confidence <= 1.0
    assert engine.read(crop_region(page, line), "line")[0] == "Payment due in 30 days"


def test_blank_crop_reads_nothing() -> None:
    assert get_engine().read(np.full((40, 200), 255, np.uint8), "line") == ("", 0.0)


def test_one_engine_per_process_and_languages() -> None:
    assert get_engine("eng") is get_engine(["eng"])
    assert get_engine("eng").languages == "eng"
    assert tesseract_version().startswith("tesseract 5.")
    assert check_tesseract("eng").endswith("/")


def test_bad_arguments_are_refused() -> None:
    engine = get_engine()
    with pytest.raises(ValueError, match="unknown mode 'block'"):
        engine.read(np.zeros((10, 10), np.uint8), "block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="HxW uint8 gray"):
        engine.read(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="no language"):
        find_tessdata(" + ")


@pytest.mark.no_tesseract
def test_missing_data_names_the_fix(tmp_path: object) -> None:
    with pytest.raises(
        TesseractNotFoundError, match=r"no Tesseract data for 'eng'.*tesseract-ocr-eng"
    ):
        TesseractEngine("eng", tessdata=str(tmp_path))
    with pytest.raises(TesseractNotFoundError, match="no Tesseract data for 'xyz'"):
        find_tessdata("xyz")


@pytest.mark.no_tesseract
def test_missing_tesserocr_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tesserocr", None)  # import raises ImportError
    with pytest.raises(TesseractNotFoundError, match=r"needs tesserocr.*pip install tesserocr"):
        TesseractEngine("eng")
    with pytest.raises(TesseractNotFoundError, match="needs tesserocr"):
        check_tesseract("eng")
