"""Child process for the hostile-input test: ingest every file, report outcomes and peak RSS.

Run as ``python -m tests.faults.ingest_child <folder> <report.json>``. Every file must end as
pages (possibly with per-page errors) or a typed ``IngestError``; anything else escaping is
recorded as ``escaped`` (the test fails on it) and the loop goes on.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from ingest import DocumentError, IngestError, IngestOptions, PageError, discover, iter_pages

OPTIONS = IngestOptions(dpi=50, page_timeout_s=5, max_pixels=20_000_000, max_pages=50)


def _vm_hwm_kb() -> int:
    """Peak RSS of this process image (``VmHWM``). Unlike ``ru_maxrss``, it starts afresh at
    exec, so it does not include the parent (pytest with torch loaded) this process forked from.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(folder: str, report: str) -> None:
    outcomes: dict[str, dict[str, Any]] = {}
    largest = (0, "")  # pixels of the largest page rendered, and its file
    t0 = time.perf_counter()
    for item in discover([folder], OPTIONS):
        if isinstance(item, DocumentError):
            outcomes[item.path] = {"kind": type(item).__name__, "message": item.message}
            continue
        pages, errors = 0, []
        try:
            for page in iter_pages(item, OPTIONS):
                if isinstance(page, PageError):
                    errors.append([type(page).__name__, page.message])
                else:
                    pages += 1
                    height, width = page.image.shape[:2]
                    largest = max(largest, (width * height, item.path))
            outcome: dict[str, Any] = {"kind": "document", "pages": pages, "page_errors": errors}
        except IngestError as exc:
            outcome = {"kind": type(exc).__name__, "message": exc.message}
        except BaseException as exc:
            outcome = {"kind": "escaped", "message": f"{type(exc).__name__}: {exc}"}
        outcomes[item.path] = outcome
    usage = {
        "self_max_rss_kb": _vm_hwm_kb(),
        "children_max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "seconds": time.perf_counter() - t0,
        "largest_page_pixels": largest[0],
        "largest_page_file": largest[1],
    }
    Path(report).write_text(json.dumps({"outcomes": outcomes, "usage": usage}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
