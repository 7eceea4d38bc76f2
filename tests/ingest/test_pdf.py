"""PDF rasterization: geometry, page ranges, limits, encryption, broken pages, timeouts."""

from __future__ import annotations

import shutil
import stat
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import SecretStr

import ingest.pdf
from ingest import (
    CorruptDocumentError,
    FileMissingError,
    IngestOptions,
    NoPagesError,
    Page,
    PageError,
    PageRenderError,
    PageTimeoutError,
    PageTooLargeError,
    PageTooSmallError,
    PasswordRequiredError,
    PopplerNotFoundError,
    TooManyPagesError,
    WrongPasswordError,
    count_pages,
    iter_pages,
    open_document,
)
from ingest.pdf import PdfPageGeometry, auto_chunk_pages, pdf_transform
from tests.ingest.builders import PdfPage, make_pdf, rect_content, text_content


def _pages(path: Path, **options: object) -> list[Page | PageError]:
    return list(iter_pages(open_document(path), IngestOptions(**options)))  # type: ignore[arg-type]


def _dark_bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(image.min(axis=2) < 128)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_golden_pdf_pages_match_the_reference_raster(golden_pdf: Path) -> None:
    pages = _pages(golden_pdf)
    assert [p.page_number for p in pages if isinstance(p, Page)] == [1, 2, 3, 4, 5, 6]
    first = pages[0]
    assert isinstance(first, Page)
    assert (first.width, first.height, first.dpi) == (1241, 1754, 150)
    assert first.image.flags.c_contiguous and first.image.dtype == np.uint8
    reference = cv2.imread(str(golden_pdf.parent / "page.png"), cv2.IMREAD_COLOR)
    if reference is not None:
        diff = np.abs(reference.astype(int) - first.image.astype(int))
        assert diff.mean() < 1.0
    assert count_pages(open_document(golden_pdf)) == 6


@pytest.mark.parametrize("dpi", [72, 150])
@pytest.mark.parametrize("rotate", [0, 90, 180, 270])
def test_drawn_rectangle_round_trips_to_pdf_points(write, dpi: int, rotate: int) -> None:
    # An offset CropBox and /Rotate: the transform must undo both.
    page = PdfPage(
        rect_content(150, 300, 60, 40),
        mediabox=(0, 0, 612, 792),
        cropbox=(50, 100, 550, 700),
        rotate=rotate,
    )
    (result,) = _pages(write("rect.pdf", make_pdf([page])), dpi=dpi)
    assert isinstance(result, Page)
    scale = dpi / 72
    expect_w, expect_h = round(500 * scale), round(600 * scale)
    if rotate in (90, 270):
        expect_w, expect_h = expect_h, expect_w
    assert (result.width, result.height) == (expect_w, expect_h)

    x0, y0, x1, y1 = _dark_bbox(result.image)
    corners = [result.pixel_to_pdf(x, y) for x, y in ((x0, y0), (x1, y1))]
    xs = sorted(c[0] for c in corners)
    ys = sorted(c[1] for c in corners)
    tol = 72 / dpi + 0.01  # one pixel
    assert xs == pytest.approx([150, 210], abs=tol)
    assert ys == pytest.approx([300, 340], abs=tol)


def test_unrotated_rectangle_lands_at_expected_pixels(write) -> None:
    pdf = write("r.pdf", make_pdf([PdfPage(rect_content(100, 200, 50, 30))]))
    for dpi in (72, 144):
        (page,) = _pages(pdf, dpi=dpi)
        assert isinstance(page, Page)
        s = dpi / 72
        assert _dark_bbox(page.image) == (100 * s, (792 - 230) * s, 150 * s, (792 - 200) * s)
        assert page.to_pdf_points == (1 / s, 0.0, 0.0, 0.0, -1 / s, 792.0)


def test_transform_inverts_the_rotation_of_each_corner() -> None:
    box = (10.0, 20.0, 110.0, 220.0)  # 100 x 200 pt
    for rotate, top_left in ((0, (10, 220)), (90, (10, 20)), (180, (110, 20)), (270, (110, 220))):
        a, b, c, d, e, f = pdf_transform(box, rotate, 72)
        assert (a * 0 + b * 0 + c, d * 0 + e * 0 + f) == top_left


def test_page_range_and_guards(write) -> None:
    pdf = write("six.pdf", make_pdf([PdfPage(text_content(f"page {n}")) for n in range(6)]))
    assert [p.page_number for p in _pages(pdf, first_page=2, last_page=3, dpi=36)] == [2, 3]
    assert [p.page_number for p in _pages(pdf, first_page=5, last_page=99, dpi=36)] == [5, 6]
    with pytest.raises(TooManyPagesError, match="6 pages requested, more than max_pages=4"):
        _pages(pdf, max_pages=4)
    assert len(_pages(pdf, max_pages=4, first_page=3, dpi=36)) == 4
    with pytest.raises(NoPagesError, match="first_page=7 but the document has only 6"):
        _pages(pdf, first_page=7)
    with pytest.raises(NoPagesError, match="last_page=2 is before first_page=3"):
        _pages(pdf, first_page=3, last_page=2)


def test_chunked_rendering_gives_the_same_pages(write) -> None:
    pdf = write("five.pdf", make_pdf([PdfPage(text_content(f"p{n}")) for n in range(5)]))
    one = _pages(pdf, dpi=36, chunk_pages=1)
    three = _pages(pdf, dpi=36, chunk_pages=3, workers=1)
    assert [p.page_number for p in three] == [1, 2, 3, 4, 5]
    for a, b in zip(one, three, strict=True):
        assert isinstance(a, Page) and isinstance(b, Page)
        assert np.array_equal(a.image, b.image)


def test_encrypted_pdf_needs_the_right_password(write) -> None:
    pdf = write(
        "locked.pdf", make_pdf([PdfPage(rect_content(100, 200, 50, 30))], user_password="s3cret")
    )
    with pytest.raises(PasswordRequiredError, match=r"locked\.pdf: PDF is encrypted") as info:
        _pages(pdf)
    assert "password=" in str(info.value)
    with pytest.raises(WrongPasswordError) as wrong:
        _pages(pdf, password="nope")
    assert "nope" not in str(wrong.value)
    (page,) = _pages(pdf, password="s3cret", dpi=72)
    assert isinstance(page, Page)
    assert _dark_bbox(page.image) == (100, 562, 150, 592)
    assert "s3cret" not in repr(IngestOptions(password=SecretStr("s3cret")))


def test_truncated_and_empty_pdfs_are_document_errors(write) -> None:
    whole = make_pdf([PdfPage(rect_content(1, 1, 5, 5))] * 2)
    with pytest.raises(CorruptDocumentError, match="damaged or truncated: poppler says"):
        _pages(write("cut.pdf", whole[: len(whole) // 2]))
    with pytest.raises(NoPagesError, match=r"zero\.pdf: PDF has no pages"):
        _pages(write("zero.pdf", make_pdf([])))


def test_one_missing_page_object_costs_only_that_page(write) -> None:
    # Poppler skips a page-tree kid that points nowhere and renumbers the rest, so the
    # page that cannot be sized is the last one of /Count: that one is reported.
    pdf = write("holed.pdf", make_pdf([PdfPage(rect_content(10, 10, 20, 20))] * 3, missing_page=2))
    results = _pages(pdf, dpi=36)
    assert [type(r) for r in results] == [Page, Page, PageRenderError]
    assert results[2].page_number == 3
    assert "holed.pdf, page 3: page object is missing or damaged" in str(results[2])


def test_garbage_content_stream_still_renders_like_viewers_do(write) -> None:
    bad = PdfPage(b"BT /F1 (((( ET <<<< ]]]] " + rect_content(10, 10, 50, 30))
    results = _pages(write("noisy.pdf", make_pdf([PdfPage(), bad, PdfPage()])), dpi=36)
    assert [r.page_number for r in results if isinstance(r, Page)] == [1, 2, 3]


def test_page_pixel_limits_are_checked_before_rendering(write) -> None:
    pages = [
        PdfPage(),
        PdfPage(mediabox=(0, 0, 14400, 14400)),  # 200 x 200 inch: 900 M pixels at 150 DPI
        PdfPage(mediabox=(0, 0, 2, 2)),
        PdfPage(),
    ]
    results = _pages(write("sizes.pdf", make_pdf(pages)))
    assert [type(r) for r in results] == [Page, PageTooLargeError, PageTooSmallError, Page]
    assert "30000x30000 = 900,000,000 pixels, more than max_pixels=80,000,000" in str(results[1])
    assert "lower dpi" in str(results[1])


def _fake_poppler(tmp_path: Path, render_script: str) -> Path:
    """A poppler folder whose pdfinfo is real and whose pdftoppm runs ``render_script``."""
    folder = tmp_path / "poppler"
    folder.mkdir()
    for tool in ("pdfinfo", "pdftoppm"):
        found = shutil.which(tool)
        assert found, f"{tool} not on PATH: install poppler-utils"
        if tool == "pdfinfo":
            body = f'exec "{found}" "$@"\n'
        else:
            body = f'if [ "$1" = "-v" ]; then exec "{found}" "$@"; fi\n{render_script}\n'
        script = folder / tool
        script.write_text("#!/bin/sh\n" + body)
        script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return folder


def test_hanging_poppler_is_killed_and_reported_per_page(write, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    poppler = _fake_poppler(tmp_path, f'echo $$ > "{pid_file}"\nexec sleep 60')
    pdf = write("slow.pdf", make_pdf([PdfPage()]))
    results = _pages(pdf, poppler_path=str(poppler), page_timeout_s=0.5)
    assert [type(r) for r in results] == [PageTimeoutError]
    assert "page_timeout_s=0.5 s; poppler was stopped" in str(results[0])
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the timed-out poppler process was leaked"


def test_missing_poppler_says_how_to_install_it(write, tmp_path: Path) -> None:
    pdf = write("any.pdf", make_pdf([PdfPage()]))
    with pytest.raises(PopplerNotFoundError) as info:
        _pages(pdf, poppler_path=str(tmp_path / "nowhere"))
    assert "apt-get install poppler-utils" in str(info.value)
    assert "brew install poppler" in str(info.value)


def test_rendering_stays_a_bounded_window_ahead(write, monkeypatch) -> None:
    started: list[int] = []
    real = ingest.pdf._render_chunk

    def counting(doc, chunk, opts):
        started.append(chunk[0].page_number)
        return real(doc, chunk, opts)

    monkeypatch.setattr(ingest.pdf, "_render_chunk", counting)
    pdf = write("many.pdf", make_pdf([PdfPage(mediabox=(0, 0, 72, 72))] * 20))
    stream = iter_pages(open_document(pdf), IngestOptions(workers=2, dpi=36, chunk_pages=1))
    for consumed, _ in enumerate(stream, start=1):
        assert len(started) - consumed <= 2  # workers + 1 in flight, one being consumed
        if consumed == 5:
            break
    stream.close()  # type: ignore[attr-defined]
    assert len(started) <= 8
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-pdf")]


def test_file_removed_after_discovery(write) -> None:
    pdf = write("gone.pdf", make_pdf([PdfPage()]))
    doc = open_document(pdf)
    pdf.unlink()
    with pytest.raises(FileMissingError, match=r"gone\.pdf: file vanished"):
        list(iter_pages(doc))


def test_auto_chunk_balances_call_overhead_memory_and_workers() -> None:
    a4 = (0.0, 0.0, 595.0, 842.0)
    pages = [PdfPageGeometry(n, a4, 0) for n in range(1, 101)]
    assert auto_chunk_pages(pages, IngestOptions(dpi=150)) == 3  # 2.2 MP each
    assert auto_chunk_pages(pages, IngestOptions(dpi=300)) == 1  # 8.7 MP each
    assert auto_chunk_pages(pages[:6], IngestOptions(dpi=150, workers=2)) == 3
    assert auto_chunk_pages(pages, IngestOptions(dpi=150, chunk_pages=7)) == 7
    poster = PdfPageGeometry(101, (0.0, 0.0, 14400.0, 14400.0), 0)  # refused, never rendered
    assert auto_chunk_pages([*pages, poster], IngestOptions(dpi=150)) == 3


def test_failing_poppler_chunk_is_retried_page_by_page(write, tmp_path: Path) -> None:
    log = tmp_path / "calls"
    poppler = _fake_poppler(
        tmp_path, f'echo "$*" >> "{log}"\necho "Syntax Error: boom" >&2\nexit 1'
    )
    pdf = write("two.pdf", make_pdf([PdfPage(), PdfPage()]))
    results = _pages(pdf, poppler_path=str(poppler), chunk_pages=2, workers=1)
    assert [type(r) for r in results] == [PageRenderError, PageRenderError]
    assert [r.page_number for r in results] == [1, 2]
    assert "poppler rendered no image, expected 1275x1650" in str(results[0])
    assert len(log.read_text().splitlines()) == 3  # the chunk, then each page alone
