"""Detector parameters, named after Visual NLP's ``ImageTextDetectorV2`` in snake_case.

One pydantic model serves the library, the CLI flags and the Prefect UI form: each field's
type, default, bounds, ``title`` and ``description`` are declared here once, and the flow form
(``flows.params.DetectorOptions``) and the ``detect``/``run`` flags (``cli.options``) are built
from ``DetectorParams.model_fields``, as docTR's ``default_cfgs`` is the one table its models read.

| ocrflow / Visual NLP  | CRAFT reference    | meaning                                    |
|-----------------------|--------------------|--------------------------------------------|
| ``score_threshold``   | ``text_threshold`` | peak character score a region must reach   |
| ``text_threshold``    | ``low_text``       | character score that makes a pixel text    |
| ``link_threshold``    | ``link_threshold`` | link score that joins characters           |
| ``width``             | ``canvas_size``    | longest side fed to the network            |
| ``mag_ratio``         | ``mag_ratio``      | magnification before the ``width`` cap     |
| ``with_refiner``      | ``refine``         | LinkRefiner: line-level instead of words   |
| ``size_threshold``    | (none)             | drop regions with a shorter short side (px)|
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["PRESETS", "Backend", "DetectorParams", "Device", "Precision", "Preset"]

Preset = Literal["default", "words", "lines"]
Backend = Literal["auto", "onnxruntime", "torch"]
Precision = Literal["fp32", "bf16", "fp16", "fast"]
# A closed list, so the form offers a menu and a typo fails at validation, not at model load;
# a machine with more GPUs picks one with CUDA_VISIBLE_DEVICES.
Device = Literal[
    "auto", "cpu", "cuda", "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:4", "cuda:5", "cuda:6",
    "cuda:7",
]  # fmt: skip


class DetectorParams(BaseModel):
    """How CRAFT turns a page into regions.

    Field defaults are the product's design card with the reference's post-processing; the
    ``default`` preset adds line splitting, tight boxes and orientation detection.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # ``title`` labels the form field, ``description`` is its help and the CLI flag's help.
    score_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        title="Score threshold",
        description="Min peak character score of a region (CRAFT text_threshold).",
    )
    text_threshold: float = Field(
        0.2,
        ge=0.0,
        le=1.0,
        title="Text threshold",
        description="Character score that marks a pixel as text (CRAFT low_text).",
    )
    link_threshold: float = Field(
        0.4,
        ge=0.0,
        le=1.0,
        title="Link threshold",
        description="Link score that joins neighbouring characters.",
    )
    size_threshold: float = Field(
        10,
        ge=-1,
        title="Size threshold (px)",
        description="Drop regions whose short side is below this many page pixels; 0 keeps all; "
        "-1 = half the page's median region height.",
    )
    width: int = Field(
        1280,
        ge=32,
        le=8192,
        title="Width (px)",
        description="Longest image side fed to the network.",
    )
    mag_ratio: float = Field(
        1.5,
        gt=0.0,
        le=8.0,
        title="Magnification",
        description="Magnification before the width cap.",
    )
    with_refiner: bool = Field(
        True, title="LinkRefiner", description="Run the LinkRefiner: text lines instead of words."
    )
    split_lines: bool = Field(
        False,
        title="Split lines",
        description="Split regions that hold several text lines (from the character map).",
    )
    tight_boxes: bool = Field(
        False,
        title="Tight boxes",
        description="Shrink each region to its ink on the page (same angle, words whole).",
    )
    detect_orientation: bool = Field(
        False,
        title="Detect orientation",
        description="Detect pages turned 90/180/270 degrees upright (regions stay in the page's "
        "pixels; a turned page costs a second pass).",
    )
    batch_size: int = Field(
        1, ge=1, le=64, title="Batch size", description="Pages per forward pass."
    )
    device: Device = Field(
        "auto",
        title="Device",
        description="auto (CUDA when present), cpu, cuda or cuda:N (N = 0-7).",
    )
    backend: Backend = Field(
        "auto",
        title="Backend",
        description="auto (onnxruntime for fp32 on CPU, torch otherwise), onnxruntime or torch.",
    )
    precision: Precision = Field(
        "fp32",
        title="Precision",
        description="fp32 keeps reference parity; bf16/fp16 are less exact, faster on GPUs and on "
        "CPUs with bf16/fp16 instructions, about 10x slower on other CPUs; fast: the fastest path "
        "this machine runs whose boxes agree with fp32's (>= 98% at IoU 0.9).",
    )

    @classmethod
    def preset(cls, name: Preset = "default", **overrides: Any) -> DetectorParams:
        """Start from a named preset; explicit keyword values win over it."""
        try:
            base = PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown preset '{name}' (known: {', '.join(PRESETS)})") from None
        return cls(**{**base, **{k: v for k, v in overrides.items() if v is not None}})

    def craft_thresholds(self) -> dict[str, float]:
        """The same thresholds under the reference code's names."""
        return {
            "text_threshold": self.score_threshold,
            "low_text": self.text_threshold,
            "link_threshold": self.link_threshold,
        }


PRESETS: dict[str, dict[str, Any]] = {
    # The product card: recall-friendly thresholds, line regions, small specks dropped; then
    # lines split, boxes cut to their ink, turned pages detected upright (docs/accuracy.md).
    "default": {"split_lines": True, "tight_boxes": True, "detect_orientation": True},
    # CRAFT's own defaults at word level (the reference's test.py), no size filter; turned
    # pages detected upright (upright pages keep the reference's boxes).
    "words": {
        "score_threshold": 0.7,
        "text_threshold": 0.4,
        "link_threshold": 0.4,
        "with_refiner": False,
        "size_threshold": 0,
        "detect_orientation": True,
    },
    # CRAFT's own thresholds with the LinkRefiner: the reference's line-level output.
    "lines": {
        "score_threshold": 0.7,
        "text_threshold": 0.4,
        "link_threshold": 0.4,
        "with_refiner": True,
        "size_threshold": 0,
    },
}
