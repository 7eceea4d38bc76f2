"""Memory stays flat over a long run of full-size pages: it is bounded by the pages in flight.

The bundled PDF's six A4 pages at 150 dpi, repeated to 12 and to 120 pages, go through
``ocrflow run`` (the page pipeline, overlays on) in a child process each; the detector is the
replay engine (recorded maps of a real page; everything after the network runs for real), so
the run takes a minute, not an hour. Peak RSS of the 120-page run must stay within 1.25x of the
12-page run's: growth per page, if any, shows tenfold.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from craft import DetectorParams
from craft.replay import Recording
from ingest import IngestOptions, discover, iter_pages
from samples import sample_paths
from tests.faults.support import prefect_env

pytestmark = pytest.mark.slow


def _repeat(pdf: Path, times: int, out: Path) -> Path:
    subprocess.run(["pdfunite", *[str(pdf)] * times, str(out)], check=True)
    return out


def test_peak_rss_of_120_pages_is_within_125_percent_of_12(tmp_path: Path) -> None:
    if shutil.which("pdfunite") is None:
        pytest.fail("pdfunite (poppler-utils) is missing: run `make setup`")
    pdf = next(p for p in sample_paths() if p.suffix == ".pdf")
    [document] = discover([str(pdf)])
    first = next(iter_pages(document, IngestOptions(dpi=150, last_page=1)))
    recording = Recording(tmp_path / "recording")
    recording.record([first.image], DetectorParams.preset("words"))

    peaks = {}
    for pages in (12, 120):
        doc = _repeat(pdf, pages // 6, tmp_path / f"pages-{pages}.pdf")
        done = subprocess.run(
            [sys.executable, "-m", "tests.pipeline.rss_child", str(recording.folder), str(doc),
             f"sqlite:///{tmp_path / f'{pages}.db'}", str(tmp_path / f"out-{pages}")],
            env=prefect_env(), capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        peaks[pages] = float(done.stdout.strip().splitlines()[-1])
    print(f"\npeak RSS: 12 pages {peaks[12]:.0f} MiB, 120 pages {peaks[120]:.0f} MiB")
    assert peaks[120] <= 1.25 * peaks[12], peaks
