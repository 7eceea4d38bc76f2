"""Small faults found by the fault suite, pinned down fast.

A page that fails before it is rendered (bomb, poppler timeout) is one error row, not a crash.

Found by the hostile corpus: ``record_page_failure`` inserted such pages as 0 x 0, which the
schema's ``ck_pages_size_positive`` refuses, so the flow's ``store-page-error`` task failed
after its retries and took the whole run down.
"""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import Engine, text

from db import claims, page_state, writes
from db.session import create_engine


def test_never_rendered_page_failure_is_recorded(engine: Engine) -> None:
    doc = writes.upsert_document(
        engine, sha256="b" * 64, source_uri="bomb.png", media_type="image/png", size_bytes=10
    )
    message = "bomb.png, page 1: image header claims 10,000,000,000 pixels"
    page_id = page_state.record_page_failure(engine, document_id=doc, page_number=1, error=message)
    again = page_state.record_page_failure(engine, document_id=doc, page_number=1, error=message)
    assert again == page_id  # idempotent: a retried task does not add a row
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, error FROM pages")).all()
    assert [tuple(r) for r in rows] == [("failed", message)]


def test_heartbeat_is_best_effort_when_the_database_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A beat that lands while PostgreSQL restarts is skipped with a warning, not a failed run."""
    down = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    caplog.set_level(logging.WARNING, logger="db.claims")
    beat = claims.RunHeartbeat(down, 1, interval=0.05).start()
    try:
        deadline = time.monotonic() + 30
        while "heartbeat skipped" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        beat.stop()
        down.dispose()
    assert "heartbeat skipped" in caplog.text
    assert beat.beats == 0
