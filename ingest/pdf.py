"""Rasterize PDFs page by page with poppler (``pdfinfo`` first, then pdf2image/pdftoppm).

Why it looks like this:

* ``pdfinfo`` runs once per document, with a timeout, to get the page count, each page's
  CropBox and /Rotate (for the pixel -> PDF points transform and for the pixel limit, which
  is checked *before* rendering) and to classify whole-document failures (encrypted,
  damaged, zero pages) into typed errors.
* Pages are rendered in chunks of ``chunk_pages`` (default: automatic) by a thread pool of
  ``workers`` poppler processes, at most ``workers + 1`` chunks ahead of the consumer. The
  threads only wait on subprocesses, so they overlap with detection in the calling thread,
  and memory is bounded by the window, never by the page count.
* Each poppler call has a timeout of ``page_timeout_s`` per page; pdf2image kills the
  process on expiry. A chunk that fails or times out is retried page by page, so one
  broken page costs only itself.
* The CropBox (what viewers show) is rendered, not the MediaBox.
* pdf2image runs its own pdfinfo (without a timeout) inside each call; ours has already
  read the same file with one, so a hang there is unlikely, not impossible.
* The password goes to poppler on its command line (poppler has no other way), so other
  local users can see it in the process list while a page renders.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import pdf2image
from pdf2image import exceptions as p2i_errors

from .errors import (
    CorruptDocumentError,
    DocumentTimeoutError,
    FileMissingError,
    NoPagesError,
    PageError,
    PageRenderError,
    PageTimeoutError,
    PasswordRequiredError,
    PopplerNotFoundError,
    WrongPasswordError,
)
from .limits import check_page_size, page_range
from .options import IngestOptions
from .pages import Affine, Document, Page

__all__ = [
    "AUTO_CHUNK_PIXELS",
    "PdfPageGeometry",
    "auto_chunk_pages",
    "iter_pdf_pages",
    "pdf_page_count",
    "pdf_transform",
]

AUTO_CHUNK_PIXELS = 8_000_000
"""Pixels per automatic chunk: 3 A4 pages at 150 DPI, 1 at 300 DPI (24 MB as BGR)."""
_AUTO_CHUNK_MAX = 8
_PAGE_LINE = re.compile(r"^Page\s+(\d+)\s+(size|rot|CropBox):\s+(.*)$")
_INFO_TIMEOUT_MIN_S = 30.0


@dataclass(frozen=True, slots=True)
class PdfPageGeometry:
    """What pdfinfo says of one page; ``crop_box`` is None when poppler cannot read it."""

    page_number: int
    crop_box: tuple[float, float, float, float] | None
    rotate: int

    def pixel_size(self, dpi: int) -> tuple[int, int]:
        """(width, height) pdftoppm renders at ``dpi``, after /Rotate."""
        if self.crop_box is None:
            return 0, 0
        x0, y0, x1, y1 = self.crop_box
        w = math.ceil((x1 - x0) * dpi / 72 - 1e-6)
        h = math.ceil((y1 - y0) * dpi / 72 - 1e-6)
        return (h, w) if self.rotate % 180 else (w, h)


def pdf_transform(crop_box: tuple[float, float, float, float], rotate: int, dpi: int) -> Affine:
    """Affine from rendered-page pixels (origin top-left, y down) to PDF user-space points.

    The rendered image shows the CropBox turned clockwise by /Rotate; its top-left corner is
    the CropBox corner that rotation brings there.
    """
    x0, y0, x1, y1 = crop_box
    s = 72.0 / dpi
    rot = rotate % 360
    if rot == 90:
        return (0.0, s, x0, s, 0.0, y0)
    if rot == 180:
        return (-s, 0.0, x1, 0.0, s, y0)
    if rot == 270:
        return (0.0, -s, x1, -s, 0.0, y1)
    return (s, 0.0, x0, 0.0, -s, y1)


def _poppler(tool: str, opts: IngestOptions) -> str:
    return os.path.join(opts.poppler_path, tool) if opts.poppler_path else tool


def _pdfinfo(doc: Document, opts: IngestOptions, *extra: str) -> str:
    """Run pdfinfo; map its failures to typed document errors."""
    cmd = [_poppler("pdfinfo", opts), *extra]
    password = opts.password_value()
    if password is not None:
        cmd += ["-upw", password]
    cmd.append(doc.path)
    timeout = max(_INFO_TIMEOUT_MIN_S, opts.page_timeout_s)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise PopplerNotFoundError(doc.path, "poppler's pdfinfo was not found") from None
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        raise DocumentTimeoutError(doc.path, f"pdfinfo did not finish in {timeout:g} s") from None
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    if "Incorrect password" in err:
        if password is None:
            raise PasswordRequiredError(doc.path, "PDF is encrypted and needs a password")
        raise WrongPasswordError(
            doc.path, "PDF is encrypted and the password given does not open it"
        )
    if "Invalid page count 0" in err or re.search(r"^Pages:\s+0\s*$", out, re.M):
        raise NoPagesError(doc.path, "PDF has no pages")
    if proc.returncode != 0 or "Pages:" not in out:
        if not os.path.exists(doc.path):
            raise FileMissingError(doc.path, "file vanished before it could be read")
        lines = [ln for ln in err.splitlines() if ln.strip()]
        why = lines[-1] if lines else f"pdfinfo exit status {proc.returncode}"
        raise CorruptDocumentError(doc.path, f"PDF is damaged or truncated: poppler says '{why}'")
    return out


def pdf_page_count(doc: Document, options: IngestOptions | None = None) -> int:
    """Number of pages per pdfinfo (the document's page tree count)."""
    out = _pdfinfo(doc, options or IngestOptions())
    found = re.search(r"^Pages:\s+(\d+)", out, re.M)
    if found is None:
        raise CorruptDocumentError(doc.path, "PDF is damaged: poppler reports no page count")
    return int(found.group(1))


def _page_geometry(
    doc: Document, first: int, last: int, opts: IngestOptions
) -> dict[int, PdfPageGeometry]:
    out = _pdfinfo(doc, opts, "-box", "-f", str(first), "-l", str(last))
    fields: dict[int, dict[str, str]] = {}
    for line in out.splitlines():
        m = _PAGE_LINE.match(line)
        if m:
            fields.setdefault(int(m.group(1)), {})[m.group(2)] = m.group(3)
    geoms = {}
    for number in range(first, last + 1):
        f = fields.get(number, {})
        box: tuple[float, float, float, float] | None = None
        try:
            x0, y0, x1, y1 = (float(v) for v in f["CropBox"].split())
            if x1 - x0 > 0 and y1 - y0 > 0:
                box = (x0, y0, x1, y1)
        except (KeyError, ValueError):
            pass
        try:
            rotate = int(f.get("rot", "0").split()[0]) % 360
        except (ValueError, IndexError):
            rotate = 0
        geoms[number] = PdfPageGeometry(number, box, rotate)
    return geoms


def _render(doc: Document, first: int, last: int, opts: IngestOptions) -> list[np.ndarray]:
    kwargs: dict[str, Any] = {
        "dpi": opts.dpi,
        "first_page": first,
        "last_page": last,
        "userpw": opts.password_value(),
        "use_cropbox": True,
        "timeout": opts.page_timeout_s * (last - first + 1),
        "poppler_path": opts.poppler_path,
    }
    images = pdf2image.convert_from_path(doc.path, **kwargs)
    out = []
    images.reverse()
    while images:  # drop each PIL copy as soon as its BGR copy exists
        im = images.pop()
        rgb = np.asarray(im.convert("RGB") if im.mode != "RGB" else im)
        out.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        del rgb
        im.close()
    return out


def _render_chunk(
    doc: Document, chunk: list[PdfPageGeometry], opts: IngestOptions
) -> list[Page | PageError]:
    """Render consecutive pages in one poppler call; on failure retry them one by one."""
    first, last = chunk[0].page_number, chunk[-1].page_number
    problem: PageError | None = None
    try:
        images = _render(doc, first, last, opts)
    except p2i_errors.PDFInfoNotInstalledError:
        raise PopplerNotFoundError(doc.path, "poppler's pdftoppm was not found") from None
    except p2i_errors.PDFPopplerTimeoutError:
        images = []
        problem = PageTimeoutError(
            doc.path,
            f"rendering took longer than page_timeout_s={opts.page_timeout_s:g} s; "
            "poppler was stopped",
            page_number=first,
        )
    except (p2i_errors.PDFPageCountError, OSError, ValueError) as exc:
        images = []
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        why = lines[-1] if lines else type(exc).__name__
        problem = PageRenderError(doc.path, f"poppler failed: '{why}'", page_number=first)
    sizes_ok = len(images) == len(chunk) and all(
        abs(img.shape[1] - g.pixel_size(opts.dpi)[0]) <= 2
        and abs(img.shape[0] - g.pixel_size(opts.dpi)[1]) <= 2
        for img, g in zip(images, chunk, strict=False)
    )
    if sizes_ok:
        return [
            Page(
                doc.document_id,
                doc.path,
                g.page_number,
                img,
                opts.dpi,
                pdf_transform(g.crop_box, g.rotate, opts.dpi) if g.crop_box else None,
            )
            for img, g in zip(images, chunk, strict=True)
        ]
    if not os.path.exists(doc.path):
        raise FileMissingError(doc.path, "file vanished while its pages were being rendered")
    if len(chunk) > 1:
        results: list[Page | PageError] = []
        for g in chunk:
            results.extend(_render_chunk(doc, [g], opts))
        return results
    if problem is None:
        got = f"{images[0].shape[1]}x{images[0].shape[0]}" if images else "no image"
        want = "x".join(map(str, chunk[0].pixel_size(opts.dpi)))
        problem = PageRenderError(
            doc.path, f"poppler rendered {got}, expected {want}", page_number=first
        )
    return [problem]


def auto_chunk_pages(geoms: list[PdfPageGeometry], opts: IngestOptions) -> int:
    """Pages per poppler call: ``opts.chunk_pages`` if set, else automatic.

    Automatic: as many pages as fit ``AUTO_CHUNK_PIXELS`` (the largest page counts, up to
    8), but no more than keeps every worker busy on this document.
    """
    if opts.chunk_pages is not None:
        return opts.chunk_pages
    sizes = (w * h for g in geoms for w, h in [g.pixel_size(opts.dpi)])
    pixels = [p for p in sizes if p <= opts.max_pixels]  # refused pages are never rendered
    by_memory = AUTO_CHUNK_PIXELS // max(max(pixels, default=1), 1)
    by_parallelism = math.ceil(len(geoms) / opts.workers)
    return max(1, min(_AUTO_CHUNK_MAX, by_memory, by_parallelism))


def _plan(
    doc: Document, geoms: dict[int, PdfPageGeometry], opts: IngestOptions
) -> Iterator[PageError | list[PdfPageGeometry]]:
    """Work units in page order: a precomputed page error, or a chunk of pages to render."""
    chunk: list[PdfPageGeometry] = []
    chunk_pages = auto_chunk_pages(list(geoms.values()), opts)
    for number in sorted(geoms):
        g = geoms[number]
        error: PageError | None
        if g.crop_box is None:
            error = PageRenderError(
                doc.path,
                "page object is missing or damaged (poppler cannot size it)",
                page_number=number,
            )
        else:
            w, h = g.pixel_size(opts.dpi)
            error = check_page_size(doc.path, number, w, h, opts.max_pixels, opts.min_side_px)
        if error is not None:
            if chunk:
                yield chunk
                chunk = []
            yield error
            continue
        chunk.append(g)
        if len(chunk) >= chunk_pages:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def iter_pdf_pages(
    doc: Document, options: IngestOptions | None = None
) -> Iterator[Page | PageError]:
    """Yield the PDF's pages in order, one ``Page`` or ``PageError`` per page.

    Closing the iterator early cancels the chunks not started and waits for the running
    ones (each bounded by its timeout).

    Raises:
        DocumentError: PopplerNotFoundError, PasswordRequiredError, WrongPasswordError,
            CorruptDocumentError, NoPagesError, TooManyPagesError, DocumentTimeoutError,
            FileMissingError.
    """
    opts = options or IngestOptions()
    first, last = page_range(doc.path, pdf_page_count(doc, opts), opts)
    geoms = _page_geometry(doc, first, last, opts)
    pool = ThreadPoolExecutor(max_workers=opts.workers, thread_name_prefix="ingest-pdf")
    window: deque[Future[list[Page | PageError]] | PageError] = deque()
    try:
        for unit in _plan(doc, geoms, opts):
            if isinstance(unit, PageError):
                window.append(unit)
            else:
                window.append(pool.submit(_render_chunk, doc, unit, opts))
            while len(window) > opts.workers:
                yield from _take(window.popleft())
        while window:
            yield from _take(window.popleft())
    finally:
        for item in window:
            if isinstance(item, Future):
                item.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _take(item: Future[list[Page | PageError]] | PageError) -> list[Page | PageError]:
    if isinstance(item, PageError):
        return [item]
    return item.result()  # a DocumentError raised in the worker propagates here
