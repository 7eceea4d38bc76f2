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
from sqlalchemy import text

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


# --- Kills during recognition (``--recognize``): regions stored, texts being written ---

_TEXTS = (
    "SELECT d.sha256, p.page_number, r.region_index, r.text, r.text_confidence "
    "FROM regions r JOIN page_results pr ON pr.id = r.page_result_id "
    "JOIN pages p ON p.id = pr.page_id JOIN documents d ON d.id = p.document_id "
    "ORDER BY 1, 2, 3"
)
# Page results by whether their regions have text yet: (read, not read). A page result with
# regions but no text is what a kill between the region write and the text write leaves.
_READ_STATE = (
    "SELECT coalesce(sum(CASE WHEN t > 0 THEN 1 ELSE 0 END), 0), "
    "coalesce(sum(CASE WHEN t = 0 THEN 1 ELSE 0 END), 0) FROM ("
    "SELECT pr.id, count(r.text) AS t FROM page_results pr "
    "JOIN regions r ON r.page_result_id = pr.id GROUP BY pr.id) AS per_page"
)


def _texts(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(_TEXTS)).all()
    finally:
        engine.dispose()
    return [(*r[:4], None if r[4] is None else round(float(r[4]), 3)) for r in rows]


def _read_state(url: str) -> tuple[int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            read, unread = conn.execute(text(_READ_STATE)).one()
    finally:
        engine.dispose()
    return int(read), int(unread)


def _polled_read_state(url: str) -> tuple[int, int]:
    try:
        return _read_state(url)
    except Exception:  # tables not created yet: poll again
        return (0, 0)


def _slow_text_writes(url: str, seconds: float) -> None:
    """Make each statement that writes region texts wait ``seconds`` first (0 removes it)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_slow_text ON regions"))
            if seconds:
                conn.execute(
                    text(
                        "CREATE OR REPLACE FUNCTION test_slow_text() RETURNS trigger "
                        f"LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep({seconds}); "
                        "RETURN NULL; END $$"
                    )
                )
                conn.execute(
                    text(
                        "CREATE TRIGGER test_slow_text BEFORE UPDATE OF text ON regions "
                        "FOR EACH STATEMENT EXECUTE FUNCTION test_slow_text()"
                    )
                )
    finally:
        engine.dispose()


def test_sigkill_during_recognition_then_rerun_equals_uninterrupted_recognized_run(
    corpus: Path, prefect_api_url: str, pg_url: str, tmp_path: Path
) -> None:
    # The yardstick: one uninterrupted recognized run (SQLite).
    ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
    assert run_to_end([corpus], ref_url, prefect_api_url, tmp_path, "--recognize") == 0
    want, want_texts = snapshot(ref_url), _texts(ref_url)
    assert sum(1 for t in want_texts if t[3]) >= DOCUMENTS  # at least a line read per page
    assert _read_state(ref_url) == (len(want["page_results"]), 0)

    url = pg_url
    _empty_pg(url)
    migrate.upgrade(url)
    # A page's texts are one UPDATE right after its regions: too short a window to hit by
    # polling under load. A test-only trigger holds every text write open for 1.5 s, so the
    # kill lands inside it (PostgreSQL then rolls the write back) instead of just after it.
    _slow_text_writes(url, seconds=1.5)
    # Kill as soon as texts are being written (some pages read, some stored but unread),
    # then again further on.
    cut_offs = []
    for min_read in (1, DOCUMENTS // 2):
        runs_before = _runs(url)
        proc = ocrflow_run([corpus], url, prefect_api_url, tmp_path, "--recognize")
        try:

            def reading(
                proc: subprocess.Popen[bytes] = proc,
                least: int = min_read,
                before: int = runs_before,
            ) -> bool:
                if proc.poll() is not None:
                    return True
                read, unread = _polled_read_state(url)
                return _runs(url) > before and read >= least and unread > 0

            wait_for(reading, 240, f"{min_read} pages read and one stored unread", step=0.05)
            assert proc.poll() is None, "the run ended before the kill"
        finally:
            kill_group(proc)
        assert proc.returncode == -9
        assert_consistent(snapshot(url))
        cut_offs.append(_read_state(url))
    # At least one kill landed between a page's regions and its texts.
    assert any(unread > 0 for _, unread in cut_offs), cut_offs
    assert sum(_read_state(url)) < DOCUMENTS, "the kills left nothing to resume"

    _slow_text_writes(url, seconds=0)
    code = run_to_end([corpus], url, prefect_api_url, tmp_path, "--recognize")
    assert code == 0, f"the resumed run exited {code}"
    resumed = snapshot(url)
    assert_consistent(resumed)
    for table in ("documents", "pages", "page_results", "regions"):
        assert resumed[table] == want[table], f"{table} differ from the uninterrupted run"
    assert _texts(url) == want_texts, "texts differ from the uninterrupted recognized run"
    assert _read_state(url) == (len(want["page_results"]), 0), "pages left without text"
    assert [s for _, s in resumed["runs"]] == ["running", "running", "completed"]
    print(f"\n(read, stored unread) pages at each kill: {cut_offs}")
