"""Four ``ocrflow run`` workers started at once on the same inbox, against PostgreSQL.

Issue "concurrency": each document is processed once (one run detects and writes it, the others
report it claimed or already done), no deadlock, no lost update: the database equals an
uninterrupted single run's. Evidence, beyond the final snapshot:

- an audit trigger (installed by this test only) logs every committed ``page_results`` insert,
  so a page detected and written twice would show even though the second write replaces the
  first;
- each worker's printed summary (``ocrflow run``'s table) and its "claimed by live run(s)"
  warning;
- PostgreSQL's own deadlock counter for the database.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from db import migrate
from tests.db_fixtures import _empty_pg, _libpq
from tests.faults.support import (
    DOCUMENTS,
    Snapshot,
    assert_consistent,
    kill_group,
    ocrflow_run,
    snapshot,
)

pytestmark = pytest.mark.slow

WORKERS = 4
DEADLINE_S = 420  # all four, together; they normally finish in well under two minutes

AUDIT = """
CREATE TABLE test_page_result_writes (
    page_id integer NOT NULL, run_id integer NOT NULL, at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION test_log_page_result() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_page_result_writes (page_id, run_id) VALUES (NEW.page_id, NEW.run_id);
    RETURN NEW;
END $$;
CREATE TRIGGER test_page_result_writes AFTER INSERT ON page_results
    FOR EACH ROW EXECUTE FUNCTION test_log_page_result();
"""
# A row of `ocrflow run`'s summary table: document and status (box drawn in Unicode or ASCII).
ROW = re.compile(r"^\s*[│|]\s*(doc\d+\.png)\s*[│|]\s*(\w+)\s*[│|]", re.MULTILINE)
TITLE = re.compile(r"\brun (\d+) \(")
CLAIMED = re.compile(r"(\d+) document\(s\) claimed by live run\(s\) ([\d, ]+): left to them")


def _pg(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _deadlocks(url: str) -> int:
    rows = _pg(url, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])


def test_four_workers_on_one_inbox_process_each_document_once(
    corpus: Path,
    reference: Snapshot,
    prefect_api_url: str,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _empty_pg(pg_url)
    migrate.upgrade(pg_url)
    with psycopg.connect(_libpq(pg_url), autocommit=True) as conn:
        conn.execute(AUDIT)
    deadlocks_before = _deadlocks(pg_url)
    monkeypatch.setenv("COLUMNS", "200")  # the summary table on one line per document

    workdirs = [tmp_path / f"worker{i}" for i in range(WORKERS)]
    t0 = time.monotonic()
    procs = []
    for workdir in workdirs:  # started back to back: the same inbox, the same moment
        workdir.mkdir()
        procs.append(ocrflow_run([corpus], pg_url, prefect_api_url, workdir))
    try:
        for proc in procs:
            proc.wait(timeout=max(1.0, DEADLINE_S - (time.monotonic() - t0)))
    except Exception:
        pytest.fail(f"the workers did not all finish within {DEADLINE_S} s (hang or deadlock)")
    finally:
        for proc in procs:
            kill_group(proc)
    wall = time.monotonic() - t0
    logs = [next(w.glob("run-*.log")).read_text(errors="replace") for w in workdirs]
    for proc, log in zip(procs, logs, strict=True):
        assert proc.returncode == 0, f"a worker exited {proc.returncode}:\n{log[-4000:]}"
        assert "deadlock" not in log.lower(), log[-4000:]
    assert _deadlocks(pg_url) == deadlocks_before, "PostgreSQL detected a deadlock"

    # Same database as one uninterrupted run: nothing lost, nothing doubled.
    snap = snapshot(pg_url)
    assert_consistent(snap)
    for table in ("documents", "pages", "page_results", "regions"):
        assert snap[table] == reference[table], f"{table} differ from the uninterrupted run"
    run_ids = [run_id for run_id, _ in snap["runs"]]
    assert [status for _, status in snap["runs"]] == ["completed"] * WORKERS
    assert _pg(pg_url, "SELECT count(*) FROM document_claims") == [(0,)], "claims left behind"

    # Every page was written exactly once (the audit sees replaced writes too), and by the run
    # whose summary says it processed the document.
    writes = _pg(pg_url, "SELECT page_id, run_id FROM test_page_result_writes")
    assert len(writes) == DOCUMENTS and len({page for page, _ in writes}) == DOCUMENTS, writes
    writer_of = dict(
        _pg(
            pg_url,
            "SELECT d.source_uri, w.run_id FROM test_page_result_writes w "
            "JOIN pages p ON p.id = w.page_id JOIN documents d ON d.id = p.document_id",
        )
    )
    done_by: dict[str, list[int]] = {}
    per_run: dict[int, dict[str, int]] = {}
    for log in logs:
        (run_id,) = map(int, TITLE.findall(log))
        rows = dict(ROW.findall(log))
        assert len(rows) == DOCUMENTS, f"run {run_id}'s summary lists {len(rows)} documents"
        counts = {s: list(rows.values()).count(s) for s in ("done", "claimed", "skipped")}
        assert sum(counts.values()) == DOCUMENTS, f"run {run_id}: {rows}"
        per_run[run_id] = counts
        for name, status in rows.items():
            if status == "done":
                done_by.setdefault(name, []).append(run_id)
        reported = CLAIMED.search(log)
        if counts["claimed"]:  # the operator is told which runs held what
            assert reported is not None, log[-4000:]
            assert int(reported.group(1)) == counts["claimed"]
            holders = {int(h) for h in reported.group(2).split(",")}
            assert holders <= set(run_ids) - {run_id}
        else:
            assert reported is None
    assert sorted(per_run) == run_ids
    assert sum(c["done"] for c in per_run.values()) == DOCUMENTS
    assert all(len(runs) == 1 for runs in done_by.values()), done_by
    assert {Path(uri).name: run for uri, run in writer_of.items()} == {
        name: runs[0] for name, runs in done_by.items()
    }

    print(  # the figures docs/reliability.md quotes
        f"\n{WORKERS} workers, {DOCUMENTS} documents, {wall:.0f} s wall; per run "
        + ", ".join(
            f"run {r}: {c['done']} done/{c['claimed']} claimed/{c['skipped']} skipped"
            for r, c in sorted(per_run.items())
        )
        + f"; page writes {len(writes)}, duplicates {len(writes) - len({p for p, _ in writes})}"
    )
