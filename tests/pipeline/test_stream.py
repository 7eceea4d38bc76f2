"""The cross-document page stream stores what one run per document stores, row for row.

A mixed folder (a 2-page PDF, images of the PDF's page size and of another size, a broken
file, a document another live run holds) goes through one run with cross-document batches,
and document by document through runs of batch 1 (the way the flow worked before the stream):
the database rows are the same. The real detector runs, small (320 px), on real databases.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import Engine

from craft import DetectorParams, PageResult
from craft.zoo import craft_predictor
from db import claims, migrate, writes
from db.migrate import open_results_database
from ingest import Document, IngestOptions, Page, discover
from pipeline.options import OverlayOptions
from pipeline.run import RunRequest, run_documents
from pipeline.store import start_run
from pipeline.stream import Hooks
from tests.craft.pages import text_page
from tests.db_fixtures import result_rows
from tests.flows.documents import make_inbox

PARAMS = DetectorParams.preset("words", device="cpu", width=320, mag_ratio=1)


@pytest.fixture(scope="module")
def predictor() -> Any:
    return craft_predictor(params=PARAMS)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    make_inbox(folder)  # letter.pdf (2 pages, 520x300 at 100 dpi), receipt.png, broken.png
    for name, lines in (("memo.png", ["Memo 7", "Room 12"]), ("note.png", ["Note 3"])):
        cv2.imwrite(str(folder / name), text_page(lines, size=(300, 520)))  # letter's size
    cv2.imwrite(str(folder / "held.png"), text_page(["Held elsewhere"], size=(260, 400)))
    return folder


def _engine(url: str) -> Iterator[Engine]:
    migrate.upgrade(url)
    engine = open_results_database(url)
    yield engine
    engine.dispose()


def _hold(engine: Engine, document: Document, batch: int, info: Any) -> None:
    """Claim ``document`` for another live run with the same parameters (this process's pid:
    alive), as a run on another worker would hold it."""
    params = PARAMS.model_copy(update={"batch_size": batch}).model_dump(mode="json")
    other, _ = start_run(engine, params, info, None)
    doc_id = writes.upsert_document(
        engine, sha256=document.document_id, source_uri=document.path,
        media_type=document.media_type, size_bytes=document.size_bytes,
    )  # fmt: skip
    claim = claims.claim_document(
        engine, document_id=doc_id, run_id=other, stale_after=claims.DEFAULT_STALE_AFTER
    )
    assert claim.taken


def _run(engine: Engine, found: list[Any], predictor: Any, batch: int, seen: list[set[str]]) -> Any:
    params = PARAMS.model_copy(update={"batch_size": batch})

    def detect(pages: list[Page]) -> list[PageResult]:
        seen.append({p.source for p in pages})
        return predictor.predict([p.image for p in pages])

    request = RunRequest(
        params=params,
        ingestion=IngestOptions(dpi=100),
        overlay=OverlayOptions(enabled=False),
    )
    return run_documents(
        found, request, engine=engine, info=predictor.info, hooks=Hooks(detect=detect),
        database="test",
    )  # fmt: skip


def test_one_stream_stores_what_runs_per_document_store(
    inbox: Path, predictor: Any, database_url: str, tmp_path: Path
) -> None:
    found = list(discover([str(inbox)], IngestOptions(dpi=100)))
    held = next(d for d in found if isinstance(d, Document) and d.path.endswith("held.png"))
    per_doc_url = f"sqlite:///{tmp_path / 'per-document.db'}"

    # Document by document, batch 1: the reference.
    for engine in _engine(per_doc_url):
        _hold(engine, held, 1, predictor.info)
        for item in found:
            _run(engine, [item], predictor, 1, [])
        expected = result_rows(engine)

    # One stream, batches of 4 across documents.
    batches: list[set[str]] = []
    for engine in _engine(database_url):
        _hold(engine, held, 4, predictor.info)
        summary = _run(engine, found, predictor, 4, batches)
        got = result_rows(engine)

    assert got == expected
    assert any(len(b) > 1 for b in batches), batches  # pages of several documents in one batch
    status = {Path(d.source).name: d.status for d in summary.documents}
    assert status == {"broken.png": "failed", "letter.pdf": "done", "receipt.png": "done",
                      "memo.png": "done", "note.png": "done", "held.png": "claimed"}  # fmt: skip
    held_row = next(r for r in got["documents"] if r[0] == held.document_id)
    assert held_row[1] == "pending"  # as its holder left it
    assert not any(r[0] == held.document_id for r in got["pages"])  # left to its holder
    assert summary.stages["pages"] == 5
