"""Typed flow parameters: Prefect renders these pydantic models as the run form in the UI.

Every constraint is in the schema (``ge``/``le``/``Literal``) because the UI cannot run
validators; every field has a description, because the form shows it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from craft.params import Backend, DetectorParams, Precision, Preset

__all__ = ["DatabaseOptions", "DetectorOptions", "OverlayOptions", "RecognitionOptions"]


class DetectorOptions(BaseModel):
    """A preset plus the values that override it (empty = the preset's value)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preset: Preset = Field(
        "default",
        description="default: line regions (Visual NLP card); words: CRAFT defaults, no "
        "refiner; lines: CRAFT thresholds with the refiner.",
    )
    score_threshold: float | None = Field(
        None, ge=0, le=1, description="Min peak character score (CRAFT text_threshold)."
    )
    text_threshold: float | None = Field(
        None, ge=0, le=1, description="Character score marking text (CRAFT low_text)."
    )
    link_threshold: float | None = Field(
        None, ge=0, le=1, description="Link score joining characters."
    )
    size_threshold: float | None = Field(
        None, ge=-1, description="Min short side in page px; -1 = half the median height."
    )
    width: int | None = Field(None, ge=32, le=8192, description="Longest side fed to the net.")
    mag_ratio: float | None = Field(None, gt=0, le=8, description="Magnification before width.")
    with_refiner: bool | None = Field(None, description="LinkRefiner: lines instead of words.")
    batch_size: int | None = Field(None, ge=1, le=64, description="Pages per forward pass.")
    device: str | None = Field(None, description="auto, cpu, cuda or cuda:N.")
    backend: Backend | None = Field(None, description="auto, onnxruntime or torch.")
    precision: Precision | None = Field(None, description="fp32 (reference parity), bf16, fp16.")

    def resolve(self) -> DetectorParams:
        """The preset with this form's explicit values applied."""
        values = self.model_dump(exclude={"preset"}, exclude_none=True)
        return DetectorParams.preset(self.preset, **values)


class DatabaseOptions(BaseModel):
    """Where results go. Production: name a Prefect Secret block so no password is a parameter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url_secret_block: str | None = Field(
        None,
        description="Name of a Prefect Secret block holding the database URL (production).",
    )
    url: str | None = Field(
        None,
        description="Database URL without a password (e.g. sqlite:///ocrflow.db); empty = "
        "OCRFLOW_DATABASE_URL, else the embedded SQLite file.",
    )


class OverlayOptions(BaseModel):
    """Review images: rotated polygons drawn on each page, as Visual NLP's ImageDrawRegions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Write a full-size overlay per page.")
    color: str = Field(
        "#00ff00", pattern=r"^#[0-9a-fA-F]{6}$", description="Box colour as #rrggbb."
    )
    line_width: int = Field(4, ge=1, le=50, description="Outline thickness in pixels.")
    image_format: Literal["png", "jpg"] = Field("png", description="Overlay file format.")
    thumbnail_side: int = Field(
        640, ge=64, le=1600, description="Long side of the thumbnail embedded in artifacts."
    )

    def bgr(self) -> tuple[int, int, int]:
        """The colour as an OpenCV BGR triple."""
        r, g, b = (int(self.color[i : i + 2], 16) for i in (1, 3, 5))
        return b, g, r


class RecognitionOptions(BaseModel):
    """Read each region's text with Tesseract 5, so SQL can search it (off: detection only)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(False, description="Recognise the text inside every region.")
    languages: str = Field(
        "eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages, e.g. eng+deu.",
    )
    min_score: float = Field(
        0.0, ge=0, le=1, description="Leave regions below this detection score unread."
    )
    workers: int | None = Field(
        None, ge=1, le=64, description="Recognition processes (empty: one per CPU core)."
    )
