"""OCRFLOW_INPUT_ROOTS on real deployments: a Prefect server, ``ocrflow deploy``, a process worker.

Runs of ``ocr-documents/ocr-manual`` (roots = the inbox, set by the deploy through the job
variables) fail before reading a path outside the inbox, with a message naming the path and
the setting; a folder inside it is processed with its escaping symlink refused; a deployment
whose runs get no roots refuses everything (fail closed).
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import cv2
import pytest
import yaml
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from sqlalchemy import text

from db import migrate
from db.session import create_engine
from deployments.deploy import PREFECT_FILE, DeploySettings, deploy_env
from ingest.roots import ROOTS_SETTING
from tests.craft.pages import text_page
from tests.db_fixtures import pg_database
from tests.deployments.stack import REPO_ROOT, Stack, prefect_bound_to
from tests.deployments.test_scale_out import DEPLOY_CLI

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}


def test_prefect_yaml_gives_every_deployment_the_roots(tmp_path: Path) -> None:
    config = yaml.safe_load(PREFECT_FILE.read_text())
    for d in config["deployments"]:
        env = d["work_pool"]["job_variables"]["env"]
        assert env[ROOTS_SETTING] == "{{ $OCRFLOW_INPUT_ROOTS }}", d["name"]
    extra = tmp_path / "manual"
    env = deploy_env(DeploySettings(inbox=tmp_path / "in", output_dir=tmp_path / "out",
                                    input_roots=[extra, tmp_path / "in"]))  # fmt: skip
    assert env[ROOTS_SETTING] == f"{(tmp_path / 'in').resolve()}:{extra.resolve()}"


def _wait_final(client: SyncPrefectClient, run: FlowRun, stack: Stack, timeout: float) -> FlowRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = client.read_flow_run(run.id)
        if got.state_type in FINAL:
            return got
        time.sleep(1.0)
    raise AssertionError(f"flow run {run.name} not final after {timeout} s\n{stack.log('w1.log')}")


def test_deployment_runs_read_only_inside_the_roots(pg_admin_url: str, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    inbox, outside, out = tmp_path / "inbox", tmp_path / "outside", tmp_path / "out"
    missing = tmp_path / "not-here"  # a root only some worker machine may have
    inbox.mkdir()
    outside.mkdir()
    cv2.imwrite(str(inbox / "in.png"), text_page(["Invoice 12"], size=(120, 240)))
    secret = outside / "secret.png"
    cv2.imwrite(str(secret), text_page(["Salary 99"], size=(120, 240)))
    (inbox / "evil.png").symlink_to(secret)
    stack = Stack(home=tmp_path / "stack")
    stack.home.mkdir()
    figures: dict[str, float] = {}
    with ExitStack() as cleanup:
        prefect_db = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_prefect_{uid}"))
        results = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_roots_{uid}"))
        cleanup.callback(stack.stop_all)  # runs before the databases are dropped
        migrate.upgrade(results)
        t0 = time.monotonic()
        api = stack.start_server(prefect_db)
        done = subprocess.run(
            [*DEPLOY_CLI, "--inbox", str(inbox), "--output-dir", str(out), "--cron",
             "0 0 1 1 *", "--name", "ocr-manual", "--input-root", str(missing)],
            cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        roots = f"{inbox.resolve()}{os.pathsep}{missing.resolve()}"
        assert f"input roots: {roots}" in done.stdout
        assert f"warning: input root {missing} is not a folder here" in done.stdout
        # It names what it created, as `prefect deployment run` wants it.
        assert "deployment ocr-documents/ocr-manual: run it with" in done.stdout, done.stdout
        # The worker's own roots would allow everything: the deployment's must win.
        stack.start_worker("ocr-cpu", "w1", {"OCRFLOW_DATABASE_URL": results,
                                             ROOTS_SETTING: "/"})  # fmt: skip

        with prefect_bound_to(api), get_client(sync_client=True) as client:
            manual = client.read_deployment_by_name("ocr-documents/ocr-manual")
            assert manual.job_variables["env"][ROOTS_SETTING] == roots

            def submit(inputs: list[str], name: str = "ocr-documents/ocr-manual") -> FlowRun:
                run = run_deployment(name, parameters={"inputs": inputs}, timeout=0)
                assert isinstance(run, FlowRun)
                return run

            # 1. A path outside the inbox, and one climbing out of it with "..".
            t = time.monotonic()
            for given in (str(secret), f"{inbox}/../outside/secret.png"):
                run = _wait_final(client, submit([given]), stack, 240)
                assert run.state_type == StateType.FAILED, (given, run.state)
                message = run.state.message if run.state else ""
                assert f"input '{given}'" in str(message) and ROOTS_SETTING in str(message)
            figures["refused run (submit to failed) s"] = (time.monotonic() - t) / 2

            # 2. The inbox itself: its document is processed, the symlink out is refused.
            run = _wait_final(client, submit([str(inbox)]), stack, 240)
            assert run.state_type == StateType.COMPLETED, run.state

            # 3. A deployment whose runs get no roots (the worker's are blanked): fail closed.
            from flows.ocr_documents import ocr_documents

            bare = ocr_documents.to_deployment(
                name="no-roots",
                work_pool_name="ocr-cpu",
                job_variables={"env": {ROOTS_SETTING: ""}, "working_dir": str(REPO_ROOT)},
            )
            bare_id = bare.apply()  # type: ignore[union-attr]
            assert isinstance(bare_id, uuid.UUID)
            closed = run_deployment(bare_id, parameters={"inputs": [str(inbox)]}, timeout=0)
            assert isinstance(closed, FlowRun)
            closed = _wait_final(client, closed, stack, 240)
            assert closed.state_type == StateType.FAILED
            assert f"{ROOTS_SETTING} is not set" in str(
                closed.state.message if closed.state else ""
            )
        figures["whole test s"] = time.monotonic() - t0

        engine = create_engine(results)
        try:
            with engine.connect() as conn:
                sources = conn.execute(text("SELECT source_uri FROM documents")).scalars().all()
        finally:
            engine.dispose()
        assert [Path(s).name for s in sources] == ["in.png"]  # nothing outside, ever
    print("\nfigures:", {k: round(v, 1) for k, v in figures.items()})
