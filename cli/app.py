"""The ``ocrflow`` command line.

Heavy imports (torch, Prefect, SQLAlchemy) happen inside the commands so ``ocrflow --help``
stays instant.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from cli.db import db_app
from cli.deploy import register as register_deploy_commands
from cli.options import (
    FLAG,
    Command,
    FirstPageOpt,
    Group,
    InputsArg,
    LastPageOpt,
    OutputDirOpt,
    QuietOpt,
    VerboseOpt,
    check_page_range,
    detector_flags,
    detector_options,
)
from cli.query import register as register_query_commands
from flows.params import DetectorOptions

app = typer.Typer(
    cls=Group,
    name="ocrflow",
    help="Document text detection (CRAFT) as Prefect workflows, with results in SQL.\n\n"
    "Exit codes, every command: 0 done; 1 partly done (some inputs or pages failed, or no "
    "match); 2 nothing done (bad arguments, no readable input, database unusable).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,  # shell completion is not worth two more flags on every --help
)
app.add_typer(db_app, name="db")
register_deploy_commands(app)
register_query_commands(app)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"ocrflow {version('ocrflow')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar=FLAG,
            callback=_print_version,
            is_eager=True,
            help="Print ocrflow's version and exit.",
        ),
    ] = False,
) -> None:
    """The options of ``ocrflow`` itself (the help text is the Typer app's)."""


def fail(message: str) -> NoReturn:
    """One line on stderr and exit code 2: nothing was done."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@app.command(cls=Command)
@detector_flags()
def detect(
    inputs: InputsArg,
    json_out: Annotated[
        Path | None,
        typer.Option("--json", help="Write one JSON record per page here ('-' = stdout)."),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            "-o",
            file_okay=False,
            help="Write <name>-p<page>.overlay.png with green boxes into this folder.",
        ),
    ] = None,
    dpi: Annotated[int, typer.Option(help="PDF rasterization resolution.")] = 150,
    first_page: FirstPageOpt = None,
    last_page: LastPageOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    *,
    detector: DetectorOptions,  # the Detector flags (detector_flags), validated
) -> None:
    """Run the detector alone (no database, no Prefect) and print or save the regions.

    Exit code 0: every page done; 1: some files or pages failed; 2: nothing could be read.
    """  # fmt: skip
    check_page_range(first_page, last_page)
    import cv2

    from craft.overlay import draw_regions
    from craft.serialize import page_record
    from craft.zoo import craft_predictor
    from ingest import IngestError, IngestOptions, discover, iter_pages

    predictor = craft_predictor(params=detector.resolve())
    options = IngestOptions(dpi=dpi, first_page=first_page, last_page=last_page)
    records = []
    failures = 0
    for item in discover(inputs, options):
        if isinstance(item, IngestError):
            typer.echo(f"error: {item.message}", err=True)
            failures += 1
            continue
        try:
            for page in iter_pages(item, options):
                if isinstance(page, IngestError):
                    typer.echo(f"error: {page.message}", err=True)
                    failures += 1
                    continue
                [result] = predictor([page.image])
                records.append(page_record(page.source, page.page_number, result))
                if not quiet:
                    typer.echo(
                        f"{page.source} p{page.page_number}: {len(result.regions)} regions, "
                        f"{result.timings.total:.2f} s ({predictor.info.backend}, "
                        f"{predictor.info.device})",
                        err=True,
                    )
                if verbose:
                    t = result.timings
                    stages = ", ".join(
                        f"{k} {getattr(t, k):.3f} s"
                        for k in ("preprocess", "forward", "refine", "postprocess")
                    )
                    typer.echo(f"  {stages}", err=True)
                if output_dir is not None:
                    output_dir.mkdir(parents=True, exist_ok=True)
                    name = f"{Path(page.source).stem}-p{page.page_number}.overlay.png"
                    cv2.imwrite(str(output_dir / name), draw_regions(page.image, result.regions))
        except IngestError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            failures += 1
    if json_out is not None:
        text = json.dumps(records, indent=1)
        if str(json_out) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_out.write_text(text + "\n")
    if failures:
        raise typer.Exit(1 if records else 2)


@app.command(cls=Command)
@detector_flags()
def run(
    inputs: InputsArg,
    database_url: Annotated[
        str | None,
        typer.Option(help="Results database (default: OCRFLOW_DATABASE_URL, else ./ocrflow.db)."),
    ] = None,
    output_dir: OutputDirOpt = Path("ocrflow-output"),
    dpi: Annotated[int, typer.Option(help="PDF rasterization resolution.")] = 150,
    first_page: FirstPageOpt = None,
    last_page: LastPageOpt = None,
    skip: Annotated[
        bool,
        typer.Option(
            "--skip/--no-skip",
            metavar=FLAG,
            help="Skip pages already done with the same parameters and weights.",
        ),
    ] = True,
    overlays: Annotated[
        bool,
        typer.Option(
            "--overlays/--no-overlays",
            metavar=FLAG,
            help="Write a green-box overlay image per page into --output-dir.",
        ),
    ] = True,
    recognize: Annotated[
        bool,
        typer.Option(
            "--recognize/--no-recognize",
            metavar=FLAG,
            help="Read each region's text (Tesseract) so `ocrflow search` finds it.",
        ),
    ] = False,
    languages: Annotated[str, typer.Option(help="Tesseract languages, e.g. eng+deu.")] = "eng",
    min_text_score: Annotated[
        float, typer.Option(help="Leave regions below this detection score unread.")
    ] = 0.0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    *,
    detector: DetectorOptions,  # the Detector flags (detector_flags), validated
) -> None:
    """Run the ocr-documents flow here (no server to set up) and print a summary.

    Inputs and the database are checked first, in a second; then a temporary Prefect server
    starts unless PREFECT_API_URL names one (its runs then stay there, and the run's URL is
    printed). Exit code 0: all documents done; 1: some documents or pages failed; 2: nothing
    succeeded (no readable input, database unusable, bad arguments).
    """  # fmt: skip
    check_page_range(first_page, last_page)
    from cli.runner import NothingToRunError, run_flow_with_progress
    from db.errors import DatabaseError
    from ingest import IngestOptions

    try:
        summary = run_flow_with_progress(
            inputs,
            detector=detector,
            database_url=database_url,
            output=output_dir,
            ingestion=IngestOptions(dpi=dpi, first_page=first_page, last_page=last_page),
            skip_processed=skip,
            overlays=overlays,
            recognition={"enabled": recognize, "languages": languages, "min_score": min_text_score},
            verbose=verbose,
            quiet=quiet,
        )
    except NothingToRunError as exc:
        for message in exc.messages[:-1]:
            typer.echo(f"error: {message}", err=True)
        fail(exc.messages[-1] if exc.messages else "no input given")
    except DatabaseError as exc:
        fail(str(exc))
    raise typer.Exit(summary.exit_code)


@app.command(cls=Command)
def demo(
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="Folder for overlays and the database.")
    ] = Path("ocrflow-output"),
) -> None:
    """Run the flow on the bundled samples, then show the overlays, a summary and a SQL query."""
    from cli.query_output import print_query, print_search
    from cli.runner import run_flow_with_progress
    from samples import sample_paths

    out = output_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{out / 'ocrflow.db'}"
    summary = run_flow_with_progress(
        [str(p) for p in sample_paths()],
        detector=detector_options(),
        database_url=url,
        output=out / "overlays",
        skip_processed=False,  # a demo shows fresh work every time
        recognition={"enabled": True},
    )
    typer.echo(f"\nOverlays: {out / 'overlays'}\nDatabase: {url}\n")
    print_query(url, DEMO_QUERY)
    typer.echo('\nWhere does the text say "citation"?  ocrflow search citation')
    print_search(url, "citation", limit=5)
    raise typer.Exit(summary.exit_code)


DEMO_QUERY = (
    "SELECT d.media_type AS type, s.page_number AS page, s.region_count AS regions, "
    "s.mean_score AS score, s.text_density AS density, s.total_seconds AS seconds "
    "FROM page_summary s JOIN documents d ON d.id = s.document_id "
    "ORDER BY d.media_type DESC, s.page_number"
)


@app.command("export-onnx", cls=Command)
def export_onnx_cmd(
    force: Annotated[
        bool, typer.Option(metavar=FLAG, help="Re-export even if the cache has the graphs.")
    ] = False,
) -> None:
    """Verify the weights and export CRAFT + LinkRefiner to ONNX in the user cache.

    On a CPU with VNNI, also quantise the int8 LinkRefiner that ``--precision fast`` runs
    there, so a first fast run does not pay for it.
    """
    from craft.backends import cpu_flags
    from craft.fast import choose_fast_path
    from craft.weights_store import resolve_weights
    from craft.zoo import CRAFT_WEIGHTS, REFINER_WEIGHTS, ensure_int8_refiner, ensure_onnx

    craft_path = resolve_weights(CRAFT_WEIGHTS)
    refiner_path = resolve_weights(REFINER_WEIGHTS)
    craft_onnx, refiner_onnx = ensure_onnx(craft_path, refiner_path, force=force)
    typer.echo(f"weights verified: {craft_path.name}, {refiner_path.name}")
    typer.echo(f"ONNX graphs: {craft_onnx} and {refiner_onnx.name}")
    if choose_fast_path("cpu", "auto", cpu_flags()).int8_refiner:
        int8 = ensure_int8_refiner(craft_path, refiner_path, force=force)
        typer.echo(f"int8 LinkRefiner (this CPU has VNNI): {int8.name}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
