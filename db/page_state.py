"""Per-page bookkeeping the flow needs beyond results: failed pages and "already done" checks.

A page that fails before it was ever rendered has no size; it is recorded as 1 x 1 (the schema's
``ck_pages_size_positive`` refuses 0 x 0: a failed page with 1 x 1 and no result means "never
rendered") so its error is queryable, without touching the size (or results) of a page that
rendered before.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, Table, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from db.models import Base, PageStatus
from db.session import connect

__all__ = ["document_done", "record_page_failure"]

_pages: Table = Base.metadata.tables["pages"]
_results: Table = Base.metadata.tables["page_results"]
_NEVER_RENDERED = 1  # pixels: the smallest size the schema's CHECK (width > 0) accepts


def record_page_failure(engine: Engine, *, document_id: int, page_number: int, error: str) -> int:
    """Mark page ``page_number`` failed with ``error`` (creating it if new); return its id.

    Earlier results of the page, if any, are kept: a transient failure loses nothing.
    """
    with connect(engine) as conn, conn.begin():
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(
            dialect.insert(_pages)
            .values(
                document_id=document_id,
                page_number=page_number,
                width=_NEVER_RENDERED,
                height=_NEVER_RENDERED,
                status=PageStatus.FAILED.value,
                error=error,
            )
            .on_conflict_do_nothing(index_elements=[_pages.c.document_id, _pages.c.page_number])
        )
        page_id = conn.execute(
            update(_pages)
            .where(_pages.c.document_id == document_id, _pages.c.page_number == page_number)
            .values(status=PageStatus.FAILED.value, error=error)
            .returning(_pages.c.id)
        ).scalar_one()
    return int(page_id)


def document_done(
    engine: Engine, *, document_id: int, page_numbers: Sequence[int], params_hash: str
) -> bool:
    """Whether every listed page of the document has a result for ``params_hash``."""
    if not page_numbers:
        return False
    with connect(engine, read_only=True) as conn:
        done = conn.execute(
            select(func.count(func.distinct(_pages.c.page_number)))
            .select_from(_pages.join(_results, _results.c.page_id == _pages.c.id))
            .where(
                _pages.c.document_id == document_id,
                _pages.c.page_number.in_(list(page_numbers)),
                _results.c.params_hash == params_hash,
            )
        ).scalar_one()
    return int(done) == len(set(page_numbers))
