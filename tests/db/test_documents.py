"""db.documents: what a planner reads about whole documents, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine

from db import documents, writes
from db.models import DocumentStatus


def _sha(i: int) -> str:
    return hashlib.sha256(str(i).encode()).hexdigest()


def test_known_documents_returns_id_and_status(engine: Engine) -> None:
    ids = {
        i: writes.upsert_document(
            engine, sha256=_sha(i), source_uri=f"d{i}.png", media_type="image/png", size_bytes=1
        )
        for i in range(3)
    }
    writes.set_document_status(engine, ids[1], DocumentStatus.FAILED, error="truncated")
    unknown = _sha(99)

    known = documents.known_documents(engine, iter([_sha(0), _sha(1), unknown, _sha(0)]))

    assert known == {
        _sha(0): documents.KnownDocument(ids[0], DocumentStatus.PENDING.value),
        _sha(1): documents.KnownDocument(ids[1], DocumentStatus.FAILED.value),
    }
    assert documents.known_documents(engine, []) == {}


def test_known_documents_over_many_ids(engine: Engine) -> None:
    """More ids than one IN (...) chunk holds: every known one is still found."""
    wanted = [_sha(i) for i in range(1200)]
    doc = writes.upsert_document(
        engine, sha256=wanted[-1], source_uri="last.png", media_type="image/png", size_bytes=1
    )
    assert documents.known_documents(engine, wanted) == {
        wanted[-1]: documents.KnownDocument(doc, DocumentStatus.PENDING.value)
    }
