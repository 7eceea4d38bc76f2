"""Full-text search over recognised region text, on PostgreSQL and SQLite.

Each backend uses its own index, created by the ``recognition`` migration:

- PostgreSQL: ``regions.text_search``, a stored generated ``tsvector`` (english config) with a
  GIN index; a phrase becomes ``phraseto_tsquery('english', ...)``.
- SQLite: the FTS5 table ``region_text_fts`` (porter stemmer), kept in sync by triggers; a
  phrase becomes an FTS5 phrase query. Its rowid encodes the region's key (:data:`FTS_ROWID`).

Both stem English words ("mentions" finds "mention") and match the phrase's words adjacent and
in order, inside one region: a phrase broken across two lines is not found. PostgreSQL drops
stop words ("the", "of"), so a phrase of stop words alone finds nothing there.

These objects are not in :mod:`db.models` (they differ per backend); :func:`include_object`
hides them from alembic's drift check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from db.session import connect

__all__ = [
    "FTS_ROWID",
    "FTS_TABLE",
    "SearchMatch",
    "fts5_phrase",
    "has_text",
    "include_object",
    "search",
]

FTS_TABLE = "region_text_fts"
FTS_ROWID = 1 << 20
"""SQLite FTS rowid = ``page_result_id * FTS_ROWID + region_index`` (region_index < 2^20)."""

_PG_ONLY = {("column", "text_search"), ("index", "ix_regions_text_search")}


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic ``include_object`` hook: skip the per-backend search objects in drift checks."""
    if type_ == "table" and name is not None and name.startswith(FTS_TABLE):
        return False  # the FTS5 table and its shadow tables (_data, _idx, _config, ...)
    return (type_, name) not in _PG_ONLY


@dataclass(frozen=True, slots=True)
class SearchMatch:
    """One region whose text matches: where it is and what it says."""

    document_id: int
    source_uri: str
    page_number: int
    page_id: int
    run_id: int
    page_result_id: int
    region_index: int
    box: tuple[float, float, float, float]
    """Axis-aligned (x_min, y_min, x_max, y_max) in page pixels."""
    polygon: tuple[tuple[float, float], ...]
    text: str
    text_confidence: float | None


_SELECT = """
SELECT d.id AS document_id, d.source_uri, p.page_number, r.page_id, r.run_id,
       r.page_result_id, r.region_index, r.x_min, r.y_min, r.x_max, r.y_max,
       r.x0, r.y0, r.x1, r.y1, r.x2, r.y2, r.x3, r.y3, r.text, r.text_confidence
FROM {source}
JOIN pages p ON p.id = r.page_id
JOIN documents d ON d.id = p.document_id
WHERE {where}
ORDER BY d.source_uri, p.page_number, r.run_id, r.y_min, r.x_min, r.region_index
LIMIT :limit
"""
_PG = _SELECT.format(
    source="regions r",
    where="r.text_search @@ phraseto_tsquery('english', :phrase) {run}",
)
_SQLITE = _SELECT.format(
    source=f"""{FTS_TABLE} f
JOIN regions r
  ON r.page_result_id = f.rowid / {FTS_ROWID} AND r.region_index = f.rowid % {FTS_ROWID}""",
    where=f"{FTS_TABLE} MATCH :phrase {{run}}",
)


def fts5_phrase(phrase: str) -> str:
    """``phrase`` as one FTS5 phrase string: quoted, so operators in it are plain words."""
    return '"' + phrase.replace('"', '""') + '"'


def search(
    engine: Engine, phrase: str, *, run_id: int | None = None, limit: int = 100
) -> list[SearchMatch]:
    """Regions whose text contains ``phrase``, by document, page and position on the page.

    Args:
        engine: from :func:`db.session.open_database`.
        phrase: words to find adjacent and in order (case and word endings ignored).
        run_id: only regions written by this run.
        limit: at most this many matches.

    Returns:
        Matches ordered by document, page, run, then top-to-bottom, left-to-right.

    Raises:
        ValueError: ``phrase`` has no word in it, or ``limit`` < 1.
    """
    if not any(ch.isalnum() for ch in phrase):
        raise ValueError(f"search phrase '{phrase}' has no word in it")
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got '{limit}'")
    params: dict[str, Any] = {"limit": limit}
    run = ""
    if run_id is not None:
        run, params["run_id"] = "AND r.run_id = :run_id", run_id
    with connect(engine, read_only=True) as conn:
        if conn.dialect.name == "postgresql":
            query, params["phrase"] = _PG.replace("{run}", run), phrase
        else:
            query, params["phrase"] = _SQLITE.replace("{run}", run), fts5_phrase(phrase)
        rows = conn.execute(text(query), params).all()
    return [
        SearchMatch(
            document_id=row.document_id,
            source_uri=row.source_uri,
            page_number=row.page_number,
            page_id=row.page_id,
            run_id=row.run_id,
            page_result_id=row.page_result_id,
            region_index=row.region_index,
            box=(row.x_min, row.y_min, row.x_max, row.y_max),
            polygon=((row.x0, row.y0), (row.x1, row.y1), (row.x2, row.y2), (row.x3, row.y3)),
            text=row.text,
            text_confidence=row.text_confidence,
        )
        for row in rows
    ]


def has_text(engine: Engine, *, run_id: int | None = None) -> bool:
    """Whether any region (of run ``run_id``) has recognised text: is there anything to search?

    Lets a search that found nothing say why: runs without ``--recognize`` store no text.
    """
    where = "r.text IS NOT NULL" + ("" if run_id is None else " AND r.run_id = :run_id")
    query = text(f"SELECT 1 FROM regions r WHERE {where} LIMIT 1")
    with connect(engine, read_only=True) as conn:
        return conn.execute(query, {"run_id": run_id}).first() is not None
