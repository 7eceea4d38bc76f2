"""A database URL with a password never reaches Prefect's database: a real server (on
PostgreSQL) with the project's deployments (``ocrflow deploy``, deployments/prefect.yaml)
refuses such a run at ``create_flow_run_from_deployment``, through the client and through
``prefect deployment run``, and afterwards nothing the server stores (every row of every table
of its database: flow runs, parameters, logs, events, artifacts) nor its log holds the password.
No worker: a refused run must not even exist to be picked up."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import PrefectHTTPStatusError

from tests.db_fixtures import pg_database
from tests.deployments.stack import PREFECT, REPO_ROOT, Stack, prefect_bound_to
from tests.deployments.test_scale_out import DEPLOY_CLI

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "S3cretPw-q7"
DEPLOYMENTS = ("ocr-documents/ocr-manual", "ocr-documents/ocr-manual-gpu", "ocr-inbox/ocr-inbox")


@pytest.fixture(scope="module")
def server(
    pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, str]]:
    """One server with every deployment for the module; yields it and its database's URL."""
    home = tmp_path_factory.mktemp("password-stack")
    stack = Stack(home=home)
    with ExitStack() as cleanup:
        prefect_db = cleanup.enter_context(
            pg_database(pg_admin_url, f"ocrflow_prefect_pw_{uuid.uuid4().hex[:8]}")
        )
        cleanup.callback(stack.stop_all)  # before the database is dropped
        stack.start_server(prefect_db)
        done = subprocess.run(
            [*DEPLOY_CLI, "--inbox", str(home / "inbox"), "--output-dir", str(home / "out"),
             "--cron", "0 0 1 1 *"],
            cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        yield stack, prefect_db


def _dump(url: str) -> str:
    """Every row of every table of the server's database, as text."""
    parts = []
    with psycopg.connect(url.replace("+asyncpg", "").replace("+psycopg", "")) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
            )
        ]
        assert {"flow_run", "log", "deployment"} <= set(tables)
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM public."{table}" AS t').fetchall()
            parts.append(f"-- {table}\n" + "\n".join(r[0] for r in rows))
    return "\n".join(parts)


def test_a_password_is_refused_before_the_server_stores_it(
    server: tuple[Stack, str], tmp_path: Path
) -> None:
    stack, prefect_db = server
    secret_urls = [
        f"postgresql+psycopg://ocr:{PASSWORD}@127.0.0.1:5432/ocr",
        f"postgresql://ocr@127.0.0.1/ocr?sslmode=disable&password={PASSWORD}",
    ]
    with prefect_bound_to(stack.api_url), get_client(sync_client=True) as client:
        for name in DEPLOYMENTS:
            assert client.read_deployment_by_name(name).enforce_parameter_schema, name
        for name in DEPLOYMENTS:
            required = {"inbox": str(tmp_path)} if "inbox" in name else {"inputs": [str(tmp_path)]}
            for url in secret_urls:
                with pytest.raises(PrefectHTTPStatusError) as refused:
                    run_deployment(
                        name, parameters={**required, "database": {"url": url}}, timeout=0
                    )
                assert refused.value.response.status_code == 409, (name, url)
        # The control: the same request without the password is stored (then deleted).
        ok = run_deployment(
            DEPLOYMENTS[0],
            parameters={"inputs": [str(tmp_path)], "database": {"url": "postgresql://ocr@db/ocr"}},
            timeout=0,
        )
        assert isinstance(ok, FlowRun) and ok.parameters["database"]["url"].startswith("postgres")
        client.delete_flow_run(ok.id)
        # Left: only the inbox's cron runs, made by the scheduler from the deployment.
        inbox = client.read_deployment_by_name(DEPLOYMENTS[2]).id
        assert all(r.deployment_id == inbox for r in client.read_flow_runs() if r.id != ok.id)
    # The CLI a user would type (`prefect deployment run ... --params`) is refused the same way.
    params = json.dumps({"inputs": [str(tmp_path)], "database": {"url": secret_urls[0]}})
    cli = subprocess.run(
        [*PREFECT, "deployment", "run", DEPLOYMENTS[0], "--params", params],
        cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    said = cli.stdout + cli.stderr
    assert cli.returncode != 0 and "Error creating flow run" in said, said
    assert "database.url" in said  # (the refusal quotes the URL back to whoever sent it)

    stored = _dump(prefect_db)
    assert "postgresql://ocr@db/ocr" in stored  # the control run's parameters were stored
    assert PASSWORD not in stored, "the password is in the Prefect server's database"
    assert PASSWORD not in stack.log("server.log"), "the password is in the server's log"
