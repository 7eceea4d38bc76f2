"""``IngestOptions``: every ingestion knob in one frozen pydantic model.

Pydantic (not a dataclass) because the flow's parameters become Prefect's UI form; every
constraint lives in the schema (``ge``/``le``), since the UI cannot run validators. The one
cross-field rule (first_page <= last_page) is checked when pages are read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .limits import MAX_FILE_BYTES, MAX_PAGES, MAX_PIXELS, MIN_SIDE_PX

__all__ = ["IngestOptions"]


class IngestOptions(BaseModel):
    """How to turn files into pages, and the limits that protect the run.

    ``dpi`` defaults to 150: the detector resizes a page's long side to at most 1280 px
    (CRAFT's canvas), and A4 at 150 DPI is already 1241x1754, so more DPI only costs
    rasterization time and memory (x4 at 300 DPI) without adding detail the net sees;
    it also matches the golden reference page (page 1 of natnotes.pdf at 150 DPI).

    ``chunk_pages`` None (the default) sizes chunks automatically: each poppler call costs
    a fixed start-up (pdf2image runs pdfinfo and ``pdftoppm -v`` first), so several small
    pages per call are faster, while big pages go one at a time to bound memory; see
    ``ingest.pdf.auto_chunk_pages`` and ``bench/bench_ingest.py``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    dpi: int = Field(default=150, ge=36, le=1200, description="PDF rasterization resolution")
    first_page: int | None = Field(default=None, ge=1, description="first PDF page (1-based)")
    last_page: int | None = Field(default=None, ge=1, description="last PDF page (inclusive)")
    max_pages: int = Field(default=MAX_PAGES, ge=1, description="refuse longer page ranges")
    password: SecretStr | None = Field(default=None, description="password of encrypted PDFs")
    page_timeout_s: float = Field(
        default=60.0, gt=0, description="kill poppler after this per page"
    )
    max_pixels: int = Field(default=MAX_PIXELS, ge=1, description="refuse larger pages (bombs)")
    min_side_px: int = Field(default=MIN_SIDE_PX, ge=1, description="refuse smaller pages")
    max_file_bytes: int = Field(default=MAX_FILE_BYTES, ge=1, description="refuse larger files")
    workers: int = Field(
        default=2, ge=1, le=64, description="rasterization threads (poppler processes)"
    )
    chunk_pages: int | None = Field(
        default=None, ge=1, le=64, description="pages per poppler call (empty: automatic)"
    )
    poppler_path: str | None = Field(default=None, description="folder with pdfinfo/pdftoppm")

    def password_value(self) -> str | None:
        """The password in clear, for poppler's command line only."""
        return None if self.password is None else self.password.get_secret_value()
