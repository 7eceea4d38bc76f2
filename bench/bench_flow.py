"""Whole-flow benchmark: ocr-documents end to end against the detector alone, same pages.

Each side runs in its own process (peak RSS is per process). "detector alone" rasterizes with
``ingest`` and runs ``craft`` page by page; "flow" is ``ocr_documents`` with SQLite and overlays,
on Prefect's temporary local server (its start-up is reported separately).

    python bench/bench_flow.py                 # the bundled 6-page PDF
    python bench/bench_flow.py --pages 100     # a generated 100-page PDF as well
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "natnotes.pdf"


def make_pdf(path: Path, pages: int) -> Path:
    """An A4-ish text PDF of ``pages`` pages at 150 DPI, cycling the sample's look."""
    import cv2
    import numpy as np
    from PIL import Image

    def page(i: int) -> Image.Image:
        img = np.full((1754, 1241, 3), 255, np.uint8)
        for line in range(40):
            text = f"Page {i + 1} line {line + 1}: generated benchmark text for ocrflow"
            cv2.putText(img, text, (80, 90 + 40 * line), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                        (0, 0, 0), 2, cv2.LINE_AA)  # fmt: skip
        return Image.fromarray(img)

    first = page(0)
    first.save(path, save_all=True, append_images=(page(i) for i in range(1, pages)),
               resolution=150)  # fmt: skip
    return path


def child_detector(pdf: str) -> dict:
    from craft import craft_predictor
    from ingest import IngestOptions, discover, iter_pages

    predictor = craft_predictor("default")
    t0 = time.perf_counter()
    n = 0
    for doc in discover([pdf]):
        for page in iter_pages(doc, IngestOptions()):
            predictor([page.image])
            n += 1
    return {"pages": n, "seconds": time.perf_counter() - t0}


def child_flow(pdf: str) -> dict:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.ocr_documents import ocr_documents
    from flows.params import DatabaseOptions

    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    t0 = time.perf_counter()
    summary = ocr_documents(
        inputs=[pdf],
        database=DatabaseOptions(url=f"sqlite:///{work / 'bench.db'}"),
        output_dir=str(work / "overlays"),
    )
    total = time.perf_counter() - t0
    pages = sum(d.pages for d in summary.documents)
    return {"pages": pages, "seconds": summary.seconds, "with_server_start": total}


def run_child(kind: str, pdf: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(pdf)],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=0, help="also run a generated PDF this long")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, pdf = args.child
        result = child_flow(pdf) if kind == "flow" else child_detector(pdf)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    inputs = [SAMPLE]
    if args.pages:
        inputs.append(make_pdf(Path(tempfile.mkdtemp()) / f"gen-{args.pages}.pdf", args.pages))
    for pdf in inputs:
        det = run_child("detector", pdf)
        flo = run_child("flow", pdf)
        det_rate = det["pages"] / det["seconds"]
        flow_rate = flo["pages"] / flo["seconds"]
        print(f"{pdf.name}: {det['pages']} pages")
        print(f"  detector alone  {det_rate:.3f} pages/s, peak RSS {det['peak_rss_mb']:.0f} MB")
        print(
            f"  flow            {flow_rate:.3f} pages/s, peak RSS {flo['peak_rss_mb']:.0f} MB "
            f"(incl. Prefect server start: {flo['pages'] / flo['with_server_start']:.3f} pages/s)"
        )
        print(f"  flow overhead   {100 * (det_rate / flow_rate - 1):.1f}% of detector time")


if __name__ == "__main__":
    main()
