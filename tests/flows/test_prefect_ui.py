"""What a run shows in the Prefect UI, read back from the real test server: the run's and the
tasks' names, one log line per document, and artifacts that keep the Artifacts page usable."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import cv2
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.logging.handlers import APILogHandler

from flows.ocr_documents import ocr_documents
from flows.params import DatabaseOptions, DetectorOptions, OverlayOptions
from ingest import IngestOptions
from pipeline.summary import RunSummary
from tests.craft.pages import text_page
from tests.flows.documents import write_pdf

pytestmark = pytest.mark.usefixtures("prefect_harness")

SIZE = (200, 330)


@pytest.fixture(scope="module")
def flow_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UUID, RunSummary]]:
    """One run over pages 1-2 of a 3-page PDF and a photo, at INFO (the session logs WARNING)."""
    work = tmp_path_factory.mktemp("ui")
    inbox = work / "inbox"
    inbox.mkdir()
    pages = [text_page([f"Chapter {i}", "Invoice 12"], SIZE) for i in (1, 2, 3)]
    write_pdf(inbox / "letter.pdf", pages)
    cv2.imwrite(str(inbox / "memo.png"), text_page(["Memo 7"], SIZE))
    logger = logging.getLogger("prefect.flow_runs")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        state: Any = ocr_documents(
            inputs=[str(inbox / "letter.pdf"), str(inbox / "memo.png")],
            detector=DetectorOptions(device="cpu", width=320, mag_ratio=1),
            ingestion=IngestOptions(first_page=1, last_page=2),
            database=DatabaseOptions(url=f"sqlite:///{work / 'ui.db'}"),
            overlay=OverlayOptions(thumbnail_side=128),
            output_dir=str(work / "out"),
            return_state=True,
        )
        APILogHandler().flush()  # every record sent before it is read back
    finally:
        logger.setLevel(level)
    summary = state.result()
    assert isinstance(summary, RunSummary)
    yield state.state_details.flow_run_id, summary


async def _read(flow_run_id: UUID) -> dict[str, Any]:
    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        ids = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        tasks = await client.read_task_runs(flow_run_filter=ids, limit=200)
        logs = await client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])), limit=200
        )
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {"run": run, "tasks": tasks, "logs": logs, "artifacts": artifacts}


def test_run_and_task_names_say_what_they_read(flow_run: tuple[UUID, RunSummary]) -> None:
    # A task per detector call (named after its pages, which depend on what was read by
    # then), none per database call or page read.
    wanted = {"discover 2 documents"}

    def complete(names: set[str]) -> bool:
        detected = " ".join(n for n in names if n.startswith("detect "))
        return wanted <= names and "letter.pdf p2" in detected.replace("p1-2", "p2")

    # Task runs reach the server as events, which its recorder writes when it gets to them
    # (seconds later on a loaded machine): wait for them instead of reading once.
    deadline = time.monotonic() + 120
    while True:
        seen = asyncio.run(_read(flow_run[0]))
        names = {t.name for t in seen["tasks"]}
        if complete(names) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert seen["run"].name == "2 documents p1-2"
    detects = sorted(n for n in names if n.startswith("detect "))
    assert names - set(detects) == wanted, sorted(names)
    assert 1 <= len(detects) <= 3, detects
    assert all(p in " ".join(detects) for p in ("letter.pdf p", "memo.png p1")), detects
    assert not any("[" in n or "inbox/" in n for n in names)  # no list repr, no paths


def test_one_log_line_per_document(flow_run: tuple[UUID, RunSummary]) -> None:
    seen = asyncio.run(_read(flow_run[0]))
    messages = [log.message for log in seen["logs"]]
    letter = [m for m in messages if m.startswith("letter.pdf: ")]
    memo = [m for m in messages if m.startswith("memo.png: ")]
    assert len(letter) == len(memo) == 1, messages
    by_name = {Path(d.source).name: d for d in flow_run[1].documents}
    assert letter[0].startswith(
        f"letter.pdf: done, 2 pages, {by_name['letter.pdf'].regions} regions"
    )
    assert letter[0].endswith(" s/page") and memo[0].startswith("memo.png: done, 1 page, ")


def test_artifacts_are_one_keyed_table_and_unkeyed_cards(
    flow_run: tuple[UUID, RunSummary],
) -> None:
    seen = asyncio.run(_read(flow_run[0]))
    artifacts = seen["artifacts"]
    keyed = {a.key for a in artifacts if a.key}
    assert keyed == {"ocr-documents", "ocr-progress"}
    cards = [a for a in artifacts if a.type == "markdown"]
    assert len(cards) == 2 and all(a.key is None for a in cards)
    assert {c.description for c in cards} == {d.source for d in flow_run[1].documents}
    assert all("data:image/jpeg;base64," in str(c.data) for c in cards)  # thumbnails inline
    assert not any(a.type == "link" for a in artifacts)
    assert not any("file://" in str(a.data) for a in artifacts)
    [table] = [a for a in artifacts if a.key == "ocr-documents"]
    folders = {str(Path(o).parent) for d in flow_run[1].documents for o in d.overlays}
    assert len(folders) == 2 and all(f in str(table.data) for f in folders)
