"""Detector flags shared by ``ocrflow detect`` and ``ocrflow run``: one definition, one mapping."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from craft.params import PRESETS
from flows.params import DetectorOptions

__all__ = [
    "BackendOpt",
    "BatchOpt",
    "DeviceOpt",
    "LinkOpt",
    "MagOpt",
    "PrecisionOpt",
    "PresetOpt",
    "RefinerOpt",
    "ScoreOpt",
    "SizeOpt",
    "TextOpt",
    "WidthOpt",
    "detector_options",
    "detector_options_from",
]

# The CLI parameter names of the detector flags, as every command that takes them spells them.
DETECTOR_FLAGS = (
    "score_threshold",
    "text_threshold",
    "link_threshold",
    "size_threshold",
    "width",
    "mag_ratio",
    "refiner",
    "backend",
    "precision",
    "device",
    "batch_size",
)

_D = "Detector"

PresetOpt = Annotated[
    str, typer.Option("--preset", help="default (lines), words or lines.", rich_help_panel=_D)
]
ScoreOpt = Annotated[
    float | None,
    typer.Option(help="Min peak character score (CRAFT text_threshold).", rich_help_panel=_D),
]
TextOpt = Annotated[
    float | None,
    typer.Option(help="Character score that marks text (CRAFT low_text).", rich_help_panel=_D),
]
LinkOpt = Annotated[
    float | None, typer.Option(help="Link score joining characters.", rich_help_panel=_D)
]
SizeOpt = Annotated[
    float | None,
    typer.Option(help="Min short side in page px; -1 = from median height.", rich_help_panel=_D),
]
WidthOpt = Annotated[
    int | None, typer.Option(help="Longest side fed to the network.", rich_help_panel=_D)
]
MagOpt = Annotated[
    float | None, typer.Option(help="Magnification before the width cap.", rich_help_panel=_D)
]
RefinerOpt = Annotated[
    bool | None,
    typer.Option("--refiner/--no-refiner", help="LinkRefiner (lines).", rich_help_panel=_D),
]
BackendOpt = Annotated[
    str | None, typer.Option(help="auto, onnxruntime or torch.", rich_help_panel=_D)
]
PrecisionOpt = Annotated[str | None, typer.Option(help="fp32, bf16 or fp16.", rich_help_panel=_D)]
DeviceOpt = Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N.", rich_help_panel=_D)]
BatchOpt = Annotated[int | None, typer.Option(help="Pages per forward pass.", rich_help_panel=_D)]


def detector_options(
    preset: str,
    *,
    score_threshold: float | None = None,
    text_threshold: float | None = None,
    link_threshold: float | None = None,
    size_threshold: float | None = None,
    width: int | None = None,
    mag_ratio: float | None = None,
    refiner: bool | None = None,
    backend: str | None = None,
    precision: str | None = None,
    device: str | None = None,
    batch_size: int | None = None,
) -> DetectorOptions:
    """Preset first, then each flag given explicitly; bad values exit with a message."""
    values: dict[str, Any] = {
        "preset": preset,
        "score_threshold": score_threshold,
        "text_threshold": text_threshold,
        "link_threshold": link_threshold,
        "size_threshold": size_threshold,
        "width": width,
        "mag_ratio": mag_ratio,
        "with_refiner": refiner,
        "backend": backend,
        "precision": precision,
        "device": device,
        "batch_size": batch_size,
    }
    if preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
    try:
        options = DetectorOptions(**values)
        options.resolve()
    except ValueError as exc:
        raise typer.BadParameter(_one_line(exc)) from None
    return options


def _one_line(exc: ValueError) -> str:
    """pydantic's multi-line report, reduced to 'field: problem' pairs."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors())
    return str(exc)


def detector_options_from(values: dict[str, Any]) -> DetectorOptions:
    """``detector_options`` from a command's parameters (its ``locals()``)."""
    return detector_options(values["preset"], **{k: values[k] for k in DETECTOR_FLAGS})
