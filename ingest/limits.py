"""Limits against hostile or accidental input, and the checks that enforce them.

Defaults are sized for documents, not for attacks:

* ``MAX_FILE_BYTES`` 512 MiB: larger than any scanned book we expect, small enough to refuse
  disk images and videos dropped in the inbox.
* ``MAX_PIXELS`` 80 M pixels per page (240 MB as BGR): an A1 poster at 300 DPI is 70 M.
  It also stays below Pillow's own bomb warning (89 M), so our error is the one users see.
  Pillow refuses images over 179 M pixels on its own (still reported as PageTooLargeError);
  allowing bigger images also needs ``PIL.Image.MAX_IMAGE_PIXELS`` raised.
* ``MAX_PAGES`` 2000 pages per document per run.
* ``MIN_SIDE_PX`` 8: below about 8 px no glyph is legible, so a 1x1 (tracking pixel, broken
  thumbnail) or 4 px strip is reported as ``PageTooSmallError`` rather than silently giving
  zero regions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import (
    FileTooLargeError,
    NoPagesError,
    PageTooLargeError,
    PageTooSmallError,
    TooManyPagesError,
)

if TYPE_CHECKING:
    from .options import IngestOptions

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_PAGES",
    "MAX_PIXELS",
    "MIN_SIDE_PX",
    "check_file_size",
    "check_page_size",
    "page_range",
]

MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_PIXELS = 80_000_000
MAX_PAGES = 2000
MIN_SIDE_PX = 8


def check_file_size(path: str, size_bytes: int, max_file_bytes: int) -> None:
    """Raise ``FileTooLargeError`` before anything reads a file over the limit."""
    if size_bytes > max_file_bytes:
        raise FileTooLargeError(
            path, f"file is {size_bytes:,} bytes, more than max_file_bytes={max_file_bytes:,}"
        )


def check_page_size(
    path: str, page_number: int, width: int, height: int, max_pixels: int, min_side_px: int
) -> PageTooLargeError | PageTooSmallError | None:
    """Return the page error for a page of this size (checked before decoding), else None."""
    if width * height > max_pixels:
        return PageTooLargeError(
            path,
            f"page is {width}x{height} = {width * height:,} pixels, "
            f"more than max_pixels={max_pixels:,}",
            page_number=page_number,
        )
    if min(width, height) < min_side_px:
        return PageTooSmallError(
            path,
            f"page is {width}x{height} pixels, under min_side_px={min_side_px}: too small "
            "to hold readable text",
            page_number=page_number,
        )
    return None


def page_range(path: str, count: int, opts: IngestOptions) -> tuple[int, int]:
    """The 1-based inclusive (first, last) pages to read, clipped to ``count``.

    The same rule for PDFs and multi-page images: first_page/last_page select, max_pages
    refuses a longer selection before anything is rendered.

    Raises:
        NoPagesError: the document is empty, first_page is past its end, or last_page is
            before first_page (the selection holds no page: the document fails, never "done").
        TooManyPagesError: the selection is longer than max_pages.
    """
    first = opts.first_page or 1
    last = min(opts.last_page or count, count)
    if opts.last_page is not None and opts.last_page < first:
        raise NoPagesError(
            path,
            f"last_page={opts.last_page} is before first_page={first}: no page selected",
            "give last_page >= first_page",
        )
    if count == 0:
        raise NoPagesError(path, "document has no pages")
    if first > count:
        raise NoPagesError(
            path,
            f"first_page={first} but the document has only {count} page(s)",
            "lower first_page",
        )
    if last - first + 1 > opts.max_pages:
        raise TooManyPagesError(
            path, f"{last - first + 1} pages requested, more than max_pages={opts.max_pages}"
        )
    return first, last
