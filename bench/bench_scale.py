"""Scale of one document: peak RSS of a whole ``ocrflow run`` against the page count.

A generated N-page PDF (default 1000) goes through the real flow as a user runs it:
``ocrflow run`` in its own process, rasterize -> detect -> persist -> render overlays, into a
fresh SQLite file (``--postgres`` adds a run into a throwaway PostgreSQL database). While it
runs, the resident memory of its process tree (poppler children included) is sampled together
with the pages stored so far (``page_results`` rows, polled from the database), and the script
prints RSS at page milestones, the peak, the slope of RSS against pages after warm-up
(MB per 100 pages: ~0 when memory does not grow with the page count) and pages/s.

The flow runs against its own Prefect server (started here, like the fault tests do), so the
server's memory, which holds every task run it is told about, is not counted as the worker's;
it is printed beside it for information.

Settings for 2 busy CPU cores (the full 1000 pages take about 10-15 minutes): pages of
360 x 240 pt with four lines of 18 pt text, rasterized at 72 DPI (360 x 240 px), detector
``--width 320 --mag-ratio 1`` (the fault tests' small canvas), overlays on. Page count is
what this measures, not page size: each page costs the same, so any growth is per page.

Usage (from the repository root):
    python bench/bench_scale.py                 # 1000 pages, SQLite
    python bench/bench_scale.py --pages 200     # quicker
    python bench/bench_scale.py --postgres      # SQLite, then PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.support import (  # noqa: E402
    RssSample,
    kill_group,
    ocrflow_run,
    rss_at,
    rss_slope_mb_per_100,
    sample_run,
    scalar,
    start_prefect_server,
    text_pdf,
    tree_rss_mb,
)

PG_ADMIN_URL = os.environ.get("OCRFLOW_TEST_PG_URL", "postgresql://root@127.0.0.1:5432/test")
MILESTONES = (10, 50, 100, 250, 500, 750, 1000)


def _server_pid(api_url: str) -> int | None:
    """The Prefect server listening on ``api_url``'s port (for its RSS, printed beside)."""
    import psutil

    port = int(api_url.rsplit(":", 1)[1].split("/")[0])
    for conn in psutil.net_connections("tcp"):
        if conn.status == "LISTEN" and conn.laddr and conn.laddr.port == port and conn.pid:
            return int(conn.pid)
    return None


def one_run(
    label: str, pdf: Path, pages: int, url: str, api_url: str, work: Path, args: argparse.Namespace
) -> None:
    server = _server_pid(api_url)
    server_before = tree_rss_mb(server) if server else float("nan")
    flags = ("--overlays", "--dpi", str(args.dpi), "--width", str(args.width),
             "--mag-ratio", str(args.mag_ratio), "--no-skip")  # fmt: skip
    t0 = time.monotonic()
    proc = ocrflow_run([pdf], url, api_url, work, *flags)
    try:
        samples, hwm = sample_run(proc, url, timeout=args.timeout, interval=args.interval)
        rc = proc.wait()
    finally:
        kill_group(proc)
    wall = time.monotonic() - t0
    server_after = tree_rss_mb(server) if server else float("nan")
    stored = scalar(url, "SELECT count(*) FROM page_results")
    regions = scalar(url, "SELECT count(*) FROM regions")
    overlays = len(list((work / "out").rglob("page-*")))
    report(label, samples, pages, hwm, wall, rc, args.warmup)
    print(f"stored: {stored} pages, {regions} regions ({regions / max(stored, 1):.1f} per page), "
          f"{overlays} overlays")  # fmt: skip
    print(f"Prefect server RSS (not the worker's): {server_before:.0f} -> {server_after:.0f} MB")
    if rc != 0 or stored < pages:
        logs = sorted(work.glob("run-*.log"))
        tail = logs[-1].read_text()[-3000:] if logs else ""
        print(f"!! exit code {rc}, {stored} of {pages} pages seen stored; log tail:\n{tail}")


def report(
    label: str, samples: list[RssSample], pages: int, hwm: float, wall: float, rc: int, warm: int
) -> None:
    print(f"\n## {label}: {pages}-page PDF, exit code {rc}, {len(samples)} samples")
    first = next((t for t, done, _ in samples if done > 0), None)
    print(f"{'pages':>6s} {'(sampled at)':>12s} {'seconds':>8s} {'tree RSS MB':>12s}")
    for m in [m for m in MILESTONES if m <= pages] + ([pages] if pages not in MILESTONES else []):
        t, done, rss = next((s for s in samples if s[1] >= m), samples[-1])
        print(f"{m:6d} {done:12d} {t:8.0f} {rss:12.0f}")
    peak_sampled = max(rss for *_, rss in samples)
    slope = rss_slope_mb_per_100(samples, warm)
    at_warm, at_end = rss_at(samples, warm), samples[-1][2]
    print(f"peak RSS: {peak_sampled:.0f} MB sampled (process tree), {hwm:.0f} MB VmHWM (flow)")
    print(f"after warm-up ({warm} pages): slope {slope:+.2f} MB per 100 pages, "
          f"end - warm-up {at_end - at_warm:+.0f} MB "
          f"({at_end / at_warm:.3f}x)")  # fmt: skip
    stored = samples[-1][1]
    if first is not None:
        steady = stored / max(samples[-1][0] - first, 1e-9)
        print(f"pages/s: {stored / wall:.2f} overall ({wall:.0f} s incl. start-up), "
              f"{steady:.2f} from the first stored page")  # fmt: skip


def postgres_url() -> tuple[str, str]:
    """A fresh PostgreSQL database for the run (dropped afterwards): (url, name)."""
    import psycopg

    name = f"ocrflow_scale_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--dpi", type=int, default=72)
    parser.add_argument("--width", type=int, default=320, help="detector --width")
    parser.add_argument("--mag-ratio", type=float, default=1.0, help="detector --mag-ratio")
    parser.add_argument("--warmup", type=int, default=None, help="pages (default: 10%%)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--postgres", action="store_true", help="also run into PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only")
    args = parser.parse_args()
    args.warmup = args.warmup if args.warmup is not None else max(args.pages // 10, 1)
    with tempfile.TemporaryDirectory(prefix="ocrflow-scale-") as tmp:
        work = Path(tmp)
        pdf = work / f"scale-{args.pages}.pdf"
        pdf.write_bytes(text_pdf(args.pages))
        print(f"{args.pages} pages of 360x240 pt at {args.dpi} DPI, detector --width "
              f"{args.width} --mag-ratio {args.mag_ratio}, overlays on, {os.cpu_count()} CPUs; "
              f"PDF {pdf.stat().st_size / 1e6:.2f} MB")  # fmt: skip
        home = work / "prefect-home"
        home.mkdir()
        t0 = time.monotonic()
        with start_prefect_server(home) as api_url:
            print(f"Prefect server up in {time.monotonic() - t0:.0f} s")
            if not args.no_sqlite:
                url = f"sqlite:///{work / 'scale.db'}"
                one_run("SQLite", pdf, args.pages, url, api_url, work, args)
            if args.postgres:
                url, name = postgres_url()
                try:
                    one_run("PostgreSQL", pdf, args.pages, url, api_url, work, args)
                finally:
                    drop_postgres(name)


if __name__ == "__main__":
    main()
