"""Overlays for review: green rotated boxes on the page, full size to disk, a small thumbnail.

Full-size overlays stay on disk (artifacts stored in Prefect's database must stay small); the
thumbnail is a JPEG data URI sized to stay well under 200 KB so the UI can show it inline.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from craft import Region
from craft.overlay import draw_regions, thumbnail
from ingest import Document

__all__ = ["MAX_DATA_URI_BYTES", "Overlay", "jpeg_data_uri", "overlay_name", "render_overlay"]

MAX_DATA_URI_BYTES = 150_000


@dataclass(frozen=True, slots=True)
class Overlay:
    """Where the full overlay went, and its thumbnail as a data URI (or None if off)."""

    path: Path | None
    thumbnail_uri: str | None


def overlay_name(document: Document, page_number: int, image_format: str) -> str:
    """``<stem>-<hash8>/page-0001.png``: one folder per document, named so a person finds it."""
    stem = Path(document.path).stem
    return f"{stem}-{document.document_id[:8]}/page-{page_number:04d}.{image_format}"


def jpeg_data_uri(image: np.ndarray, max_side: int, limit: int = MAX_DATA_URI_BYTES) -> str:
    """Encode a shrunken copy as a JPEG data URI, lowering quality/size until under ``limit``."""
    side, quality = max_side, 80
    while True:
        ok, buf = cv2.imencode(".jpg", thumbnail(image, side), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:  # pragma: no cover - OpenCV always encodes a uint8 BGR image
            raise RuntimeError("JPEG encoding failed")
        uri = "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")
        if len(uri) <= limit or side <= 64:
            return uri
        side, quality = int(side * 0.8), max(quality - 10, 40)


def render_overlay(
    image: np.ndarray,
    regions: tuple[Region, ...],
    path: Path | None,
    color: tuple[int, int, int] = (0, 255, 0),
    line_width: int = 4,
    thumbnail_side: int | None = None,
) -> Overlay:
    """Draw the regions; write the full image to ``path`` (if given); return a thumbnail URI."""
    drawn = draw_regions(image, regions, color=color, thickness=line_width)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), drawn):
            raise OSError(f"could not write overlay {path}")
    uri = jpeg_data_uri(drawn, thumbnail_side) if thumbnail_side else None
    return Overlay(path, uri)
