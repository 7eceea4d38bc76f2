"""Kill ``ocrflow run`` with SIGKILL mid-run, rerun the same command, get the same database.

Issue 8, "kill and resume": the resumed database must equal an uninterrupted run's (same
documents, pages, regions with their polygons and scores), with no duplicates, no page holding a
partial set of regions, and every killed run (left ``running``) found by the stale-run sweep.
"""

from __future__ import annotations

import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db import migrate, writes
from db.session import create_engine
from tests.db_fixtures import _empty_pg
from tests.faults.support import (
    DOCUMENTS,
    Snapshot,
    assert_consistent,
    kill_group,
    ocrflow_run,
    run_to_end,
    scalar,
    snapshot,
    wait_for,
)

pytestmark = pytest.mark.slow

# Pages stored before each SIGKILL: 0 = as soon as the run row exists (model loading,
# discovery), then three seeded points spread over the run, landing wherever the pipeline is
# (rasterizing the next slice, detecting, or writing the previous one).
KILL_AFTER_PAGES = [0, *sorted(random.Random(8).sample(range(2, DOCUMENTS - 1), 3))]


def _pages_stored(url: str) -> int:
    try:
        return int(scalar(url, "SELECT count(*) FROM page_results"))
    except Exception:  # tables not created yet, or SQLite busy: poll again
        return -1


def _runs(url: str) -> int:
    try:
        return int(scalar(url, "SELECT count(*) FROM runs"))
    except Exception:
        return 0


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_sigkill_then_rerun_equals_uninterrupted_run(
    backend: str,
    corpus: Path,
    reference: Snapshot,
    prefect_api_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    if backend == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        _empty_pg(url)
        migrate.upgrade(url)
    else:
        url = f"sqlite:///{tmp_path / 'ocrflow.db'}"

    kills = 0
    for after in KILL_AFTER_PAGES:
        runs_before = _runs(url)
        proc = ocrflow_run([corpus], url, prefect_api_url, tmp_path)
        try:

            def reached(
                proc: subprocess.Popen[bytes] = proc, after: int = after, before: int = runs_before
            ) -> bool:
                if proc.poll() is not None:
                    return True
                return _runs(url) > before and _pages_stored(url) >= after

            wait_for(reached, 240, f"{after} pages stored before the kill")
            assert proc.poll() is None, f"the run ended before the kill at {after} pages"
        finally:
            kill_group(proc)
        assert proc.returncode == -9
        kills += 1
        # Whatever was stored is whole: no duplicates, regions numbered without gaps.
        assert_consistent(snapshot(url))

    partial = snapshot(url)
    assert len(partial["page_results"]) < DOCUMENTS, "the kills left nothing to resume"
    assert [s for _, s in partial["runs"]] == ["running"] * kills

    reruns = 0
    while True:  # the same command again until it finishes (once, unless something is wrong)
        reruns += 1
        code = run_to_end([corpus], url, prefect_api_url, tmp_path)
        if code in (0, 1) or reruns == 3:
            break
    assert code == 0, f"the resumed run exited {code}"

    resumed = snapshot(url)
    assert_consistent(resumed)
    for table in ("documents", "pages", "page_results", "regions"):
        assert resumed[table] == reference[table], f"{table} differ from the uninterrupted run"

    # The killed runs are still "running"; the stale-run sweep finds exactly them.
    assert [s for _, s in resumed["runs"]] == ["running"] * kills + ["completed"]
    engine = create_engine(url)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        assert writes.mark_stale_runs(engine, timedelta(minutes=30), now=later) == kills
    finally:
        engine.dispose()
    swept = snapshot(url)["runs"]
    assert [s for _, s in swept] == ["abandoned"] * kills + ["completed"]
