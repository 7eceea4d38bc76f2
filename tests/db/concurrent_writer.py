"""A separate process that writes one document's pages, for the concurrency tests.

Usage: ``python -m tests.db.concurrent_writer URL DOC_NAME PAGES REGIONS_PER_PAGE SYNC_DIR``.
It signals ``SYNC_DIR/ready-<pid>`` and waits for ``SYNC_DIR/go`` so both writers start together.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

from db import writes
from db.session import open_database
from tests.db_fixtures import make_regions

PARAMS = {"preset": "default", "text_threshold": 0.7}


def main(url: str, name: str, pages: int, per_page: int, sync_dir: Path) -> None:
    engine = open_database(url)
    (sync_dir / f"ready-{name}-{per_page}").touch()
    deadline = time.monotonic() + 60
    while not (sync_dir / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal within 60 s")
        time.sleep(0.01)
    run = writes.start_run(
        engine, params=PARAMS, model_name="craft", model_sha256="a" * 64, device="cpu",
        precision="fp32",
    )  # fmt: skip
    document = writes.upsert_document(
        engine, sha256=hashlib.sha256(name.encode()).hexdigest(), source_uri=f"/in/{name}",
        media_type="application/pdf", size_bytes=100, page_count=pages,
    )  # fmt: skip
    for number in range(1, pages + 1):
        page = writes.upsert_page(
            engine, document_id=document, page_number=number, width=1000, height=1400, dpi=200
        )
        regions = make_regions(per_page, seed=number)
        writes.write_page_regions(engine, run_id=run, page_id=page, regions=regions)
    writes.set_document_status(engine, document, "done")
    writes.finish_run(engine, run)
    engine.dispose()


if __name__ == "__main__":
    url, name, pages, per_page, sync = sys.argv[1:]
    main(url, name, int(pages), int(per_page), Path(sync))
