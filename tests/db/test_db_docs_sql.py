"""Every ```sql block in docs/sql.md runs and returns rows on sample data.

Plain ```sql blocks run on both backends; ```sql postgresql and ```sql sqlite blocks (full-text
search, whose syntax differs) run on their own backend only.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from db import writes
from db.recognition_writes import write_region_texts
from tests.db_fixtures import BACKENDS, make_regions

DOC = Path(__file__).resolve().parents[2] / "docs" / "sql.md"
BLOCKS: list[tuple[str, str]] = re.findall(
    r"```sql(?: (postgresql|sqlite))?\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL
)
QUERIES = [query for _, query in BLOCKS]
PHRASES = (
    "Invoice number {i}",
    "Payment terms: 30 days",
    "Total due",
    "Thank you for your payment",
)


class Read(NamedTuple):
    text: str
    confidence: float


def seed(engine: Engine) -> None:
    """Sample data on which every documented query has an answer."""

    def run(threshold: float) -> int:
        return writes.start_run(
            engine, params={"preset": "default", "text_threshold": threshold},
            model_name="craft_mlt_25k", model_sha256="a" * 64, device="cpu", precision="fp32",
        )  # fmt: skip

    def document(name: str, pages: int) -> list[int]:
        doc = writes.upsert_document(
            engine, sha256=hashlib.sha256(name.encode()).hexdigest(), source_uri=f"/in/{name}",
            media_type="application/pdf", size_bytes=1000, page_count=pages,
        )  # fmt: skip
        return [
            writes.upsert_page(engine, document_id=doc, page_number=n, width=1000, height=1400)
            for n in range(1, pages + 1)
        ]

    strict, loose = run(0.7), run(0.5)
    text_page, blank_page = document("invoice.pdf", 2)
    for run_id, count in ((strict, 40), (loose, 60)):
        writes.write_page_regions(
            engine, run_id=run_id, page_id=text_page, regions=make_regions(count)
        )
        writes.write_page_regions(engine, run_id=run_id, page_id=blank_page, regions=[])
        writes.finish_run(engine, run_id)
    texts = [Read(PHRASES[i % len(PHRASES)].format(i=i), 0.5 + (i % 5) / 10) for i in range(40)]
    write_region_texts(engine, run_id=strict, page_id=text_page, texts=texts)
    (broken,) = document("broken.pdf", 1)
    writes.record_page_error(engine, broken, "cannot decode page")
    doc_id = writes.upsert_document(
        engine, sha256=hashlib.sha256(b"broken.pdf").hexdigest(), source_uri="/in/broken.pdf",
        media_type="application/pdf", size_bytes=1000,
    )  # fmt: skip
    writes.record_document_error(engine, doc_id, "1 of 1 pages failed")
    run(0.7)  # a run whose worker died: swept as abandoned
    writes.mark_stale_runs(engine, timedelta(minutes=5), now=datetime.now(UTC) + timedelta(hours=1))


def test_docs_have_the_promised_queries() -> None:
    assert len(QUERIES) >= 5
    assert {dialect for dialect, _ in BLOCKS} == {"", "postgresql", "sqlite"}


# Each block runs on every backend it is written for (a ```sql postgresql block only there),
# chosen at collection time so no test has to skip.
CASES = [
    pytest.param(backend, query, id=f"query{i}-{backend}")
    for i, (dialect, query) in enumerate(BLOCKS)
    for backend in BACKENDS
    if dialect in ("", backend)
]


@pytest.mark.parametrize(("database_url", "query"), CASES, indirect=["database_url"])
def test_documented_query_runs(engine: Engine, query: str) -> None:
    seed(engine)
    with engine.connect() as conn:
        result = conn.execute(sa.text(query)).all()
    assert result, f"documented query returned no rows on the sample data:\n{query}"
