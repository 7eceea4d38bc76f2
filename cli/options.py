"""Detector flags shared by ``ocrflow detect`` and ``ocrflow run``: one definition, one mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from craft.params import PRESETS
from flows.params import DetectorOptions

__all__ = [
    "FLAG",
    "BackendOpt",
    "BatchOpt",
    "Command",
    "DeviceOpt",
    "FirstPageOpt",
    "Group",
    "InputsArg",
    "LastPageOpt",
    "LinkOpt",
    "MagOpt",
    "OrientationOpt",
    "OutputDirOpt",
    "PrecisionOpt",
    "PresetOpt",
    "QuietOpt",
    "RefinerOpt",
    "ScoreOpt",
    "SizeOpt",
    "SplitLinesOpt",
    "TextOpt",
    "TightBoxesOpt",
    "VerboseOpt",
    "WidthOpt",
    "check_page_range",
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
    "split_lines",
    "tight_boxes",
    "detect_orientation",
    "backend",
    "precision",
    "device",
    "batch_size",
)

_D = "Detector"
# On/off flags take no value: an empty metavar keeps typer from showing a `<bool>` placeholder.
FLAG = ""


class _FlagHelp:
    """Typer's ``--help`` option, shown without a ``<bool>`` placeholder (mixed into both)."""

    def get_help_option(self, ctx: Any) -> Any:
        """The help option, built by typer, with the flag metavar."""
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            option.metavar = FLAG
        return option


class Command(_FlagHelp, TyperCommand):
    """Typer's command whose ``--help`` row shows no ``<bool>`` placeholder either."""


class Group(_FlagHelp, TyperGroup):
    """Typer's command group, with the same ``--help`` row as :class:`Command`."""


InputsArg = Annotated[
    list[str],
    typer.Argument(help="PDFs, images, folders or glob patterns.", metavar="PATH"),
]
OutputDirOpt = Annotated[
    Path,
    typer.Option("--output-dir", "-o", help="Folder for overlay images.", file_okay=False),
]
FirstPageOpt = Annotated[
    int | None,
    typer.Option(min=1, metavar="N", help="First page to read (1-based; PDFs, multi-page TIFFs)."),
]
LastPageOpt = Annotated[
    int | None, typer.Option(min=1, metavar="N", help="Last page to read (inclusive).")
]
QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", metavar=FLAG, help="Print only errors: no progress, no summary table."
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", metavar=FLAG, help="Also print the log (Prefect, stages)."),
]


def check_page_range(first_page: int | None, last_page: int | None) -> None:
    """Refuse a range that selects nothing, for every document, before anything starts."""
    if first_page is not None and last_page is not None and last_page < first_page:
        raise typer.BadParameter(
            f"--last-page {last_page} is before --first-page {first_page}: no page selected",
            param_hint="--last-page",
        )


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
    typer.Option(
        "--refiner/--no-refiner", help="LinkRefiner (lines).", rich_help_panel=_D, metavar=""
    ),
]
SplitLinesOpt = Annotated[
    bool | None,
    typer.Option(
        "--split-lines/--no-split-lines",
        help="Split regions holding several text lines.",
        rich_help_panel=_D,
        metavar=FLAG,
    ),
]
TightBoxesOpt = Annotated[
    bool | None,
    typer.Option(
        "--tight-boxes/--no-tight-boxes",
        help="Shrink each region to its ink (same angle).",
        rich_help_panel=_D,
        metavar=FLAG,
    ),
]
OrientationOpt = Annotated[
    bool | None,
    typer.Option(
        "--detect-orientation/--no-detect-orientation",
        help="Detect turned pages (90/180/270) upright.",
        rich_help_panel=_D,
        metavar=FLAG,
    ),
]
BackendOpt = Annotated[
    str | None, typer.Option(help="auto, onnxruntime or torch.", rich_help_panel=_D)
]
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        help="fp32 (reference parity), bf16, fp16, or fast: the fastest path this machine "
        "runs whose boxes agree with fp32's.",
        rich_help_panel=_D,
    ),
]
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
    split_lines: bool | None = None,
    tight_boxes: bool | None = None,
    detect_orientation: bool | None = None,
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
        "split_lines": split_lines,
        "tight_boxes": tight_boxes,
        "detect_orientation": detect_orientation,
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
