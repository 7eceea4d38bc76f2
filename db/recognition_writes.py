"""Store the text read in a page's regions: one transaction, one statement per backend.

Recognition runs after :func:`db.writes.write_page_regions`, so texts are an UPDATE of rows
that exist, keyed by (``page_result_id``, ``region_index``), the primary key. PostgreSQL gets
one ``UPDATE ... FROM unnest(...)`` (one round trip, whatever the region count); SQLite, which
runs in-process, gets an executemany of primary-key updates. The full-text index follows by
itself (a generated column on PostgreSQL, triggers on SQLite; see :mod:`db.search`).

Re-detecting a page replaces its regions, and with them their texts: recognition has to run
again for that page, which :func:`pages_without_text` finds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, and_, exists, select, text

from db.session import connect
from db.writes import page_results, pages, regions, runs

__all__ = ["TextLike", "pages_to_reread", "pages_without_text", "write_region_texts"]


class TextLike(Protocol):
    """A reading of one region: :class:`recognize.recognizer.Recognition` fits."""

    @property
    def text(self) -> str:
        """Text read (may be empty)."""
        ...

    @property
    def confidence(self) -> float:
        """Mean word confidence in [0, 1]."""
        ...


_PG_UPDATE = text(
    """
UPDATE regions AS r
SET text = u.text, text_confidence = u.confidence
FROM unnest(CAST(:indexes AS integer[]), CAST(:texts AS text[]),
            CAST(:confidences AS double precision[])) AS u(region_index, text, confidence)
WHERE r.page_result_id = :page_result_id AND r.region_index = u.region_index
"""
)
_SQLITE_UPDATE = (
    "UPDATE regions SET text = ?, text_confidence = ? WHERE page_result_id = ? AND region_index = ?"
)


def _clamp(confidence: float) -> float:
    return min(max(float(confidence), 0.0), 1.0)


def write_region_texts(
    engine: Engine, *, run_id: int, page_id: int, texts: Sequence[TextLike | None]
) -> int:
    """Store the texts read in one page's regions, for the run's parameter set.

    Args:
        engine: from :func:`db.session.open_database`.
        run_id: the run whose ``params_hash`` keys the page result (the result may have been
            written by an earlier run with the same parameters).
        page_id: the page.
        texts: one entry per region, in ``region_index`` order (as
            :func:`recognize.recognizer.recognize_page` returns them); ``None`` stores NULL
            (not recognised), clearing any earlier text.

    Returns:
        How many regions were updated (``len(texts)``).

    Raises:
        ValueError: unknown run, no result for this page and parameter set, or ``texts`` does
            not have one entry per stored region (the regions were replaced meanwhile).
    """
    with connect(engine) as conn, conn.begin():
        result_id = conn.execute(
            select(page_results.c.id)
            .join(runs, runs.c.params_hash == page_results.c.params_hash)
            .where(runs.c.id == run_id, page_results.c.page_id == page_id)
        ).scalar()
        if result_id is None:
            raise ValueError(f"no result of run '{run_id}' parameters for page '{page_id}'")
        count = conn.execute(
            select(regions.c.region_index)
            .where(regions.c.page_result_id == result_id)
            .order_by(regions.c.region_index.desc())
            .limit(1)
        ).scalar()
        stored = 0 if count is None else int(count) + 1
        if stored != len(texts):
            raise ValueError(
                f"page '{page_id}' has {stored} regions but {len(texts)} texts were given"
            )
        if not texts:
            return 0
        values = [(None, None) if t is None else (t.text, _clamp(t.confidence)) for t in texts]
        if conn.dialect.name == "postgresql":
            params: dict[str, Any] = {
                "page_result_id": result_id,
                "indexes": list(range(len(values))),
                "texts": [v[0] for v in values],
                "confidences": [v[1] for v in values],
            }
            updated = conn.execute(_PG_UPDATE, params).rowcount
        else:
            rows = [(t, c, result_id, i) for i, (t, c) in enumerate(values)]
            updated = conn.exec_driver_sql(_SQLITE_UPDATE, rows).rowcount
        if updated != len(texts):  # regions replaced since the count: roll back, say so
            raise ValueError(
                f"page '{page_id}' regions changed while storing texts ({updated} of {len(texts)})"
            )
    return len(texts)


def pages_without_text(engine: Engine, run_id: int) -> list[int]:
    """Ids of pages with a result for the run's parameters whose regions were never read.

    A page counts when it has regions and all of them have ``text`` NULL (e.g. it was
    detected with recognition off, or re-detected since). Use it to resume recognition.
    """
    key = select(runs.c.params_hash).where(runs.c.id == run_id).scalar_subquery()
    has_regions = exists().where(regions.c.page_result_id == page_results.c.id)
    has_text = exists().where(
        and_(regions.c.page_result_id == page_results.c.id, regions.c.text.is_not(None))
    )
    query = (
        select(page_results.c.page_id)
        .where(page_results.c.params_hash == key, has_regions, ~has_text)
        .order_by(page_results.c.page_id)
    )
    with connect(engine, read_only=True) as conn:
        return [int(pid) for pid in conn.execute(query).scalars()]


def pages_to_reread(engine: Engine, run_id: int) -> dict[int, int]:
    """:func:`pages_without_text` as ``page id -> document id``.

    A run killed between a page's region write and its text write leaves such pages; with
    recognition on they are not "done" and are detected and read again.
    """
    ids = pages_without_text(engine, run_id)
    if not ids:
        return {}
    with connect(engine, read_only=True) as conn:
        rows = conn.execute(select(pages.c.id, pages.c.document_id).where(pages.c.id.in_(ids)))
        return {int(page): int(doc) for page, doc in rows}
