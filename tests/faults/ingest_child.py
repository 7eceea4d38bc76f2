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


def main(folder: str, report: str) -> None:
    outcomes: dict[str, dict[str, Any]] = {}
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
            outcome: dict[str, Any] = {"kind": "document", "pages": pages, "page_errors": errors}
        except IngestError as exc:
            outcome = {"kind": type(exc).__name__, "message": exc.message}
        except BaseException as exc:
            outcome = {"kind": "escaped", "message": f"{type(exc).__name__}: {exc}"}
        outcomes[item.path] = outcome
    usage = {
        "self_max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_max_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "seconds": time.perf_counter() - t0,
    }
    Path(report).write_text(json.dumps({"outcomes": outcomes, "usage": usage}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
