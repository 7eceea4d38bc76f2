"""Scale of one document: a long PDF through a real ``ocrflow run`` keeps its memory flat.

The flow streams pages in small slices, so once warm its resident memory must not depend on
how many pages the document has. A generated PDF of ``PAGES`` small pages goes through
rasterize -> detect -> persist -> overlays while the RSS of the process tree is sampled with
the pages stored; after warm-up, RSS must not climb with the pages (``bench/bench_scale.py``
measures the same at 1000 pages).

Bounds, from measurements on 2 busy cores (docs/performance.md): after the first ``WARMUP``
pages the slope was +5 to +7 MB per 100 pages and the rise to the end 4 to 9 MB (the tail of
warm-up: SQLite's page cache and Prefect's event buffer filling; at 1000 pages the slope falls
to ~0.4 MB per 100 pages). A throwaway leak that kept every rasterized page (0.26 MB each)
measured +27 MB per 100 pages and a 27 MB rise: caught by both bounds.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from tests.faults.support import (
    RssSample,
    kill_group,
    ocrflow_run,
    rss_slope_mb_per_100,
    sample_run,
    scalar,
    text_pdf,
)

PAGES = 200  # 360 x 240 pt pages at 72 DPI: ~1.5 pages/s on 2 busy cores with overlays
WARMUP = 80  # pages before RSS is compared: imports done, pools and caches filled
MAX_SLOPE_MB_PER_100 = 12.0
MAX_RISE_MB = 16.0
FLAGS = ("--overlays", "--dpi", "72", "--no-skip")  # + support.DETECTOR_FLAGS (small canvas)


def run_long_pdf(pdf: Path, database_url: str, api_url: str, workdir: Path) -> list[RssSample]:
    """``ocrflow run`` on ``pdf``; the RSS samples, after checking it finished cleanly."""
    proc = ocrflow_run([pdf], database_url, api_url, workdir, *FLAGS)
    try:
        samples, _ = sample_run(proc, database_url, timeout=600)
        code = proc.wait()
    finally:
        kill_group(proc)
    log = "\n".join(p.read_text()[-3000:] for p in workdir.glob("run-*.log"))
    assert code == 0, f"ocrflow run exited {code}:\n{log}"
    return samples


def median_rss(samples: list[RssSample], lo: int, hi: int) -> float:
    """Median RSS of the samples taken while ``lo <= pages stored <= hi`` (poppler children
    come and go between samples; the median ignores them)."""
    window = [rss for _, done, rss in samples if lo <= done <= hi]
    assert window, f"no sample between {lo} and {hi} pages stored"
    return statistics.median(window)


def test_rss_does_not_grow_with_pages(prefect_api_url: str, tmp_path: Path) -> None:
    pdf = tmp_path / "long.pdf"
    pdf.write_bytes(text_pdf(PAGES))
    url = f"sqlite:///{tmp_path / 'scale.db'}"
    samples = run_long_pdf(pdf, url, prefect_api_url, tmp_path)

    assert scalar(url, "SELECT count(*) FROM page_results") == PAGES
    assert scalar(url, "SELECT count(DISTINCT page_id) FROM regions") == PAGES  # text found
    assert len(list((tmp_path / "out").rglob("page-*.png"))) == PAGES
    slope = rss_slope_mb_per_100(samples, WARMUP)
    start = median_rss(samples, WARMUP, WARMUP + 20)
    end = median_rss(samples, PAGES - 20, PAGES)
    step = max(len(samples) // 12, 1)
    table = ", ".join(f"{done}: {rss:.0f}" for _, done, rss in samples[::step])
    detail = f"pages stored: tree RSS MB = {table}"
    print(f"slope {slope:+.2f} MB/100 pages, rise {end - start:+.1f} MB; {detail}")
    assert slope < MAX_SLOPE_MB_PER_100, f"RSS grows {slope:.1f} MB per 100 pages; {detail}"
    assert end - start < MAX_RISE_MB, f"RSS rose {end - start:.0f} MB after warm-up; {detail}"
