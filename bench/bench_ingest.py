"""Ingestion benchmark: PDF rasterization speed and peak memory (prints numbers; not a test).

Speed: the bundled 6-page natnotes.pdf at 150 and 300 DPI, pages/s for
  * pdf2image's own ``thread_count`` (whole document in one call, all pages in memory),
  * ``ingest.iter_pages`` with its thread pool (``workers``) and ``chunk_pages``.
Every variant ends with BGR numpy pages, as the detector needs.

Memory: a generated 1000-page PDF streamed through ``ingest.iter_pages``; peak RSS of this
process (VmHWM), measured in a fresh subprocess per page count, must not grow with the page
count (each poppler process renders one chunk and exits, so its memory is bounded too).
pdf2image's one-call conversion is shown beside it for contrast (it holds every page).

Usage (from the repository root):
    python bench/bench_ingest.py                 # everything
    python bench/bench_ingest.py --skip-memory   # speed only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pdf2image  # noqa: E402

from ingest import IngestOptions, Page, iter_pages, open_document  # noqa: E402

GOLDEN_PDF = ROOT / ".." / "shared" / "golden" / "natnotes.pdf"


def text_pdf(n_pages: int) -> bytes:
    """An n-page born-digital PDF (A4, a few lines of Helvetica per page), written by hand."""
    objs: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    for n in range(1, n_pages + 1):
        pid, cid = 2 + 2 * n, 3 + 2 * n
        kids.append(b"%d 0 R" % pid)
        objs[pid] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % cid
        )
        lines = b"".join(
            b"(Page %d, line %d: the quick brown fox jumps over the lazy dog) Tj 0 -14 Td " % (n, i)
            for i in range(40)
        )
        body = b"BT /F1 11 Tf 60 780 Td " + lines + b"ET"
        objs[cid] = b"<< /Length %d >>\nstream\n" % len(body) + body + b"\nendstream"
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), n_pages)
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += b"%d 0 obj\n" % k + objs[k] + b"\nendobj\n"
    xref = len(out)
    size = max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    out += b"".join(b"%010d 00000 n \n" % offsets[k] for k in range(1, size))
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def _pdf2image_pages(path: Path, dpi: int, threads: int) -> int:
    images = pdf2image.convert_from_path(str(path), dpi=dpi, thread_count=threads)
    pages = [cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR) for im in images]
    return len(pages)


def _ingest_pages(path: Path, dpi: int, workers: int, chunk: int | None) -> int:
    opts = IngestOptions(dpi=dpi, workers=workers, chunk_pages=chunk)
    results = list(iter_pages(open_document(path), opts))
    assert all(isinstance(r, Page) for r in results), results
    return len(results)


def bench_speed(path: Path, repeat: int) -> None:
    variants: list[tuple[str, Callable[[int], int]]] = [
        ("pdf2image thread_count=1", lambda dpi: _pdf2image_pages(path, dpi, 1)),
        ("pdf2image thread_count=2", lambda dpi: _pdf2image_pages(path, dpi, 2)),
        ("ingest workers=1 chunk=1", lambda dpi: _ingest_pages(path, dpi, 1, 1)),
        ("ingest workers=2 chunk=1", lambda dpi: _ingest_pages(path, dpi, 2, 1)),
        ("ingest workers=2 chunk=3", lambda dpi: _ingest_pages(path, dpi, 2, 3)),
        ("ingest workers=4 chunk=1", lambda dpi: _ingest_pages(path, dpi, 4, 1)),
        ("ingest default (2, auto)", lambda dpi: _ingest_pages(path, dpi, 2, None)),
    ]
    print(f"\n## Speed: {path.name}, {os.cpu_count()} CPUs, median of {repeat} (pages/s)")
    print("(variants interleaved round-robin, so load from other processes hits all alike)")
    rates: dict[tuple[str, int], list[float]] = {}
    for dpi in (150, 300):
        for _ in range(repeat):
            for name, run in variants:
                t0 = time.perf_counter()
                n = run(dpi)
                rates.setdefault((name, dpi), []).append(n / (time.perf_counter() - t0))
    print(f"{'variant':28s} {'150 DPI':>9s} {'300 DPI':>9s}")
    for name, _ in variants:
        med = [statistics.median(rates[name, dpi]) for dpi in (150, 300)]
        print(f"{name:28s} {med[0]:9.1f} {med[1]:9.1f}")


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(path: str, n_pages: int, mode: str, dpi: int) -> None:
    """Run in a fresh process: consume n pages one way, print peak RSS as JSON."""
    t0 = time.perf_counter()
    base = _vm_hwm_mb()
    if mode == "ingest":
        opts = IngestOptions(dpi=dpi, last_page=n_pages, max_pages=n_pages)
        count = sum(isinstance(page, Page) for page in iter_pages(open_document(path), opts))
    else:
        images = pdf2image.convert_from_path(path, dpi=dpi, last_page=n_pages, thread_count=2)
        pages = [cv2.cvtColor(np.asarray(im), cv2.COLOR_RGB2BGR) for im in images]
        count = len(pages)
    print(
        json.dumps(
            {
                "pages": count,
                "seconds": time.perf_counter() - t0,
                "rss_before_mb": base,
                "peak_rss_mb": _vm_hwm_mb(),
            }
        )
    )


def bench_memory(counts: list[int], naive_counts: list[int], dpi: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ocrflow-bench-") as tmp:
        pdf = Path(tmp) / "thousand.pdf"
        pdf.write_bytes(text_pdf(max(counts)))
        print(f"\n## Memory: {max(counts)}-page generated PDF, {dpi} DPI, A4 pages")
        print(
            f"{'how':28s} {'pages':>6s} {'seconds':>8s} {'pages/s':>8s} "
            f"{'RSS after imports MB':>21s} {'peak RSS MB':>12s}"
        )
        runs = [("ingest.iter_pages (stream)", "ingest", n) for n in counts]
        runs += [("pdf2image one call", "pdf2image", n) for n in naive_counts]
        for label, mode, n in runs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(pdf), str(n), mode, str(dpi)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(
                f"{label:28s} {r['pages']:6d} {r['seconds']:8.1f} "
                f"{r['pages'] / r['seconds']:8.1f} {r['rss_before_mb']:21.0f} "
                f"{r['peak_rss_mb']:12.0f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", nargs=4, metavar=("PDF", "N", "MODE", "DPI"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pages", default="10,100,1000", help="page counts for the memory run")
    parser.add_argument("--naive-pages", default="10,100", help="counts for pdf2image one call")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.child:
        path, n, mode, dpi = args.child
        memory_child(path, int(n), mode, int(dpi))
        return
    if not args.skip_speed:
        if GOLDEN_PDF.is_file():
            bench_speed(GOLDEN_PDF.resolve(), args.repeat)
        else:
            print(f"speed: {GOLDEN_PDF} not found, skipped")
    if not args.skip_memory:
        counts = [int(c) for c in args.pages.split(",")]
        naive = [int(c) for c in args.naive_pages.split(",") if c]
        bench_memory(counts, naive, 150)


if __name__ == "__main__":
    main()
