"""The scheduled path against the detector alone: the ``ocr-inbox`` deployment on small scans.

An inbox of ``--scans`` one-page scans (``make_scans`` of bench/scans.py: ~600 px, grey, noisy) goes
through the production path as an operator runs it: a real ``prefect server start`` (on a
throwaway PostgreSQL database), the project's own ``ocrflow deploy``, one process worker
(``--limit 1``, Prefect's poll at 2 s: ``PREFECT_WORKER_QUERY_SECONDS=2``, a user setting) and
a results database in PostgreSQL. Timed: from triggering one sweep until every scan is
``done`` in SQL. Against: ``ocrflow detect`` on the same files (whole process, with JSON
records and overlays written, as the children write rows and overlays). Prints both times
and their ratio (target: inbox <= 2x detect).

``--budgets 1,50`` runs the inbox once per page budget (a fresh results database each time):
with 1 every scan is its own child run, so the difference between budgets gives the start-up
a child costs (worker pickup, process, imports, model load) against the cost of a page.
Child runs' start/end come from the Prefect API and are printed too.

    python bench/bench_inbox.py                      # 50 scans, the default page budget
    python bench/bench_inbox.py --scans 8 --budgets 1,8 --no-detect

Needs the local PostgreSQL (``OCRFLOW_TEST_PG_URL``, else postgres@127.0.0.1:5432). Takes
minutes; on a loaded machine say so beside the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scans import make_scans  # noqa: E402  (bench/, the script's folder)

from flows.inbox import PAGES_PER_CHILD  # noqa: E402
from tests.db_fixtures import DEFAULT_PG_ADMIN_URL, pg_database  # noqa: E402
from tests.deployments.stack import Stack, prefect_bound_to, stop  # noqa: E402

OCRFLOW = str(Path(sys.executable).with_name("ocrflow"))
POOL = "ocr-cpu"  # the pool `ocrflow deploy` creates


def time_detect(scans: list[Path], work: Path) -> float:
    """Seconds of ``ocrflow detect`` on ``scans``, the whole process."""
    t0 = time.monotonic()
    done = subprocess.run(
        [
            OCRFLOW,
            "detect",
            *map(str, scans),
            "-q",
            "--json",
            str(work / "detect.jsonl"),
            "-o",
            str(work / "detect-overlays"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"ocrflow detect exited {done.returncode}: {done.stderr[-2000:]}")
    return seconds


def count_done(url: str) -> int:
    from sqlalchemy import text

    from db.session import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT count(*) FROM documents WHERE status = 'done'")).scalar()
                or 0
            )
    finally:
        engine.dispose()


def time_inbox(
    stack: Stack, inbox: Path, results: str, n: int, budget: int, timeout: float
) -> tuple[float, list[tuple[str, float, float, float]]]:
    """Seconds from the trigger until ``n`` documents are done; and each child run's
    (name, pickup wait, run time, pages) from the Prefect API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from db import migrate

    migrate.upgrade(results)
    stack.start_worker(POOL, f"w-{budget}", {"OCRFLOW_DATABASE_URL": results})
    time.sleep(5)  # the worker's first poll: it is up before the clock starts, as in production
    with prefect_bound_to(stack.api_url), get_client(sync_client=True) as client:
        child = client.read_deployment_by_name("ocr-documents/ocr-manual")
        known = {
            r.id
            for r in client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[child.id])),
                limit=200,
            )
        }
        t0 = time.monotonic()
        trigger = run_deployment(
            "ocr-inbox/ocr-inbox", parameters={"pages_per_child": budget}, timeout=0
        )
        assert isinstance(trigger, FlowRun)
        while count_done(results) < n:
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(
                    f"{count_done(results)} of {n} done after {timeout} s; worker log tail:\n"
                    + stack.log(f"w-{budget}.log")[-3000:]
                )
            time.sleep(0.5)
        seconds = time.monotonic() - t0
        runs: list[FlowRun] = [
            r
            for r in client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[child.id])),
                limit=200,
            )
            if r.id not in known
        ]
        children = []
        for r in sorted(runs, key=lambda r: str(r.created)):
            start, end, due = r.start_time, r.end_time, r.expected_start_time
            wait = (start - due).total_seconds() if start and due else float("nan")
            ran = (end - start).total_seconds() if start and end else float("nan")
            children.append((r.name, wait, ran, float(len(r.parameters.get("inputs", [])))))
    for worker in stack.workers:
        stop(worker)  # the next budget gets its own worker on its own results database
    return seconds, children


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds: workers, server, databases


def main() -> None:
    signal.signal(signal.SIGTERM, _exit_on_term)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scans", type=int, default=50)
    parser.add_argument("--budgets", default=str(PAGES_PER_CHILD), help="page budgets, e.g. 1,50")
    parser.add_argument("--no-detect", action="store_true", help="skip ocrflow detect")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    admin = os.environ.get("OCRFLOW_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)
    uid = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    inbox = work / "inbox"
    scans = make_scans(inbox, args.scans)
    settled = time.time() - 120  # copied in two minutes ago: the sweep takes them
    for path in scans:
        os.utime(path, (settled, settled))
    print(f"{len(scans)} scans in {inbox}; load average {os.getloadavg()[0]:.1f}")

    detect = float("nan")
    if not args.no_detect:
        detect = time_detect(scans, work)
        print(f"ocrflow detect: {detect:.1f} s ({detect / len(scans):.2f} s per scan)")

    stack = Stack(home=work / "stack")
    stack.home.mkdir()
    with ExitStack() as cleanup:
        prefect_db = cleanup.enter_context(pg_database(admin, f"ocrflow_bench_prefect_{uid}"))
        cleanup.callback(stack.stop_all)
        t = time.monotonic()
        stack.start_server(prefect_db)
        deployed = subprocess.run(
            [
                OCRFLOW,
                "deploy",
                "--inbox",
                str(inbox),
                "--output-dir",
                str(work / "out"),
                "--cron",
                "0 0 1 1 *",
            ],
            cwd=REPO,
            env=stack.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if deployed.returncode != 0:
            raise RuntimeError(deployed.stdout + deployed.stderr)
        print(f"server + deploy: {time.monotonic() - t:.1f} s (not counted)")
        for budget in budgets:
            results = cleanup.enter_context(
                pg_database(admin, f"ocrflow_bench_results_{uid}_{budget}")
            )
            seconds, children = time_inbox(stack, inbox, results, len(scans), budget, args.timeout)
            print(
                f"\ninbox, pages_per_child={budget}: {seconds:.1f} s "
                f"({seconds / len(scans):.2f} s per scan), {len(children)} child runs"
            )
            for name, wait, run, inputs in children:
                print(f"  {name:>16s}: picked up after {wait:5.1f} s, ran {run:6.1f} s, "
                      f"{inputs:.0f} inputs")  # fmt: skip
            if detect == detect:  # not NaN
                print(f"inbox / detect = {seconds / detect:.2f} (target <= 2)")
        print(f"load average now {os.getloadavg()[0]:.1f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
