"""Recognised text: stored per region, found by phrase on both backends, kept in sync."""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from db import migrate, writes
from db.recognition_writes import pages_without_text, write_region_texts
from db.search import FTS_TABLE, search
from db.session import create_engine
from tests.db_fixtures import make_regions


class Read(NamedTuple):
    text: str
    confidence: float


TEXTS = [
    Read("Invoice number 4711", 0.93),
    Read("Payment terms: 30 days", 0.88),
    None,  # below the minimum score: not read
    Read("", 0.0),  # read, nothing found
    Read("The customer mentions late payments", 0.71),
]


def new_run(engine: Engine, threshold: float = 0.7) -> int:
    return writes.start_run(
        engine, params={"preset": "default", "text_threshold": threshold},
        model_name="craft_mlt_25k", model_sha256="a" * 64, device="cpu", precision="fp32",
    )  # fmt: skip


def new_page(engine: Engine, name: str = "invoice.pdf", page_number: int = 1) -> int:
    doc = writes.upsert_document(
        engine, sha256=hashlib.sha256(name.encode()).hexdigest(), source_uri=f"/in/{name}",
        media_type="application/pdf", size_bytes=100, page_count=2,
    )  # fmt: skip
    return writes.upsert_page(
        engine, document_id=doc, page_number=page_number, width=1000, height=1400, dpi=150
    )


def seeded(engine: Engine) -> tuple[int, int, list[object]]:
    run, page = new_run(engine), new_page(engine, page_number=2)
    regions = make_regions(len(TEXTS))
    writes.write_page_regions(engine, run_id=run, page_id=page, regions=regions)
    assert write_region_texts(engine, run_id=run, page_id=page, texts=TEXTS) == len(TEXTS)
    return run, page, list(regions)


def stored(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        query = "SELECT region_index, text, text_confidence FROM regions ORDER BY region_index"
        return [tuple(row) for row in conn.execute(sa.text(query))]


def test_texts_are_stored_per_region(engine: Engine) -> None:
    seeded(engine)
    assert stored(engine) == [
        (0, "Invoice number 4711", pytest.approx(0.93)),
        (1, "Payment terms: 30 days", pytest.approx(0.88)),
        (2, None, None),
        (3, "", 0.0),
        (4, "The customer mentions late payments", pytest.approx(0.71)),
    ]


def test_phrase_is_found_with_document_page_and_box(engine: Engine) -> None:
    run, page, regions = seeded(engine)
    [match] = search(engine, "payment terms")
    assert (match.source_uri, match.page_number, match.page_id, match.run_id) == (
        "/in/invoice.pdf", 2, page, run,
    )  # fmt: skip
    assert match.region_index == 1 and match.text == "Payment terms: 30 days"
    assert match.box == pytest.approx(regions[1].bounds)  # type: ignore[attr-defined]
    flat = [v for point in match.polygon for v in point]
    assert flat == pytest.approx([v for p in regions[1].polygon for v in p])  # type: ignore[attr-defined]
    assert match.text_confidence == pytest.approx(0.88)


def test_search_ignores_case_and_word_endings_and_keeps_order(engine: Engine) -> None:
    seeded(engine)
    assert [m.region_index for m in search(engine, "INVOICE")] == [0]
    assert [m.region_index for m in search(engine, "mention")] == [4]  # stemmed: "mentions"
    assert [m.region_index for m in search(engine, "payment")] == [1, 4]  # "payments" too
    assert search(engine, "terms payment") == []  # a phrase: words in order
    assert search(engine, "nowhere") == []
    # Quotes, operators and punctuation are plain text, never query syntax errors.
    assert [m.region_index for m in search(engine, 'number "4711')] == [0]
    assert search(engine, "invoice OR NEAR(payment)") == []


def test_search_filters_and_limits(engine: Engine) -> None:
    seeded(engine)
    other = new_run(engine, 0.5)
    page = new_page(engine, "other.pdf")
    writes.write_page_regions(engine, run_id=other, page_id=page, regions=make_regions(1))
    write_region_texts(engine, run_id=other, page_id=page, texts=[Read("payment due", 0.5)])
    assert [m.source_uri for m in search(engine, "payment")] == [
        "/in/invoice.pdf", "/in/invoice.pdf", "/in/other.pdf",
    ]  # fmt: skip
    assert len(search(engine, "payment", limit=1)) == 1
    assert {m.run_id for m in search(engine, "payment", run_id=other)} == {other}
    with pytest.raises(ValueError, match="no word"):
        search(engine, " -- ")


def test_index_follows_rewrites_clears_and_replaced_regions(engine: Engine) -> None:
    run, page, _ = seeded(engine)
    texts = [None if t is None or "Invoice" not in t.text else Read("Credit note", 0.9)
             for t in TEXTS]  # fmt: skip
    write_region_texts(engine, run_id=run, page_id=page, texts=texts)
    assert search(engine, "invoice") == [] and search(engine, "payment") == []
    assert [m.region_index for m in search(engine, "credit note")] == [0]

    writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(2, seed=3))
    assert search(engine, "credit") == []  # replaced regions take their text along
    assert pages_without_text(engine, run) == [page]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {FTS_TABLE}")).scalar() == 0


def test_texts_must_match_the_stored_regions(engine: Engine) -> None:
    run, page, _ = seeded(engine)
    with pytest.raises(ValueError, match="has 5 regions but 2 texts"):
        write_region_texts(engine, run_id=run, page_id=page, texts=TEXTS[:2])
    with pytest.raises(ValueError, match="no result"):
        write_region_texts(engine, run_id=run, page_id=page + 99, texts=[])
    assert pages_without_text(engine, run) == []


def test_confidence_outside_0_1_is_refused_by_the_schema(engine: Engine) -> None:
    seeded(engine)
    with engine.begin() as conn, pytest.raises(sa.exc.IntegrityError):
        conn.execute(sa.text("UPDATE regions SET text_confidence = 1.5"))


def test_downgrade_removes_text_and_search(database_url: str) -> None:
    migrate.upgrade(database_url)
    migrate.downgrade(database_url, "4f22598ae99b")
    engine = create_engine(database_url)
    try:
        inspector = sa.inspect(engine)
        columns = {c["name"] for c in inspector.get_columns("regions")}
        assert not columns & {"text", "text_confidence", "text_search"}
        assert not [t for t in inspector.get_table_names() if t.startswith(FTS_TABLE)]
        detail_columns = {c["name"] for c in inspector.get_columns("region_details")}
        assert "text" not in detail_columns and "score" in detail_columns
    finally:
        engine.dispose()
    migrate.upgrade(database_url)
    migrate.check(database_url)
