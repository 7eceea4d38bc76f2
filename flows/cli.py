"""The ``ocrflow`` command line.

Heavy imports (torch, Prefect, SQLAlchemy) happen inside the commands so ``ocrflow --help``
stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli_options import (
    BackendOpt,
    BatchOpt,
    DeviceOpt,
    LinkOpt,
    MagOpt,
    PrecisionOpt,
    PresetOpt,
    RefinerOpt,
    ScoreOpt,
    SizeOpt,
    TextOpt,
    WidthOpt,
    detector_params,
)

app = typer.Typer(
    name="ocrflow",
    help="Document text detection (CRAFT) as Prefect workflows, with results in SQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Document text detection (CRAFT) as Prefect workflows, with results in SQL."""


@app.command()
def detect(
    images: Annotated[list[Path], typer.Argument(help="Image files to detect text on.")],
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write one JSON record per page here ('-' = stdout)."),
    ] = None,
    overlay: Annotated[
        Path | None,
        typer.Option(help="Write <name>.overlay.png with green boxes into this folder."),
    ] = None,
    preset: PresetOpt = "default",
    score_threshold: ScoreOpt = None,
    text_threshold: TextOpt = None,
    link_threshold: LinkOpt = None,
    size_threshold: SizeOpt = None,
    width: WidthOpt = None,
    mag_ratio: MagOpt = None,
    refiner: RefinerOpt = None,
    backend: BackendOpt = None,
    precision: PrecisionOpt = None,
    device: DeviceOpt = None,
    batch_size: BatchOpt = None,
) -> None:
    """Run the detector alone (no database, no Prefect) and print or save the regions."""
    import cv2

    from craft.overlay import draw_regions
    from craft.serialize import page_record
    from craft.zoo import craft_predictor

    params = detector_params(
        preset,
        score_threshold=score_threshold,
        text_threshold=text_threshold,
        link_threshold=link_threshold,
        size_threshold=size_threshold,
        width=width,
        mag_ratio=mag_ratio,
        refiner=refiner,
        backend=backend,
        precision=precision,
        device=device,
        batch_size=batch_size,
    )
    predictor = craft_predictor(params=params)
    records = []
    for path in images:
        page = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if page is None:
            typer.echo(f"error: {path}: not a readable image", err=True)
            raise typer.Exit(2)
        [result] = predictor([page])
        records.append(page_record(str(path), 1, result))
        typer.echo(
            f"{path}: {len(result.regions)} regions, {result.timings.total:.2f} s "
            f"({predictor.info.backend}, {predictor.info.device})",
            err=True,
        )
        if overlay is not None:
            overlay.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(overlay / f"{path.stem}.overlay.png"), draw_regions(page, result.regions)
            )
    if json_out is not None:
        text = json.dumps(records, indent=1)
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
