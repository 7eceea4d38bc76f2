"""Helpers for the fault tests: a Prefect server, ``ocrflow run`` as a process group, snapshots."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import cv2
from sqlalchemy import text

from db.session import create_engine
from tests.craft.pages import text_page

REPO_ROOT = Path(__file__).resolve().parents[2]
OCRFLOW = Path(sys.executable).with_name("ocrflow")
# Small canvas: the pages are 200 x 480, so detection is a fraction of a second per page.
DOCUMENTS = 20  # one page each
DETECTOR_FLAGS = ("--width", "320", "--mag-ratio", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL the process and everything it started (it runs in its own session)."""
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def prefect_env(api_url: str | None = None) -> dict[str, str]:
    """Environment for a child that imports ocrflow and talks to ``api_url``."""
    env = dict(os.environ)
    env.pop("OCRFLOW_DATABASE_URL", None)
    env["PYTHONPATH"] = str(REPO_ROOT)  # the repository's packages, whatever the install
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    env["PREFECT_LOGGING_LEVEL"] = "WARNING"
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@contextmanager
def start_prefect_server(home: Path) -> Iterator[str]:
    """``prefect server start`` in its own process group; yields the API URL."""
    port = _free_port()
    env = prefect_env()
    env["PREFECT_HOME"] = str(home)
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("wb")
    prefect = Path(sys.executable).with_name("prefect")
    proc = subprocess.Popen(
        [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited: {(home / 'server.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(healthy, 180, "the Prefect server", step=0.5)
        yield url
    finally:
        kill_group(proc)
        log.close()


def write_corpus(folder: Path, count: int = 20) -> list[Path]:
    """``count`` one-page PNGs of 200 x 480 with one or two lines of text, all distinct."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        lines = [f"Invoice {i:03d}", f"Total {i * 7} EUR"][: 1 + i % 2]
        path = folder / f"doc{i:02d}.png"
        cv2.imwrite(str(path), text_page(lines, size=(200, 480)))
        paths.append(path)
    return paths


def ocrflow_run(
    inputs: list[Path], database_url: str, api_url: str, workdir: Path, *extra: str
) -> subprocess.Popen[bytes]:
    """``ocrflow run`` as a user types it, in its own process group (so a kill takes it all)."""
    cmd = [str(OCRFLOW), "run", *map(str, inputs), "--database-url", database_url,
           "--no-overlays", "--output", str(workdir / "out"), *DETECTOR_FLAGS, *extra]  # fmt: skip
    log = (workdir / f"run-{time.monotonic_ns()}.log").open("wb")
    try:
        return subprocess.Popen(
            cmd,
            cwd=workdir,
            env=prefect_env(api_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()


def run_to_end(
    inputs: list[Path], database_url: str, api_url: str, workdir: Path, *extra: str
) -> int:
    """Run ``ocrflow run`` to completion; return its exit code (the group is killed on timeout)."""
    proc = ocrflow_run(inputs, database_url, api_url, workdir, *extra)
    try:
        return proc.wait(timeout=300)
    finally:
        kill_group(proc)


def scalar(database_url: str, sql: str) -> Any:
    """One value from a fresh connection (none is kept open across a kill or restart)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


Snapshot = dict[str, Any]


def snapshot(database_url: str) -> Snapshot:
    """Everything a run produces, keyed by content (sha256, page number), not by row ids."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            docs = conn.execute(
                text("SELECT sha256, status, page_count, error FROM documents ORDER BY sha256")
            ).all()
            pages = conn.execute(
                text(
                    "SELECT d.sha256, p.page_number, p.width, p.height, p.status "
                    "FROM pages p JOIN documents d ON d.id = p.document_id "
                    "ORDER BY d.sha256, p.page_number"
                )
            ).all()
            regions = conn.execute(
                text(
                    "SELECT d.sha256, p.page_number, pr.params_hash, r.region_index, "
                    "r.x0, r.y0, r.x1, r.y1, r.x2, r.y2, r.x3, r.y3, r.score "
                    "FROM regions r JOIN page_results pr ON pr.id = r.page_result_id "
                    "JOIN pages p ON p.id = pr.page_id JOIN documents d ON d.id = p.document_id "
                    "ORDER BY d.sha256, p.page_number, pr.params_hash, r.region_index"
                )
            ).all()
            results = conn.execute(
                text(
                    "SELECT d.sha256, p.page_number, pr.params_hash FROM page_results pr "
                    "JOIN pages p ON p.id = pr.page_id JOIN documents d ON d.id = p.document_id "
                    "ORDER BY 1, 2, 3"
                )
            ).all()
            runs = conn.execute(text("SELECT id, status FROM runs ORDER BY id")).all()
    finally:
        engine.dispose()
    return {
        "documents": [tuple(r) for r in docs],
        "pages": [tuple(r) for r in pages],
        "page_results": [tuple(r) for r in results],
        "regions": [(*r[:4], *(round(float(v), 3) for v in r[4:])) for r in regions],
        "runs": [tuple(r) for r in runs],
    }


def assert_consistent(snap: Snapshot) -> None:
    """No duplicate rows by natural key; every page result's regions numbered 0..n-1."""
    assert len(set(snap["documents"])) == len(snap["documents"])
    page_keys = [(s, n) for s, n, *_ in snap["pages"]]
    assert len(set(page_keys)) == len(page_keys), "duplicate pages"
    assert len(set(snap["page_results"])) == len(snap["page_results"]), "duplicate page results"
    by_result: dict[tuple[Any, ...], list[int]] = {}
    for sha, number, phash, index, *_ in snap["regions"]:
        by_result.setdefault((sha, number, phash), []).append(index)
    for key, indexes in by_result.items():
        assert indexes == list(range(len(indexes))), f"partial or doubled regions on {key}"
