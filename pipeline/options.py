"""What the page stream does with a page besides detecting it: overlays and recognition.

Plain pydantic models, so the library, the CLI and the flow's form (which renders them as
they are: titles, descriptions and bounds are the form's) share one declaration.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ingest.options import drop_null_types

__all__ = ["OverlayOptions", "RecognitionOptions"]


class OverlayOptions(BaseModel):
    """Review images: rotated polygons drawn on each page, as Visual NLP's ImageDrawRegions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(
        True, title="Write overlays", description="Write a full-size overlay per page."
    )
    color: str = Field(
        "#00ff00",
        pattern=r"^#[0-9a-fA-F]{6}$",
        title="Box colour",
        description="Box colour as #rrggbb.",
    )
    line_width: int = Field(
        4, ge=1, le=50, title="Line width (px)", description="Outline thickness in pixels."
    )
    image_format: Literal["png", "jpg"] = Field(
        "png", title="Image format", description="Overlay file format."
    )
    thumbnail_side: int = Field(
        640,
        ge=64,
        le=1600,
        title="Thumbnail side (px)",
        description="Long side of the thumbnail embedded in artifacts.",
    )

    def bgr(self) -> tuple[int, int, int]:
        """The colour as an OpenCV BGR triple."""
        r, g, b = (int(self.color[i : i + 2], 16) for i in (1, 3, 5))
        return b, g, r


class RecognitionOptions(BaseModel):
    """Read each region's text with Tesseract 5, so SQL can search it (off: detection only)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=drop_null_types)

    enabled: bool = Field(
        False, title="Recognise text", description="Recognise the text inside every region."
    )
    languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        title="Languages",
        description="Tesseract languages, e.g. eng+deu.",
    )
    min_score: float = Field(
        0.0,
        ge=0,
        le=1,
        title="Min detection score",
        description="Leave regions below this detection score unread.",
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        title="Workers",
        description="Recognition processes (empty: one per CPU core).",
    )
