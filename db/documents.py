"""Reads about documents as a whole, for planners that decide what to submit (the inbox sweep).

Read-only and one statement each, so a sweep can call them on every cron tick without
contending with the workers' writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from sqlalchemy import Engine, Table, select

from db.models import Base
from db.session import connect

__all__ = ["KnownDocument", "known_documents"]

_documents: Table = Base.metadata.tables["documents"]
_CHUNK = 500  # sha256 values per IN (...): well under every backend's bound-parameter limit


class KnownDocument(NamedTuple):
    """A document row the database already has: its id and ``DocumentStatus`` value."""

    id: int
    status: str


def known_documents(engine: Engine, shas: Iterable[str]) -> dict[str, KnownDocument]:
    """``sha256 -> KnownDocument`` for those of ``shas`` the database already has.

    Args:
        engine: The results database.
        shas: Document ids (lower-case hex sha256 of the files' bytes); unknown ones are left
            out of the answer.
    """
    wanted = sorted(set(shas))
    found: dict[str, KnownDocument] = {}
    if not wanted:
        return found
    with connect(engine, read_only=True) as conn:
        for i in range(0, len(wanted), _CHUNK):
            rows = conn.execute(
                select(_documents.c.sha256, _documents.c.id, _documents.c.status).where(
                    _documents.c.sha256.in_(wanted[i : i + _CHUNK])
                )
            )
            found.update({str(s): KnownDocument(int(d), str(st)) for s, d, st in rows})
    return found
