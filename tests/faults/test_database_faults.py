"""Issue 8, "database faults": PostgreSQL restarted mid-run; a read-only or full SQLite file.

The restart test restarts the machine's PostgreSQL cluster (once, for a few seconds: other
suites on the machine see their connections drop too, and their own retries cover it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from db import migrate
from tests.db_fixtures import _empty_pg
from tests.faults.support import (
    DOCUMENTS,
    Snapshot,
    assert_consistent,
    kill_group,
    ocrflow_run,
    scalar,
    snapshot,
    wait_for,
)

pytestmark = pytest.mark.slow


def _cluster() -> list[str]:
    versions = sorted(os.listdir("/etc/postgresql"))
    return [versions[-1], "main"]


def _pg_up(url: str) -> bool:
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(libpq, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _pages_stored(url: str) -> int:
    try:
        return int(scalar(url, "SELECT count(*) FROM page_results"))
    except Exception:  # the server is restarting: poll again
        return -1


def test_postgres_restart_mid_run_loses_and_doubles_nothing(
    pg_url: str, corpus: Path, reference: Snapshot, prefect_api_url: str, tmp_path: Path
) -> None:
    _empty_pg(pg_url)
    migrate.upgrade(pg_url)
    proc = ocrflow_run([corpus], pg_url, prefect_api_url, tmp_path)
    try:
        wait_for(lambda: proc.poll() is not None or _pages_stored(pg_url) >= 5, 240, "5 pages")
        assert proc.poll() is None, "the run ended before the restart"
        t0 = time.monotonic()
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", *_cluster(), "restart"],
            check=True,
            timeout=120,
            capture_output=True,
        )
        wait_for(lambda: _pg_up(pg_url), 60, "PostgreSQL back after the restart")
        downtime = time.monotonic() - t0
        assert _pages_stored(pg_url) < DOCUMENTS, "the restart came after the last write"
        code = proc.wait(timeout=300)
    finally:
        kill_group(proc)
        if not _pg_up(pg_url):  # never leave the machine without its database
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *_cluster(), "start"],
                           check=False, timeout=120)  # fmt: skip
    print(f"\nPostgreSQL restart: down {downtime:.1f} s; run exit code {code}")
    log = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("run-*.log"))
    assert code == 0, log[-4000:]
    snap = snapshot(pg_url)
    assert_consistent(snap)
    for table in ("documents", "pages", "page_results", "regions"):
        assert snap[table] == reference[table], f"{table} differ from the uninterrupted run"
    assert [s for _, s in snap["runs"]] == ["completed"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def _immutable(*paths: Path) -> Iterator[None]:
    """``chattr +i``: refused even to root (file modes are not, so chmod 0444 proves nothing)."""
    subprocess.run(["chattr", "+i", *map(str, paths)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def _integrity(db: Path) -> str:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def test_read_only_sqlite_file_gives_a_clear_error_and_stays_intact(
    corpus: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    folder = tmp_path / "db"
    folder.mkdir()
    db = folder / "ocrflow.db"
    url = f"sqlite:///{db}"
    first = sorted(corpus.iterdir())[:1]
    proc = ocrflow_run(first, url, prefect_api_url, tmp_path)
    try:
        assert proc.wait(timeout=300) == 0
    finally:
        kill_group(proc)
    before = _sha256(db)
    with _immutable(folder, db):
        proc = ocrflow_run(sorted(corpus.iterdir())[1:3], url, prefect_api_url, tmp_path)
        try:
            code = proc.wait(timeout=300)
        finally:
            kill_group(proc)
    log = sorted(tmp_path.glob("run-*.log"))[-1].read_text(errors="replace")
    assert code != 0
    # Said in one line, naming the file and the fix (DatabaseUnavailableError).
    assert f"cannot open SQLite database '{db}'" in log and "writable" in log, log[-3000:]
    assert _sha256(db) == before, "the refused run changed the file"
    assert _integrity(db) == "ok"


def test_full_disk_gives_a_clear_error_not_a_corrupt_database(
    corpus: Path, prefect_api_url: str, tmp_path: Path
) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], check=True)
    try:
        db = mount / "ocrflow.db"
        # Fill the disk but for ~250 kB: room for the schema, not for a run's worth of rows.
        (mount / "filler").write_bytes(b"\0" * (600 - 250) * 1024)
        proc = ocrflow_run([corpus], f"sqlite:///{db}", prefect_api_url, tmp_path)
        try:
            code = proc.wait(timeout=300)
        finally:
            kill_group(proc)
        log = sorted(tmp_path.glob("run-*.log"))[-1].read_text(errors="replace")
        print(f"\nfull disk: exit code {code}; {log.strip().splitlines()[-1][:200]}")
        saved = tmp_path / "saved"
        saved.mkdir()
        for part in mount.glob("ocrflow.db*"):  # the file with its WAL, as a reader finds it
            shutil.copy(part, saved / part.name)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
    assert code != 0
    assert "full" in log, log[-3000:]
    assert _integrity(saved / "ocrflow.db") == "ok"
