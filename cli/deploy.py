"""``ocrflow deploy`` and ``ocrflow serve``: run ocrflow from a Prefect server.

Mounted on the main app with ``register(app)``. Prefect is imported inside the commands so
``ocrflow --help`` stays instant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.options import Command

__all__ = ["deploy", "register", "serve"]

InboxOpt = Annotated[
    Path,
    typer.Option(
        envvar="OCRFLOW_INBOX",
        help="Folder ocr-inbox sweeps (the same path on every worker machine).",
    ),
]
OutputOpt = Annotated[
    Path,
    typer.Option(
        "--output-dir",
        envvar="OCRFLOW_OUTPUT_DIR",
        help="Overlay folder (the same path on every worker machine).",
    ),
]
CronOpt = Annotated[
    str, typer.Option(envvar="OCRFLOW_INBOX_CRON", help="When ocr-inbox sweeps (cron, UTC).")
]


def deploy(
    inbox: InboxOpt = Path("inbox"),
    output_dir: OutputOpt = Path("ocrflow-output"),
    cron: CronOpt = "*/10 * * * *",
    pool: Annotated[str, typer.Option(help="CPU process work pool.")] = "ocr-cpu",
    gpu_pool: Annotated[str, typer.Option(help="GPU process work pool.")] = "ocr-gpu",
    gpu_slots: Annotated[
        int, typer.Option(min=1, help="Detection tasks at once, all workers together (GPUs).")
    ] = 1,
    secret_block: Annotated[
        str,
        typer.Option(
            help="Prefect Secret block holding the results database URL; empty = each "
            "worker's OCRFLOW_DATABASE_URL."
        ),
    ] = "",
    input_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--input-root",
            help="Another folder deployment runs may read (repeat it); the inbox always is. "
            "Set as OCRFLOW_INPUT_ROOTS on every run; inputs elsewhere are refused.",
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Deploy only these (default: all in the file)."),
    ] = None,
) -> None:
    """Create the work pools, the `gpu` limit and the deployments on PREFECT_API_URL.

    Idempotent: run it again after changing deployments/prefect.yaml or an option.
    """
    from cli.runner import configure_prefect
    from deployments.deploy import DeploySettings, SetUpError, set_up

    configure_prefect()
    settings = DeploySettings(
        inbox=inbox,
        output_dir=output_dir,
        cron=cron,
        pool=pool,
        gpu_pool=gpu_pool,
        gpu_slots=gpu_slots,
        secret_block=secret_block,
        input_roots=list(input_root or []),
        names=list(name or []),
    )
    try:
        for line in set_up(settings):
            typer.echo(line)
    except SetUpError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"start workers: prefect worker start --pool {pool} --limit 1")


ServeInboxOpt = Annotated[
    Path,
    typer.Option(
        "--inbox",
        envvar="OCRFLOW_INBOX",
        help="Folder ocr-inbox sweeps; this process reads it (and only it, plus "
        "OCRFLOW_INPUT_ROOTS) for the runs it serves.",
    ),
]


def serve(
    inbox: ServeInboxOpt = Path("inbox"),
    output_dir: OutputOpt = Path("ocrflow-output"),
    cron: CronOpt = "*/10 * * * *",
    limit: Annotated[int, typer.Option(min=1, help="Flow runs at once.")] = 2,
    pages_per_child: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Pages per child run: small documents packed together, long PDFs split into "
            "ranges of this size; 0 = one child per document (default: the ocr-inbox flow's).",
        ),
    ] = None,
) -> None:
    """Serve ocr-inbox (on CRON) and ocr-manual from this process, no work pool needed.

    Needs a Prefect server in PREFECT_API_URL (schedules do not fire without one). Ctrl-C
    stops it and pauses the schedule.
    """
    from cli.runner import configure_prefect
    from deployments import deploy as deploy_module

    configure_prefect()
    try:
        deploy_module.serve(
            inbox, output_dir, cron=cron, limit=limit, pages_per_child=pages_per_child
        )
    except deploy_module.SetUpError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    """Add ``deploy`` and ``serve`` to ``app`` (the ``ocrflow`` command)."""
    app.command("deploy", cls=Command)(deploy)
    app.command("serve", cls=Command)(serve)
