"""Recognition benchmark: accuracy against the PDF's text layer, and speed beside detection.

On a born-digital PDF (default: the bundled samples/natnotes.pdf) every page is rendered at
``--dpi``, detected with CRAFT, and each region read by Tesseract. The words read are matched by
position with ``pdftotext -bbox`` (see recognize.evaluate) to give word accuracy and character
error rate. Then the same pages are recognised by a RecognitionPool with 1 and 2 worker
processes, to show pages/s when both cores are busy. Not a test (tests/recognize holds the
floor); numbers vary with the machine and its load.

    python bench/bench_recognition.py [--pdf PATH] [--dpi 150] [--pages N] [--preset default]
        [--workers 1,2] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import os

# Before anything loads libgomp (torch, tesserocr): see recognize.engine._tesserocr.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout, installed or not


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", default=str(REPO / "samples" / "natnotes.pdf"))
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--pages", type=int, default=0, help="first N pages (0: all)")
    parser.add_argument("--preset", default="default", choices=["default", "words", "lines"])
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the pages per pool")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    from craft import craft_predictor
    from ingest import IngestOptions, Page, discover, iter_pages
    from recognize.engine import tesseract_version
    from recognize.evaluate import Score, pdf_words, score_page
    from recognize.recognizer import PageJob, RecognitionPool, mode_for, recognize_page

    [document] = list(discover([args.pdf]))
    rendered = list(iter_pages(document, IngestOptions(dpi=args.dpi)))  # type: ignore[arg-type]
    pages = [p for p in rendered if isinstance(p, Page)][: args.pages or None]
    predictor = craft_predictor(args.preset, device="cpu")
    mode = mode_for(predictor.params.with_refiner)
    print(f"{Path(args.pdf).name}: {len(pages)} pages at {args.dpi} DPI, preset {args.preset}"
          f" ({mode} regions), {tesseract_version()}")  # fmt: skip

    predictor([pages[0].image])  # warm-up: sessions, weights
    recognize_page(pages[0].image, [], mode=mode)  # loads Tesseract
    detect_s = recognize_s = 0.0
    total = Score()
    results = []
    for page in pages:
        t0 = time.perf_counter()
        [result] = predictor([page.image])
        t1 = time.perf_counter()
        texts = recognize_page(page.image, result.regions, mode=mode)
        t2 = time.perf_counter()
        detect_s, recognize_s = detect_s + t1 - t0, recognize_s + t2 - t1
        score = score_page(
            pdf_words(args.pdf, page.page_number, args.dpi),
            [r.polygon for r in result.regions],
            [t.text if t else None for t in texts],
        )
        total = total + score
        results.append(result)
        print(f"  page {page.page_number}: {len(result.regions):4d} regions"
              f"  detect {t1 - t0:6.2f} s  recognize {t2 - t1:6.2f} s"
              f"  word acc {score.word_accuracy:.4f}  CER {score.cer:.4f}")  # fmt: skip
    n = len(pages)
    print(f"word accuracy {total.word_accuracy:.4f} ({total.correct}/{total.words} words),"
          f" CER {total.cer:.4f} ({total.char_errors}/{total.chars} chars)")  # fmt: skip
    print(f"seconds per page: detection {detect_s / n:.2f}, recognition {recognize_s / n:.2f}"
          " (one process each)")  # fmt: skip

    pool_rates = {}
    jobs = [PageJob(p.image, r.regions) for p, r in zip(pages, results, strict=True)]
    for workers in (int(w) for w in args.workers.split(",")):
        with RecognitionPool(workers, mode=mode) as pool:
            list(pool.map(jobs[:workers]))  # start every worker and load Tesseract
            t0 = time.perf_counter()
            done = sum(1 for _ in pool.map(jobs * args.repeat))
            elapsed = time.perf_counter() - t0
            worker_mib = max(pool.peak_rss_mib(), default=0.0)
        pool_rates[workers] = done / elapsed
        print(f"recognition pool, {workers} worker(s): {done / elapsed:.2f} pages/s"
              f" ({elapsed / done:.2f} s/page, {done} pages), worker peak RSS"
              f" {worker_mib:.0f} MiB")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({
            "pdf": args.pdf, "dpi": args.dpi, "pages": n, "preset": args.preset,
            "word_accuracy": total.word_accuracy, "cer": total.cer,
            "detect_s_per_page": detect_s / n, "recognize_s_per_page": recognize_s / n,
            "pool_pages_per_s": pool_rates, "worker_peak_rss_mib": worker_mib,
        }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
