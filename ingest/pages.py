"""What ingestion hands on: discovered ``Document`` files and rasterized ``Page`` images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Affine", "Document", "Page"]

Affine = tuple[float, float, float, float, float, float]
"""(a, b, c, d, e, f): ``x_pt = a*x + b*y + c``, ``y_pt = d*x + e*y + f``."""


@dataclass(frozen=True, slots=True)
class Document:
    """One input file, identified by the sha256 of its bytes (two names, one document).

    ``media_type`` comes from the content's magic bytes, never from the extension.
    Its page count is ``ingest.count_pages(document, options)`` (it needs poppler for PDFs,
    so it is not computed at discovery).
    """

    document_id: str
    path: str
    media_type: str
    size_bytes: int

    @property
    def is_pdf(self) -> bool:
        """Whether poppler renders it (else an image decoder does)."""
        return self.media_type == "application/pdf"


@dataclass(frozen=True, slots=True, eq=False)
class Page:
    """One page as the detector wants it: HxWx3 uint8 BGR, C-contiguous.

    ``eq=False``: pages compare by identity, since a generated ``==`` on the pixel array
    would raise (``page in pages`` included), and hashing it would too.

    Coordinates: pixel (x, y) has x to the right and y down, 0 at the top-left *edge* of the
    image (not the first pixel's centre). ``to_pdf_points`` maps such a point to PDF user
    space (points, origin bottom-left), including the page's /Rotate and CropBox offset;
    it is None for images, which have no PDF space.
    """

    document_id: str
    source: str
    page_number: int
    image: np.ndarray
    dpi: int | None = None
    to_pdf_points: Affine | None = None

    def __post_init__(self) -> None:
        img = self.image
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"page image must be HxWx3 uint8, got {img.shape} {img.dtype}")
        if not img.flags.c_contiguous:
            raise ValueError("page image must be C-contiguous")
        if self.page_number < 1:
            raise ValueError(f"page_number is 1-based, got '{self.page_number}'")

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    def pixel_to_pdf(self, x: float, y: float) -> tuple[float, float]:
        """Map a page pixel coordinate to PDF points; raises ValueError for images."""
        if self.to_pdf_points is None:
            raise ValueError(f"{self.source} page {self.page_number} is an image, not a PDF page")
        a, b, c, d, e, f = self.to_pdf_points
        return a * x + b * y + c, d * x + e * y + f
