"""No database password in logs, artifacts, flow-run data, the results database or CLI output.

Real runs against PostgreSQL with a URL that carries a password (trust authentication accepts
and ignores it), passed each supported way: ``ocrflow run --database-url``, the worker's
``OCRFLOW_DATABASE_URL``, a Prefect Secret block named in the parameters, plus a URL whose
server does not answer (the error path) and ``ocrflow db current``. Every log line at DEBUG
goes to the Prefect server; the test then reads back through the Prefect API each flow run
(parameters, state, name), its task runs, every log and every artifact, dumps every row of
every table of the results database as text, and searches it all, with the processes'
stdout and stderr, for the password.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import pytest
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from sqlalchemy import text
from sqlalchemy.engine import make_url

from db import migrate
from db.session import create_engine
from tests.craft.pages import text_page
from tests.db_fixtures import _empty_pg
from tests.deployments.stack import prefect_bound_to
from tests.faults.support import DETECTOR_FLAGS, OCRFLOW, REPO_ROOT, prefect_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PASSWORD = "S3cretPw-xyz"


def _inbox(folder: Path) -> Path:
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "memo.png"), text_page(["Memo 7", "Invoice paid"], size=(200, 480)))
    (folder / "notes.pdf").write_text("plain text, not a PDF\n")  # a failed document
    return folder


def _env(api_url: str, **extra: str) -> dict[str, str]:
    env = prefect_env(api_url)
    env["PREFECT_LOGGING_LEVEL"] = "DEBUG"  # every record the flow makes reaches the API
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


_SECRET_FLOW = """
import sys
from flows.ocr_documents import ocr_documents
from flows.params import DatabaseOptions, DetectorOptions, OverlayOptions, RecognitionOptions
summary = ocr_documents(
    inputs=[sys.argv[1]], detector=DetectorOptions(width=320, mag_ratio=1),
    database=DatabaseOptions(url_secret_block=sys.argv[2]),
    overlay=OverlayOptions(enabled=False), recognition=RecognitionOptions(enabled=True),
    output_dir=sys.argv[3], skip_processed=False,
)
print(summary.model_dump_json())
"""


def _dump_database(url: str) -> str:
    """Every row of every table (and the table and column names) as text."""
    engine = create_engine(url)
    parts: list[str] = []
    try:
        with engine.connect() as conn:
            tables = (
                conn.execute(
                    text(
                        "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                        "'public' AND table_type = 'BASE TABLE' ORDER BY 1"
                    )
                )
                .scalars()
                .all()
            )
            assert {"runs", "documents", "pages", "regions"} <= set(tables)
            for table in tables:
                rows = conn.execute(text(f'SELECT t::text FROM public."{table}" AS t')).scalars()
                parts.append(f"-- {table}\n" + "\n".join(rows))
    finally:
        engine.dispose()
    return "\n".join(parts)


def test_no_password_anywhere(pg_url: str, prefect_api_url: str, tmp_path: Path) -> None:
    _empty_pg(pg_url)
    migrate.upgrade(pg_url)
    secret_url = (
        make_url(pg_url)
        .set(drivername="postgresql+psycopg", password=PASSWORD)
        .render_as_string(hide_password=False)
    )
    assert PASSWORD in secret_url
    dead_url = make_url(secret_url).set(port=1).render_as_string(hide_password=False)
    inbox = _inbox(tmp_path / "inbox")
    out = str(tmp_path / "out")
    started = time.monotonic()
    outputs: dict[str, str] = {}

    def record(name: str, done: subprocess.CompletedProcess[str]) -> int:
        outputs[name] = done.stdout + done.stderr
        return done.returncode

    run = [str(OCRFLOW), "run", str(inbox), "--output-dir", out, "--recognize", *DETECTOR_FLAGS]
    # 1. The CLI option (it moves the URL into the environment, never into a parameter).
    code = record("cli --database-url", _run([*run, "--database-url", secret_url],
                                             _env(prefect_api_url), tmp_path))  # fmt: skip
    assert code == 1, outputs["cli --database-url"]  # notes.pdf failed, memo.png done
    # 2. The worker's environment, with every page written again.
    env = _env(prefect_api_url, OCRFLOW_DATABASE_URL=secret_url)
    assert record("env OCRFLOW_DATABASE_URL", _run([*run, "--no-skip"], env, tmp_path)) == 1
    # 3. A Secret block named in the parameters (what production deployments use).
    block = f"ocrflow-db-{uuid.uuid4().hex[:8]}"
    # prefect_bound_to, not bare temporary_settings: saving a block starts this process's
    # events worker, which must not stay bound to this server for the flow tests' harness.
    with prefect_bound_to(prefect_api_url):
        Secret(value=secret_url).save(block, overwrite=True)
    code = record(
        "secret block",
        _run([sys.executable, "-c", _SECRET_FLOW, str(inbox), block, out],
             _env(prefect_api_url), REPO_ROOT),
    )  # fmt: skip
    assert code == 0, outputs["secret block"]
    # 4. A server that does not answer: the error path must mask the URL too.
    code = record("cli, dead server", _run([*run, "--database-url", dead_url],
                                           _env(prefect_api_url), tmp_path))  # fmt: skip
    assert code != 0
    assert "127.0.0.1:1" in outputs["cli, dead server"]  # it did say where it failed
    # 5. The database commands.
    db_cmd = [str(OCRFLOW), "db", "current", "--database-url", secret_url]
    assert record("ocrflow db current", _run(db_cmd, _env(prefect_api_url), tmp_path)) == 0
    figures = {"runs s": round(time.monotonic() - started, 1)}

    # Everything the Prefect server holds about these runs, read through its API.
    database = _dump_database(pg_url)
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        flow_run_ids = [
            uuid.UUID(str(r))
            for r in conn.execute(text("SELECT flow_run_id FROM runs")).scalars()
            if r is not None
        ]
    engine.dispose()
    assert len(flow_run_ids) == 3, flow_run_ids  # the dead-server run never opened a run row
    seen: dict[str, str] = {}
    with prefect_bound_to(prefect_api_url), get_client(sync_client=True) as c:
        runs = c.read_flow_runs(limit=200)  # this session's server: every flow run, dead one too
        assert set(flow_run_ids) <= {r.id for r in runs}
        ids = [r.id for r in runs]
        seen["flow runs"] = "\n".join(r.model_dump_json() for r in runs)
        tasks = c.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids)))
        assert tasks
        seen["task runs"] = "\n".join(t.model_dump_json() for t in tasks)
        logs = []
        offset = 0
        while batch := c.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=ids)), limit=200,
            offset=offset,
        ):  # fmt: skip
            logs += batch
            offset += len(batch)
        assert any("database postgresql+psycopg://" in log.message for log in logs)  # masked
        seen["logs"] = "\n".join(log.model_dump_json() for log in logs)
        artifacts = c.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=ids)),
            limit=200,
        )
        assert {"ocr-documents", "ocr-progress"} <= {a.key for a in artifacts}
        seen["artifacts"] = "\n".join(a.model_dump_json() for a in artifacts)
        # The Secret block holds the URL (a control: the search would find it), yet the API
        # shows block documents without it unless secrets are asked for explicitly.
        stored: Any = Secret.load(block)  # sync here: a Secret, not a coroutine
        assert stored.get() == secret_url
        seen["block documents"] = "\n".join(
            b.model_dump_json() for b in c.read_block_documents(include_secrets=False)
        )
        for d in c.read_deployments():
            seen.setdefault("deployments", "")
            seen["deployments"] += d.model_dump_json()
    seen["results database"] = database
    seen.update({f"output of {name}": text_ for name, text_ in outputs.items()})

    leaks = {where: blob.count(PASSWORD) for where, blob in seen.items() if PASSWORD in blob}
    assert not leaks, f"the password appears in: {json.dumps(leaks)}"
    sizes = {where: len(blob) for where, blob in seen.items()}
    print("\nsearched (characters):", sizes, "logs:", len(logs), figures)
