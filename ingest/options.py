"""``IngestOptions``: every ingestion knob in one frozen pydantic model.

Pydantic (not a dataclass) because the flow's parameters become Prefect's UI form; every
constraint lives in the schema (``ge``/``le``), since the UI cannot run validators. The one
cross-field rule (first_page <= last_page) is checked when pages are read.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from .limits import MAX_FILE_BYTES, MAX_PAGES, MAX_PIXELS, MIN_SIDE_PX

__all__ = ["IngestOptions", "drop_null_types"]


def drop_null_types(schema: dict[str, Any]) -> None:
    """Keep ``null`` out of optional fields' JSON schema (a model's ``json_schema_extra``).

    Prefect's form renders ``anyOf [..., {"type": "null"}]`` as a tab reading 'Property is
    type "None"'. An empty field is left out of the parameters, so None still applies.
    """
    for prop in schema.get("properties", {}).values():
        branches = prop.get("anyOf")
        if not isinstance(branches, list):
            continue
        kept = [b for b in branches if b.get("type") != "null"]
        if len(kept) == len(branches):
            continue
        if "default" in prop and prop["default"] is None:
            del prop["default"]
        if len(kept) == 1:
            del prop["anyOf"]
            prop.update({k: v for k, v in kept[0].items() if k not in prop})
        else:
            prop["anyOf"] = kept


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

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=drop_null_types)

    dpi: int = Field(
        default=150,
        ge=36,
        le=1200,
        title="PDF resolution (DPI)",
        description="PDF rasterization resolution in dots per inch",
    )
    first_page: int | None = Field(
        default=None, ge=1, title="First page", description="first PDF page (1-based; empty: 1)"
    )
    last_page: int | None = Field(
        default=None,
        ge=1,
        title="Last page",
        description="last PDF page, inclusive (empty: the last one)",
    )
    max_pages: int = Field(
        default=MAX_PAGES, ge=1, title="Max pages", description="refuse longer page ranges"
    )
    password: SecretStr | None = Field(
        default=None, title="PDF password", description="password of encrypted PDFs"
    )
    page_timeout_s: float = Field(
        default=60.0,
        gt=0,
        title="Page timeout (seconds)",
        description="kill poppler after this many seconds per page",
    )
    max_pixels: int = Field(
        default=MAX_PIXELS,
        ge=1,
        title="Max pixels per page",
        description=f"refuse larger pages (decompression bombs); default {MAX_PIXELS / 1e6:g} "
        "megapixels",
    )
    min_side_px: int = Field(
        default=MIN_SIDE_PX, ge=1, title="Min page side (px)", description="refuse smaller pages"
    )
    max_file_bytes: int = Field(
        default=MAX_FILE_BYTES,
        ge=1,
        title="Max file size (bytes)",
        description=f"refuse larger files; default {MAX_FILE_BYTES} bytes = "
        f"{MAX_FILE_BYTES // 2**20} MiB (1 MiB = 1048576 bytes)",
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=64,
        title="Rasterization workers",
        description="rasterization threads (poppler processes)",
    )
    chunk_pages: int | None = Field(
        default=None,
        ge=1,
        le=64,
        title="Pages per poppler call",
        description="pages per poppler call (empty: automatic)",
    )
    poppler_path: str | None = Field(
        default=None,
        title="Poppler folder",
        description="folder with pdfinfo/pdftoppm (empty: found on PATH)",
    )

    def password_value(self) -> str | None:
        """The password in clear, for poppler's command line only."""
        return None if self.password is None else self.password.get_secret_value()
