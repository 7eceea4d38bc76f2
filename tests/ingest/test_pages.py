"""Page contract, error messages and pickling, options."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydantic
import pytest
from pydantic import SecretStr

import ingest.errors
from ingest import Document, IngestError, IngestOptions, Page, PageError, PageTooSmallError


def _page(image: np.ndarray, **kw: object) -> Page:
    return Page("id", "a.png", 1, image, **kw)  # type: ignore[arg-type]


def test_page_enforces_the_detector_contract() -> None:
    page = _page(np.zeros((3, 5, 3), np.uint8))
    assert (page.width, page.height) == (5, 3)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        _page(np.zeros((3, 5), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        _page(np.zeros((3, 5, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _page(np.zeros((5, 3, 3), np.uint8).transpose(1, 0, 2))
    with pytest.raises(ValueError, match="1-based"):
        Page("id", "a.png", 0, np.zeros((3, 5, 3), np.uint8))


def test_pages_and_documents_pickle_for_prefect_results() -> None:
    page = _page(
        np.arange(30, dtype=np.uint8).reshape(2, 5, 3), dpi=72, to_pdf_points=(1, 0, 0, 0, -1, 9)
    )
    back = pickle.loads(pickle.dumps(page))
    assert np.array_equal(back.image, page.image) and back.to_pdf_points == page.to_pdf_points
    assert page != back and page in [page]  # identity, not an ambiguous array comparison
    doc = Document("ab" * 32, "x.pdf", "application/pdf", 10)
    assert pickle.loads(pickle.dumps(doc)) == doc


def test_pixel_to_pdf() -> None:
    page = _page(np.zeros((2, 2, 3), np.uint8), dpi=144, to_pdf_points=(0.5, 0, 10, 0, -0.5, 800))
    assert page.pixel_to_pdf(4, 6) == (12, 797)
    with pytest.raises(ValueError, match="is an image"):
        _page(np.zeros((2, 2, 3), np.uint8)).pixel_to_pdf(0, 0)


ERROR_CLASSES = [
    getattr(ingest.errors, name)
    for name in ingest.errors.__all__
    if issubclass(getattr(ingest.errors, name), IngestError)
]


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda c: c.__name__)
def test_errors_say_which_file_what_and_what_to_do_and_pickle(cls: type[IngestError]) -> None:
    page = 3 if issubclass(cls, PageError) else None
    err = cls("in/x.pdf", "something is wrong", page_number=page)
    where = "in/x.pdf, page 3" if page else "in/x.pdf"
    assert str(err) == f"{where}: something is wrong; {cls.default_hint}"
    assert err.code == cls.__name__
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls
    assert (back.path, back.problem, back.page_number, back.message) == (
        err.path,
        err.problem,
        err.page_number,
        err.message,
    )


def test_page_errors_need_a_page() -> None:
    with pytest.raises(ValueError, match="needs a page_number"):
        PageTooSmallError("x.png", "tiny")


def test_options_are_frozen_constrained_and_hide_the_password() -> None:
    opts = IngestOptions(password=SecretStr("hunter2"))
    assert opts.dpi == 150 and opts.password_value() == "hunter2"
    assert "hunter2" not in repr(opts) and "hunter2" not in opts.model_dump_json()
    with pytest.raises(pydantic.ValidationError):
        opts.dpi = 300
    with pytest.raises(pydantic.ValidationError):
        IngestOptions(dpi=0)
    with pytest.raises(pydantic.ValidationError):
        IngestOptions(first_page=0)
    with pytest.raises(pydantic.ValidationError):
        IngestOptions(unknown=1)  # type: ignore[call-arg]


def test_ingest_imports_no_prefect_sqlalchemy_or_torch() -> None:
    code = (
        "import sys, ingest, ingest.pdf, ingest.images\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(top & {'prefect', 'sqlalchemy', 'torch'})\n"
        "print(','.join(bad))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
