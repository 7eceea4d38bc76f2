"""Discovery (a Prefect task, run with ``.fn``: no server needed), page counts and slices
return errors as results."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import (
    Document,
    IngestOptions,
    NoPagesError,
    Page,
    PageRenderError,
    UnsupportedFormatError,
)
from pipeline.rasterize import load_slice
from pipeline.run import count_selected_pages
from tests.ingest.builders import PdfPage, make_pdf

tasks_ingest = pytest.importorskip("tasks.ingest", reason="prefect is not installed")


def test_tasks_return_pages_and_errors_for_a_mixed_batch(write, tmp_path: Path) -> None:
    write("b/ok.pdf", make_pdf([PdfPage(), PdfPage()], missing_page=2))
    write("b/zero.pdf", make_pdf([]))
    write("b/notes.pdf", b"plain text\n")
    found = tasks_ingest.discover_documents.fn([str(tmp_path / "b")])
    assert [type(f) for f in found] == [UnsupportedFormatError, Document, Document]
    ok, zero = found[1], found[2]
    opts = IngestOptions(dpi=36)
    assert count_selected_pages(ok, opts) == 2
    assert isinstance(count_selected_pages(zero, opts), NoPagesError)
    assert [type(p) for p in load_slice(ok, opts).items] == [Page, PageRenderError]
    (error,) = load_slice(zero, opts).items
    assert isinstance(error, NoPagesError)
