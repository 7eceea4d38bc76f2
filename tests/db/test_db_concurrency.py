"""Two processes writing at once: nothing lost, and never two copies of a page's regions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from tests.db_fixtures import make_regions

REPO = Path(__file__).resolve().parents[2]
PAGES = 40


def run_writers(url: str, jobs: list[tuple[str, int]], sync_dir: Path) -> None:
    """Start one writer per (document name, regions per page), release them together, wait."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.db.concurrent_writer",
                url,
                name,
                str(PAGES),
                str(per_page),
                str(sync_dir),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, per_page in jobs
    ]
    deadline = time.monotonic() + 60
    while len(list(sync_dir.glob("ready-*"))) < len(jobs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    (sync_dir / "go").touch()
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr


def query(engine: Engine, sql: str) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql)))


def test_different_documents_lose_nothing(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    run_writers(url, [("a.pdf", 30), ("b.pdf", 50)], tmp_path)
    got = query(
        engine,
        "SELECT d.source_uri, COUNT(DISTINCT p.id), COUNT(r.region_index) FROM documents d "
        "JOIN pages p ON p.document_id = d.id JOIN regions r ON r.page_id = p.id "
        "GROUP BY d.source_uri ORDER BY d.source_uri",
    )
    assert got == [("/in/a.pdf", PAGES, PAGES * 30), ("/in/b.pdf", PAGES, PAGES * 50)]
    assert {row[0] for row in query(engine, "SELECT status FROM runs")} == {"completed"}


def test_same_document_ends_with_one_copy(engine: Engine, tmp_path: Path) -> None:
    # Same parameters and weights, different region counts, so each copy is recognisable.
    url = engine.url.render_as_string(hide_password=False)
    run_writers(url, [("a.pdf", 30), ("a.pdf", 50)], tmp_path)
    assert query(engine, "SELECT COUNT(*) FROM documents")[0][0] == 1
    assert query(engine, "SELECT COUNT(*) FROM pages")[0][0] == PAGES
    per_result = query(
        engine,
        "SELECT pr.page_id, pr.run_id, COUNT(r.region_index), MIN(r.run_id), MAX(r.run_id) "
        "FROM page_results pr LEFT JOIN regions r ON r.page_result_id = pr.id "
        "GROUP BY pr.id, pr.page_id, pr.run_id",
    )
    assert len(per_result) == PAGES  # exactly one result per page
    counts_by_run: dict[object, set[object]] = {}
    for _page, run, n, lo, hi in per_result:  # each page holds one writer's complete copy
        assert lo == hi == run and n in (30, 50)
        counts_by_run.setdefault(run, set()).add(n)
    assert all(len(counts) == 1 for counts in counts_by_run.values())


def test_writer_that_loses_the_race_replaces_the_winner(engine: Engine) -> None:
    """Deterministic version of the race: B starts while A's transaction is still open."""
    from db import writes
    from tests.db.test_db_writes import new_page, new_run

    page, run_a, run_b = new_page(engine), new_run(engine), new_run(engine)
    with engine.connect() as conn_a, conn_a.begin():
        assert writes._write_page(conn_a, run_a, page, make_regions(30), None, "replace")
        with ThreadPoolExecutor(1) as pool:  # B blocks on A's lock (row or whole-file)
            b = pool.submit(
                writes.write_page_regions,
                engine, run_id=run_b, page_id=page, regions=make_regions(50),
            )  # fmt: skip
            time.sleep(0.5)
            assert not b.done()
            conn_a.commit()  # A wins the unique constraint; B must retry and replace it
            assert b.result(timeout=30) is True
    got = query(engine, "SELECT run_id, COUNT(*) FROM regions GROUP BY run_id")
    assert got == [(run_b, 50)]
    assert query(engine, "SELECT COUNT(*) FROM page_results")[0][0] == 1
