"""The whole production path on this machine: a real Prefect server on PostgreSQL, the project's
own ``deploy`` command, two process workers, an inbox swept manually and by its schedule.

Asserts that every document is processed exactly once (small documents packed into child
runs up to the page budget, a long PDF split into page ranges, one result per page), that the
regions equal a single-process run of the same flow, that the Dask task runner gives the same
regions, and that runs and artifacts are visible through the Prefect API. Everything it
starts it stops, workers first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any, TypeVar

import cv2
import pytest
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
)
from prefect.client.schemas.objects import FlowRun, StateType
from prefect.deployments import run_deployment
from sqlalchemy import text

from db import migrate
from db.session import create_engine
from flows.inbox import _expected_params_hash
from flows.params import DatabaseOptions, DetectorOptions
from tests.craft.pages import text_page
from tests.db_fixtures import pg_database
from tests.deployments.stack import REPO_ROOT, Stack, prefect_bound_to
from tests.flows.documents import write_pdf

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

T = TypeVar("T")
FINAL = {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
# The project's command, mounted the way cli/app.py mounts it.
DEPLOY_CLI = [
    sys.executable,
    "-c",
    "import typer; from cli.deploy import register; app = typer.Typer(); register(app); app()",
    "deploy",
]


SIZE = (200, 330)  # small pages: ~1 s of detection each on a busy 2-core machine
DPI = 150  # the flow's default: PDF pages render at exactly SIZE


def make_batch_a(folder: Path) -> list[Path]:
    """A 2-page letter, a receipt photo, a truncated PNG and a 5-page PDF.

    At 3 pages a child: the truncated PNG and the letter share one, the PDF is two ranges (1-3,
    4-5), the receipt is alone (it does not fit beside the other two).
    """
    folder.mkdir(parents=True, exist_ok=True)
    letter = write_pdf(
        folder / "letter.pdf",
        [text_page(["Dear customer", "Invoice 17"], SIZE), text_page(["Kind regards"], SIZE)],
        dpi=DPI,
    )
    receipt = folder / "receipt.png"
    cv2.imwrite(str(receipt), text_page(["Total 42.00"], SIZE))
    broken = folder / "broken.png"
    broken.write_bytes(receipt.read_bytes()[:200])
    pages = [text_page([f"Chapter {i}", f"page {i} of 5"], SIZE) for i in range(1, 6)]
    return [letter, receipt, broken, write_pdf(folder / "long.pdf", pages, dpi=DPI)]


def make_batch_b(folder: Path) -> list[Path]:
    """Two more documents, dropped while the schedule is on."""
    memo = folder / "memo.png"
    cv2.imwrite(str(memo), text_page(["Memo 7", "At noon"], SIZE))
    note = write_pdf(folder / "note.pdf", [text_page(["Delivery 99"], SIZE)], dpi=DPI)
    return [memo, note]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, stack: Stack) -> T:
    """Poll ``check`` every second until it returns something; fail with the logs if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value is not None:
            return value
        time.sleep(1.0)
    logs = "\n".join(f"--- {n}\n{stack.log(n)[-3000:]}" for n in ("w1.log", "w2.log"))
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")


def runs_of(client: SyncPrefectClient, deployment_id: uuid.UUID) -> list[FlowRun]:
    return client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])),
        limit=200,
    )


def all_final(runs: list[FlowRun], count: int) -> list[FlowRun] | None:
    if len(runs) >= count and all(r.state_type in FINAL for r in runs):
        return runs
    return None


def max_overlap(runs: list[FlowRun]) -> int:
    """Most flow runs running at the same moment."""
    events = []
    for r in runs:
        assert r.start_time is not None and r.end_time is not None
        events += [(r.start_time, 1), (r.end_time, -1)]
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    return peak


def regions(url: str) -> dict[tuple[str, int, int], tuple[float, ...]]:
    """Every region keyed by (document sha256, page, index)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT d.sha256, p.page_number, r.region_index, r.x0, r.y0, r.x1, r.y1, "
                "r.x2, r.y2, r.x3, r.y3, r.score FROM regions r "
                "JOIN page_results pr ON pr.id = r.page_result_id "
                "JOIN pages p ON p.id = pr.page_id JOIN documents d ON d.id = p.document_id"
            )
        ).all()
    engine.dispose()
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def scalar_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(sql)).all()]
    engine.dispose()
    return rows


def same_regions(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for key, values in want.items():
        assert got[key] == pytest.approx(values, abs=1e-3), key


def test_inbox_on_two_workers(pg_admin_url: str, tmp_path: Path) -> None:
    uid = uuid.uuid4().hex[:8]
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    stack = Stack(home=tmp_path / "stack")
    stack.home.mkdir()
    figures: dict[str, float] = {}
    with ExitStack() as cleanup:
        prefect_db = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_prefect_{uid}"))
        results = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_results_{uid}"))
        reference = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_ref_{uid}"))
        dask_db = cleanup.enter_context(pg_database(pg_admin_url, f"ocrflow_dask_{uid}"))
        cleanup.callback(stack.stop_all)  # runs before the databases are dropped
        for url in (results, reference, dask_db):
            migrate.upgrade(url)
        batch_a = make_batch_a(inbox)

        t = time.monotonic()
        api = stack.start_server(prefect_db)
        figures["server start s"] = time.monotonic() - t

        # The project's own set-up command. The first deploy schedules the sweep yearly so the
        # manual phase cannot race it; the second (after it) must only change the schedule.
        def deploy(cron: str, label: str) -> str:
            t = time.monotonic()
            done = subprocess.run(
                [*DEPLOY_CLI, "--inbox", str(inbox), "--output-dir", str(out), "--cron", cron],
                cwd=REPO_ROOT,
                env=stack.env,
                capture_output=True,
                text=True,
                check=False,
            )
            figures[f"{label} s"] = time.monotonic() - t
            assert done.returncode == 0, done.stdout + done.stderr
            return done.stdout

        assert "work pool ocr-cpu: created" in deploy("0 0 1 1 *", "deploy")

        # Flows run in this process too (3. and 4.): all Prefect use here is bound to this
        # server, and left unbound from it before it stops (later tests run flows elsewhere).
        with prefect_bound_to(api), get_client(sync_client=True) as client:
            assert client.read_work_pool("ocr-cpu").type == "process"
            assert client.read_concurrency_limit_by_tag("gpu").concurrency_limit == 1
            sweep = client.read_deployment_by_name("ocr-inbox/ocr-inbox")
            child = client.read_deployment_by_name("ocr-documents/ocr-manual")
            assert sweep.schedules and sweep.schedules[0].active
            assert child.pull_steps == [
                {"prefect.deployments.steps.set_working_directory": {"directory": str(REPO_ROOT)}}
            ]
            assert "password" not in str(sweep.parameters) + str(child.parameters)

            worker_env = {"OCRFLOW_DATABASE_URL": results}
            stack.start_worker("ocr-cpu", "w1", worker_env)
            stack.start_worker("ocr-cpu", "w2", worker_env)

            # 1. A manual sweep (as from the UI) fans batch A out at 3 pages a child: the
            # broken PNG and the letter in one, the long PDF in two ranges, the receipt alone.
            t = time.monotonic()
            trigger = run_deployment(
                "ocr-inbox/ocr-inbox", parameters={"pages_per_child": 3}, timeout=0
            )
            assert isinstance(trigger, FlowRun)
            children_a = wait_for(
                lambda: all_final(runs_of(client, child.id), 4), 300, "batch A", stack
            )
            figures["batch A (4 child runs, 2 workers) s"] = time.monotonic() - t
            assert [r.state_type for r in children_a] == [StateType.COMPLETED] * 4
            inputs_a = sorted(
                (r.name, sorted(Path(p).name for p in r.parameters["inputs"])) for r in children_a
            )
            assert inputs_a == [
                ("2 documents", ["broken.png", "letter.pdf"]),
                ("long.pdf p1-3", ["long.pdf"]),
                ("long.pdf p4-5", ["long.pdf"]),
                ("receipt.png", ["receipt.png"]),
            ]
            packed = next(r for r in children_a if r.name == "2 documents")
            assert len([t for t in packed.tags if t.startswith("ocr-doc-")]) == 2
            assert client.read_flow_run(trigger.id).state_type == StateType.COMPLETED
            assert all(c.parent_task_run_id is not None for c in children_a)  # linked in the UI
            # Recorded, not asserted: whether two children overlap depends on when each worker
            # polls and on machine load; what must hold is asserted above and below.
            figures["max child runs at once"] = max_overlap(children_a)

            # 2. Every minute now: a scheduled sweep picks up only batch B, in one child (the
            # deployment's page budget holds both).
            assert "work pool ocr-cpu: exists" in deploy("* * * * *", "redeploy")
            assert client.read_deployment(sweep.id).schedules[0].schedule.cron == "* * * * *"  # type: ignore[union-attr]
            batch_b = make_batch_b(inbox)
            copied = time.time() - 60  # copied in a minute ago: settled, a sweep takes them
            for path in batch_b:
                os.utime(path, (copied, copied))
            t = time.monotonic()
            children = wait_for(
                lambda: all_final(runs_of(client, child.id), 5), 200, "batch B", stack
            )
            figures["drop to batch B done s"] = time.monotonic() - t
            client.pause_deployment(sweep.id)
            assert [r.state_type for r in children] == [StateType.COMPLETED] * 5
            first_ids = {r.id for r in children_a}
            parents: set[uuid.UUID | None] = set()
            for r in children:
                if r.id not in first_ids:
                    assert r.parent_task_run_id is not None
                    parents.add(client.read_task_run(r.parent_task_run_id).flow_run_id)
            [parent] = parents
            assert parent is not None
            fired = client.read_flow_run(parent)
            assert fired.auto_scheduled and fired.deployment_id == sweep.id
            assert fired.state_type == StateType.COMPLETED
            assert fired.start_time is not None and fired.expected_start_time is not None
            figures["schedule fire latency s"] = (
                fired.start_time - fired.expected_start_time
            ).total_seconds()

            # Exactly once: one child per document (two for the split PDF), nothing more.
            [child_b] = [r for r in children if r.id not in first_ids]
            assert child_b.name == "2 documents"
            per_doc = Counter(t for r in children for t in r.tags if t.startswith("ocr-doc-"))
            assert sorted(per_doc.values()) == [1, 1, 1, 1, 1, 2]
            sweeps = runs_of(client, sweep.id)
            assert sum(1 for r in sweeps if r.state_type == StateType.COMPLETED) >= 2

            # Artifacts of every run are readable through the API.
            artifacts = client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(
                        any_=[r.id for r in children] + [trigger.id, fired.id]
                    )
                ),
                limit=200,
            )
            keys: dict[uuid.UUID, set[str]] = {}
            for a in artifacts:
                assert a.flow_run_id is not None
                keys.setdefault(a.flow_run_id, set()).add(str(a.key))
            assert all("ocr-documents" in keys.get(r.id, set()) for r in children)
            assert "ocr-inbox" in keys[trigger.id] and "ocr-inbox" in keys[fired.id]

            # 3. The same inbox in one process (this one): the reference results.
            from flows.ocr_documents import ocr_documents

            t = time.monotonic()
            summary = ocr_documents(
                inputs=[str(inbox)],
                database=DatabaseOptions(url=reference),
                output_dir=str(tmp_path / "ref-out"),
            )
            figures["single-process run s"] = time.monotonic() - t
            assert summary.exit_code == 1  # broken.png, as on the workers

            # 4. The Dask task runner (local cluster) on the long PDF.
            from deployments.deploy import dask_flow

            t = time.monotonic()
            dask_summary = dask_flow()(
                inputs=[str(inbox / "long.pdf")],
                database=DatabaseOptions(url=dask_db),
                output_dir=str(tmp_path / "dask-out"),
            )
            figures["dask run (5 pages) s"] = time.monotonic() - t
            assert dask_summary.exit_code == 0

        # The workers' results equal the single-process run's, page for page.
        got, want = regions(results), regions(reference)
        assert len(want) > 10
        same_regions(got, want)
        long_sha = {k[0] for k in want if k[1] == 5}
        same_regions(regions(dask_db), {k: v for k, v in want.items() if k[0] in long_sha})
        per_page = scalar_rows(
            results,
            "SELECT p.id, count(pr.id), min(pr.params_hash) FROM pages p "
            "LEFT JOIN page_results pr ON pr.page_id = p.id GROUP BY p.id",
        )
        pages_done = 2 + 1 + 5 + 1 + 1  # letter, receipt, long, memo, note
        assert len([p for p in per_page if p[1] == 1]) == pages_done
        assert all(p[1] == 1 for p in per_page if p[1])  # never twice
        hashes = {p[2] for p in per_page if p[1]}
        assert hashes == {_expected_params_hash(DetectorOptions().resolve())}
        assert scalar_rows(results, "SELECT count(*) FROM runs") == [(5,)]  # one per child
        statuses = dict(scalar_rows(results, "SELECT source_uri, status FROM documents"))
        assert statuses[str(inbox / "broken.png")] == "failed"
        assert len(statuses) == len(batch_a) + len(batch_b)

    # Everything stopped: no process of ours is left.
    assert stack.server is not None and stack.server.poll() is not None
    assert all(w.poll() is not None for w in stack.workers)
    print("\nfigures:", {k: round(v, 1) for k, v in figures.items()})
