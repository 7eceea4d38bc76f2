"""Reader processes: pages come back from a worker; a dead worker is replaced, its slice read
again; a document's error comes back as the slice's only item."""

from __future__ import annotations

import time
from pathlib import Path

from ingest import Document, DocumentError, IngestOptions, Page, discover
from pipeline.rasterize import Rasterizer
from tests.craft.pages import text_page
from tests.flows.documents import write_pdf


def _pdf(tmp_path: Path, pages: int) -> Document:
    path = write_pdf(tmp_path / "doc.pdf", [text_page([f"Page {i}"]) for i in range(pages)])
    [doc] = discover([str(path)])
    assert isinstance(doc, Document)
    return doc


def test_slices_come_back_as_pages_with_their_cpu_time(tmp_path: Path) -> None:
    doc = _pdf(tmp_path, 3)
    readers = Rasterizer(workers=1)
    try:
        opts = IngestOptions(dpi=72, first_page=2, last_page=3)
        loaded = readers.result(readers.submit(doc, opts), doc, opts)
    finally:
        readers.close()
    assert [p.page_number for p in loaded.items if isinstance(p, Page)] == [2, 3]
    assert loaded.cpu_s > 0


def test_a_dead_reader_is_replaced_and_the_slice_read_again(tmp_path: Path) -> None:
    doc = _pdf(tmp_path, 2)
    readers = Rasterizer(workers=1)
    try:
        opts = IngestOptions(dpi=72)
        readers.result(readers.submit(doc, opts), doc, opts)  # the worker is up
        for process in list(readers._pool._processes.values()):  # as the OOM killer would
            process.kill()
            process.join()
        time.sleep(0.5)  # the pool notices: it is broken now
        loaded = readers.result(readers.submit(doc, opts), doc, opts)
    finally:
        readers.close()
    assert [p.page_number for p in loaded.items if isinstance(p, Page)] == [1, 2]


def test_a_document_error_is_the_only_item(tmp_path: Path) -> None:
    path = tmp_path / "gone.png"
    doc = Document("0" * 64, str(path), "image/png", 10)  # discovered, then deleted
    readers = Rasterizer(workers=1)
    try:
        loaded = readers.result(readers.submit(doc, IngestOptions()), doc, IngestOptions())
    finally:
        readers.close()
    [error] = loaded.items
    assert isinstance(error, DocumentError) and "gone.png" in error.message
