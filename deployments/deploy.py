"""Set up ocrflow on a Prefect server: work pools, the ``gpu`` limit and the deployments.

``deployments/prefect.yaml`` is the one description of the deployments; :func:`set_up` creates
what it needs (pools, tag limit) through the Prefect client, idempotently, then runs
``prefect deploy`` on it with the variables it templates. :func:`serve` is the one-process
alternative (``prefect.serve``) for a single machine.

Everything started from here has Prefect's telemetry off: nothing leaves the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GPU_TAG",
    "PREFECT_FILE",
    "PROJECT_DIR",
    "DeploySettings",
    "SetUpError",
    "api_url",
    "dask_flow",
    "deploy_env",
    "deployed_names",
    "ensure_tag_limit",
    "ensure_work_pool",
    "input_roots_value",
    "serve",
    "set_up",
]

PROJECT_DIR = Path(__file__).resolve().parents[1]
PREFECT_FILE = Path(__file__).resolve().with_name("prefect.yaml")
GPU_TAG = "gpu"  # tasks.detect.detect_pages carries it
DEFAULT_CRON = "*/10 * * * *"
QUIET_ENV = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


class SetUpError(RuntimeError):
    """The server cannot be used, or ``prefect deploy`` failed (the message says why)."""


@dataclass(frozen=True, slots=True)
class DeploySettings:
    """Values ``deployments/prefect.yaml`` is templated with (see its header)."""

    inbox: Path
    output_dir: Path
    cron: str = DEFAULT_CRON
    pool: str = "ocr-cpu"
    gpu_pool: str = "ocr-gpu"
    gpu_slots: int = 1
    secret_block: str = ""
    input_roots: list[Path] = field(default_factory=list)  # besides the inbox, always a root
    project_dir: Path = PROJECT_DIR
    prefect_file: Path = PREFECT_FILE
    names: list[str] = field(default_factory=list)  # empty = every deployment in the file


def api_url() -> str:
    """The server in ``PREFECT_API_URL``, checked healthy; deployments need a real server.

    The ephemeral server Prefect starts when no URL is set has no scheduler, so schedules
    would never fire and workers could not reach it.
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise SetUpError(
            "PREFECT_API_URL is not set: start a server (`prefect server start`, see "
            "docs/operations.md) and export PREFECT_API_URL=http://HOST:4200/api"
        )
    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise SetUpError(f"Prefect server at {url} is not healthy: {problem}")
    return str(url)


def ensure_work_pool(name: str) -> bool:
    """Create process work pool ``name`` unless it exists; return whether it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(
                WorkPoolCreate(
                    name=name,
                    type="process",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                    description="ocrflow: flow runs as local processes of the worker",
                )
            )
        except ObjectAlreadyExists:  # another set-up won the race: same result
            return False
    return True


def ensure_tag_limit(tag: str, limit: int) -> None:
    """Set the concurrency limit on task tag ``tag`` to ``limit`` (the API upserts)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.create_concurrency_limit(tag=tag, concurrency_limit=limit)


def deploy_env(settings: DeploySettings) -> dict[str, str]:
    """The environment ``prefect deploy`` runs in: the yaml's variables, telemetry off."""
    return {
        **os.environ,
        **QUIET_ENV,
        "OCRFLOW_PROJECT_DIR": str(settings.project_dir.resolve()),
        "OCRFLOW_WORK_POOL": settings.pool,
        "OCRFLOW_GPU_WORK_POOL": settings.gpu_pool,
        "OCRFLOW_INBOX": str(settings.inbox.resolve()),
        "OCRFLOW_INBOX_CRON": settings.cron,
        "OCRFLOW_OUTPUT_DIR": str(settings.output_dir.resolve()),
        "OCRFLOW_DATABASE_SECRET_BLOCK": settings.secret_block,
        "OCRFLOW_INPUT_ROOTS": input_roots_value([settings.inbox, *settings.input_roots]),
    }


def input_roots_value(folders: list[Path]) -> str:
    """``OCRFLOW_INPUT_ROOTS`` for these folders: absolute, deduplicated, ``os.pathsep``-joined."""
    return os.pathsep.join(dict.fromkeys(str(f.resolve()) for f in folders))


def _prefect_deploy(settings: DeploySettings) -> None:
    command = [
        sys.executable,
        "-c",
        "import sys; from prefect.cli import app; sys.exit(app())",
        "--no-prompt",
        "deploy",
        "--prefect-file",
        str(settings.prefect_file.resolve()),
    ]
    for name in settings.names:
        command += ["--name", name]
    if not settings.names:
        command.append("--all")
    done = subprocess.run(
        command,
        cwd=settings.project_dir,  # entrypoints are relative to the project root
        env=deploy_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SetUpError(f"prefect deploy failed (exit {done.returncode}):\n{tail}")


def deployed_names(settings: DeploySettings) -> list[str]:
    """``flow/deployment`` names on the server of the deployments this set-up made."""
    import yaml
    from prefect.client.orchestration import get_client

    spec = yaml.safe_load(settings.prefect_file.read_text())
    wanted = [d["name"] for d in spec.get("deployments", [])]
    wanted = [n for n in wanted if not settings.names or n in settings.names]
    with get_client(sync_client=True) as client:
        found = {d.name: d for d in client.read_deployments()}
        return [f"{client.read_flow(found[n].flow_id).name}/{n}" for n in wanted if n in found]


def set_up(settings: DeploySettings) -> list[str]:
    """Create pools, the ``gpu`` limit and the deployments; safe to run again. Returns a log.

    Raises:
        SetUpError: no healthy server in ``PREFECT_API_URL``, or ``prefect deploy`` failed.
    """
    os.environ.update(QUIET_ENV)
    url = api_url()
    log = [f"server: {url}"]
    for pool in (settings.pool, settings.gpu_pool):
        created = ensure_work_pool(pool)
        log.append(f"work pool {pool}: {'created' if created else 'exists'} (process)")
    ensure_tag_limit(GPU_TAG, settings.gpu_slots)
    log.append(f"concurrency limit: tag '{GPU_TAG}' = {settings.gpu_slots}")
    settings.inbox.mkdir(parents=True, exist_ok=True)
    for root in settings.input_roots:
        if not root.is_dir():
            log.append(f"warning: input root {root} is not a folder here (a worker may have it)")
    _prefect_deploy(settings)
    for name in deployed_names(settings):
        log.append(f"deployment {name}: run it with `prefect deployment run '{name}'`")
    log.append(f"ocr-inbox sweeps {settings.inbox.resolve()} on cron '{settings.cron}' (UTC)")
    log.append(f"input roots: {deploy_env(settings)['OCRFLOW_INPUT_ROOTS']}")
    return log


def serve(
    inbox: Path,
    output_dir: Path,
    *,
    cron: str = DEFAULT_CRON,
    limit: int = 2,
    pages_per_child: int | None = None,
) -> None:
    """Serve ``ocr-inbox`` (on ``cron``) and ``ocr-manual`` from this process until stopped.

    No work pool or worker: this process polls the server and runs each flow run as its own
    subprocess, at most ``limit`` at once. The inbox's children are ``ocr-manual`` runs served
    here too. Schedules need a real server (``PREFECT_API_URL``).
    """
    os.environ.update(QUIET_ENV)
    from prefect import serve as prefect_serve
    from prefect.deployments.runner import RunnerDeployment

    from flows.inbox import ocr_inbox
    from flows.ocr_documents import ocr_documents

    api_url()
    inbox.mkdir(parents=True, exist_ok=True)
    # Served runs are this process's children and inherit its environment: the inbox is
    # always an input root, besides any OCRFLOW_INPUT_ROOTS already set.
    from ingest.roots import ROOTS_SETTING, configured_roots

    os.environ[ROOTS_SETTING] = input_roots_value([inbox, *configured_roots()])
    out = str(output_dir.resolve())
    sweep = ocr_inbox.to_deployment(
        name="ocr-inbox",
        cron=cron,
        parameters={
            "inbox": str(inbox.resolve()),
            "output_dir": out,
            # None: the flow's own page budget (flows.inbox.PAGES_PER_CHILD)
            **({} if pages_per_child is None else {"pages_per_child": pages_per_child}),
        },
        concurrency_limit=1,
        tags=["ocrflow", "inbox"],
    )
    manual = ocr_documents.to_deployment(
        name="ocr-manual", parameters={"output_dir": out}, tags=["ocrflow", "manual"]
    )
    assert isinstance(sweep, RunnerDeployment) and isinstance(manual, RunnerDeployment)
    prefect_serve(sweep, manual, limit=limit)


def dask_flow(address: str | None = None, workers: int = 2) -> Any:
    """``ocr-documents`` with its detection batches on a Dask cluster (needs ``prefect-dask``).

    ``address`` is a running scheduler (``tcp://host:8786``); None starts a local cluster of
    ``workers`` threads in this process. The ``detect-pages`` tasks (pages and parameters, no
    database handle) then run on the cluster's machines, e.g. the one with the GPU; reading,
    writes and overlays stay in the flow's page stream. Dask workers need
    ``PREFECT_API_URL`` (else each starts its own temporary server), this package and the
    model cache.
    """
    from prefect_dask import DaskTaskRunner

    from flows.ocr_documents import ocr_documents

    if address:
        runner = DaskTaskRunner(address=address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={"n_workers": 1, "threads_per_worker": workers, "processes": False}
        )
    return ocr_documents.with_options(task_runner=runner)  # type: ignore[arg-type]
