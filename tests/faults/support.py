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
from tests.ingest.builders import pdf_file

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
           "--no-overlays", "-o", str(workdir / "out"), *DETECTOR_FLAGS, *extra]  # fmt: skip
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


# --- Scale of one document: a long generated PDF and the RSS of the process running it ---


def text_pdf(n_pages: int, size_pt: tuple[int, int] = (360, 240), lines: int = 4) -> bytes:
    """An ``n_pages`` born-digital PDF, ``size_pt`` points per page, a few lines of Helvetica.

    Written by hand (no PDF library): one shared font, one content stream per page, so a
    1000-page file is about 0.4 MB and every page renders to the same small raster.
    """
    width, height = size_pt
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for n in range(1, n_pages + 1):
        pid, cid = 2 + 2 * n, 3 + 2 * n
        kids.append(b"%d 0 R" % pid)
        objs[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (width, height, cid)
        )
        body = b"BT /F1 18 Tf 24 %d Td " % (height - 44) + b"".join(
            b"(Page %d line %d: invoice total) Tj 0 -%d Td " % (n, i + 1, (height - 60) // lines)
            for i in range(lines)
        ) + b"ET"  # fmt: skip
        objs[cid] = b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), n_pages)
    return pdf_file(objs)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (poppler children included), in MB.

    A child caught between fork and exec still shows the parent's whole RSS (the pages are
    shared); it is left out, or a sample would count the flow twice.
    """
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
        own_cmdline = root.cmdline()
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        with suppress(psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            if proc is not root and proc.cmdline() == own_cmdline:
                continue  # forked, not yet exec'd: shares the parent's pages, counted once
            total += proc.memory_info().rss
    return total / 2**20


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of ``pid``'s own resident memory (VmHWM), in MB (0 if gone).

    Catches a transient peak between two samples of ``tree_rss_mb``.
    """
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


_PAGES_STORED = "SELECT count(*) FROM page_results"
RssSample = tuple[float, int, float]  # (seconds since start, pages stored, RSS of the tree in MB)


def sample_run(
    proc: subprocess.Popen[bytes], database_url: str, timeout: float, interval: float = 0.5
) -> tuple[list[RssSample], float]:
    """Sample ``proc``'s tree RSS and the pages it has stored until it exits.

    Returns the samples and the process's own peak RSS (VmHWM, read just before each sample).
    Pages stored are ``page_results`` rows, read through a fresh connection each time (SQLite
    is in WAL mode, so the reader never blocks the flow's writes).
    """
    engine = create_engine(database_url)
    samples: list[RssSample] = []
    peak = 0.0
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"ocrflow run still going after {timeout:.0f} s")
            peak = max(peak, peak_rss_mb(proc.pid))
            rss = tree_rss_mb(proc.pid)
            try:
                with engine.connect() as conn:
                    pages = int(conn.execute(text(_PAGES_STORED)).scalar_one())
            except Exception:  # the schema is created by the run itself: 0 until it exists
                pages = samples[-1][1] if samples else 0
            if rss > 0:
                samples.append((time.monotonic() - t0, pages, rss))
            time.sleep(interval)
    finally:
        engine.dispose()
    return samples, peak


def rss_at(samples: list[RssSample], pages: int) -> float:
    """RSS of the first sample with at least ``pages`` pages stored (the last one if none)."""
    return next((rss for _, done, rss in samples if done >= pages), samples[-1][2])


def rss_slope_mb_per_100(samples: list[RssSample], from_pages: int) -> float:
    """Least-squares slope of RSS against pages stored, from ``from_pages`` on, MB / 100 pages."""
    points = [(done, rss) for _, done, rss in samples if done >= from_pages]
    if len(points) < 2:
        return 0.0
    mx = sum(p for p, _ in points) / len(points)
    my = sum(r for _, r in points) / len(points)
    sxx = sum((p - mx) ** 2 for p, _ in points)
    sxy = sum((p - mx) * (r - my) for p, r in points)
    return 100 * sxy / sxx if sxx else 0.0
