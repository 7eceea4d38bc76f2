"""The ``ocr-inbox`` flow: sweep a folder, fan out one child flow run per new piece of work.

A sweep is cheap and safe to repeat (it runs on a cron): it hashes the files, asks the results
database which documents (or page ranges) already have results for the *same* detector
parameters and weights, asks Prefect which are already in flight, and submits one
``ocr-documents`` run per remaining document, or per page range of a long PDF, to the work
pool. N workers then process N documents at once. Children write idempotently (upserts, one
result per page and parameter hash, ``skip_processed``), so a retried or duplicated child
changes nothing.

No password ever becomes a parameter: children get the same ``database`` options (a Secret
block name, or nothing so the worker's ``OCRFLOW_DATABASE_URL`` applies).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import deployment, flow_run
from pydantic import Field
from sqlalchemy import Engine, Table, select

from craft.params import DetectorParams
from db import page_state, writes
from db.models import Base, DocumentStatus
from db.session import connect
from flows.params import (
    DatabaseOptions,
    DatabaseParameter,
    DetectorOptions,
    DetectorParameter,
    IngestionParameter,
    OverlayOptions,
    OverlayParameter,
    RecognitionOptions,
    RecognitionParameter,
)
from ingest import Document, DocumentError, IngestOptions, count_pages, discover
from ingest.roots import check_inputs
from tasks.names import run_name, sweep_run_name

__all__ = [
    "CHILD_DEPLOYMENT",
    "INBOX_TAG",
    "WorkItem",
    "expected_params_hash",
    "in_flight_documents",
    "ocr_inbox",
    "plan_work",
]

CHILD_DEPLOYMENT = "ocr-documents/ocr-manual"
INBOX_TAG = "ocr-inbox"  # on every child, so the UI filters the fan-out in one click
_DOC_TAG = "ocr-doc-"  # + the first 16 hex digits of the sha256: work in flight per document
_UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")

_documents: Table = Base.metadata.tables["documents"]


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One child flow run: a document, or pages ``first_page..last_page`` of it."""

    path: str
    sha256: str
    first_page: int | None = None
    last_page: int | None = None

    @property
    def key(self) -> str:
        """Stable name of this piece of work (content hash + page range)."""
        pages = f"-p{self.first_page}-{self.last_page}" if self.first_page else ""
        return f"{self.sha256[:16]}{pages}"

    @property
    def tags(self) -> list[str]:
        """Tags of its child flow run: the fan-out, and the document it belongs to."""
        return [INBOX_TAG, _DOC_TAG + self.sha256[:16]]


def expected_params_hash(params: DetectorParams) -> str:
    """The ``params_hash`` a run with ``params`` records, without loading the model.

    Same inputs as ``tasks.persist.begin_run``: the parameters as JSON plus the pinned weight
    digests (every weight file is verified against them, so they are what would run).
    """
    from craft.weights_store import WEIGHTS
    from craft.zoo import CRAFT_WEIGHTS, REFINER_WEIGHTS

    return writes.params_hash(
        params.model_dump(mode="json"),
        model_sha256=WEIGHTS[CRAFT_WEIGHTS].sha256,
        refiner_sha256=WEIGHTS[REFINER_WEIGHTS].sha256 if params.with_refiner else None,
    )


def _known_documents(engine: Engine, shas: Iterable[str]) -> dict[str, tuple[int, str]]:
    """``sha256 -> (id, status)`` for the documents the database already has."""
    wanted = list(shas)
    if not wanted:
        return {}
    with connect(engine, read_only=True) as conn:
        rows = conn.execute(
            select(_documents.c.sha256, _documents.c.id, _documents.c.status).where(
                _documents.c.sha256.in_(wanted)
            )
        )
        return {str(sha): (int(i), str(status)) for sha, i, status in rows}


def _ranges(numbers: Sequence[int], size: int) -> list[tuple[int, int]]:
    """Consecutive ``(first, last)`` chunks of ``size`` pages; 0 = one chunk."""
    size = size or len(numbers)
    return [
        (numbers[i], numbers[min(i + size, len(numbers)) - 1]) for i in range(0, len(numbers), size)
    ]


def plan_work(
    engine: Engine,
    documents: Sequence[Document],
    *,
    params_hash: str,
    ingestion: IngestOptions,
    pages_per_child: int,
    in_flight: set[str],
) -> tuple[list[WorkItem], list[dict[str, Any]]]:
    """What to submit, and a row per document explaining what was left out and why.

    Skipped: documents whose every page in range has results for ``params_hash``; documents
    with a child still in flight (``in_flight`` holds sha256 prefixes: per document, not per
    range, so a sweep with another range size cannot overlap it); documents that failed as a
    whole before (a content problem: same bytes, same failure; rerun them with ``ocr-manual``).
    """
    known = _known_documents(engine, (d.document_id for d in documents))
    todo: list[WorkItem] = []
    skipped: list[dict[str, Any]] = []
    for doc in documents:
        row = known.get(doc.document_id)
        if row and row[1] == DocumentStatus.FAILED.value:
            skipped.append({"document": doc.path, "pages": "", "reason": "failed before"})
            continue
        if doc.document_id[:16] in in_flight:
            skipped.append({"document": doc.path, "pages": "", "reason": "running"})
            continue
        split = doc.is_pdf and pages_per_child > 0
        try:
            count = count_pages(doc, ingestion) if split or row else 1
        except DocumentError:
            count = 1  # let a child record the failure against the document
            split = False
        first = ingestion.first_page or 1
        numbers = list(range(first, min(ingestion.last_page or count, count) + 1)) or [first]
        for lo, hi in _ranges(numbers, pages_per_child if split else 0):
            ranged = split and (lo, hi) != (numbers[0], numbers[-1])
            item = WorkItem(doc.path, doc.document_id, *((lo, hi) if ranged else (None, None)))
            pages = list(range(lo, hi + 1))
            if row and page_state.document_done(
                engine, document_id=row[0], page_numbers=pages, params_hash=params_hash
            ):
                skipped.append({"document": doc.path, "pages": f"{lo}-{hi}", "reason": "done"})
            else:
                todo.append(item)
    return todo, skipped


def in_flight_documents(deployment: str) -> set[str]:
    """sha256 prefixes (16 hex digits) of documents with unfinished child runs."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        DeploymentFilter,
        DeploymentFilterId,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    keys: set[str] = set()
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        run_filter = FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType(s) for s in _UNFINISHED])
            ),
            tags=FlowRunFilterTags(all_=[INBOX_TAG]),
        )
        offset = 0
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=run_filter,
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                limit=200,
                offset=offset,
            )
            keys.update(
                t.removeprefix(_DOC_TAG) for r in runs for t in r.tags if t.startswith(_DOC_TAG)
            )
            if len(runs) < 200:
                return keys
            offset += 200


def _settled(documents: list[Document], seconds: float) -> tuple[list[Document], list[Document]]:
    """Split into documents unchanged for ``seconds`` and those modified since."""
    cutoff = time.time() - seconds
    settled: list[Document] = []
    arriving: list[Document] = []
    for doc in documents:
        try:
            young = os.stat(doc.path).st_mtime > cutoff
        except OSError:
            young = True  # moved away meanwhile: look again next sweep
        (arriving if young else settled).append(doc)
    return settled, arriving


def _child_parameters(
    item: WorkItem,
    *,
    detector: DetectorOptions,
    ingestion: IngestOptions,
    database: DatabaseOptions,
    overlay: OverlayOptions,
    recognition: RecognitionOptions,
    output_dir: str,
) -> dict[str, Any]:
    if item.first_page is not None:
        ingestion = ingestion.model_copy(
            update={"first_page": item.first_page, "last_page": item.last_page}
        )
    return {
        "inputs": [item.path],
        "detector": detector.model_dump(mode="json", exclude_none=True),
        "ingestion": ingestion.model_dump(mode="json", exclude_none=True),
        "database": database.model_dump(mode="json", exclude_none=True),
        "overlay": overlay.model_dump(mode="json"),
        "recognition": recognition.model_dump(mode="json", exclude_none=True),
        "output_dir": output_dir,
        "skip_processed": True,
    }


def _sweep_rows(
    submitted: list[dict[str, Any]], skipped: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """The sweep's artifact: what was submitted and what was left out, and why."""
    rows = [
        {"document": s["document"], "action": "submitted", "flow_run": s["flow_run"]}
        for s in submitted
    ]
    rows += [
        {
            "document": f"{s['document']} {s['pages']}".strip(),
            "action": f"skipped: {s['reason']}",
            "flow_run": "",
        }
        for s in skipped
    ]
    return rows


@flow(name="ocr-inbox", flow_run_name=sweep_run_name, validate_parameters=True)
def ocr_inbox(
    inbox: str,
    detector: DetectorParameter = DetectorOptions(),  # noqa: B008 - frozen, safe as default
    ingestion: IngestionParameter = IngestOptions(),  # noqa: B008
    database: DatabaseParameter = DatabaseOptions(),  # noqa: B008
    overlay: OverlayParameter = OverlayOptions(),  # noqa: B008
    recognition: RecognitionParameter = RecognitionOptions(),  # noqa: B008
    output_dir: str = "ocrflow-output",
    pages_per_child: Annotated[int, Field(ge=0)] = 0,
    settle_seconds: Annotated[float, Field(ge=0)] = 10.0,
    child_deployment: str = CHILD_DEPLOYMENT,
) -> list[dict[str, Any]]:
    """Submit one ``ocr-documents`` run per document (or page range) not yet processed.

    Args:
        inbox: Folder to sweep (recursively); must be the same path on every worker.
        detector: Detector options; "processed" means results for exactly these (and the
            weights), so changing them reprocesses the inbox.
        ingestion: Passed to every child (its page range restricts the sweep too).
        database: Results database, as for ``ocr-documents`` (never a password).
        overlay: Passed to every child.
        recognition: Passed to every child ("processed" is about detection only: pages
            detected without recognition count as done).
        output_dir: Overlay folder for every child (absolute, or relative to the project).
        pages_per_child: Page-range size for long PDFs; 0 = one child per document.
        settle_seconds: Leave files modified more recently than this for the next sweep, so
            a file still being copied in is not taken (and recorded) as a broken one.
        child_deployment: The deployment children run as (``flow/deployment``).

    Returns:
        One row per submitted child: document, pages, flow run name and id.
    """
    from prefect.client.schemas.objects import FlowRun
    from prefect.deployments import run_deployment

    from db.migrate import open_results_database
    from flows.ocr_documents import resolve_database_url

    logger = get_run_logger()
    # As ocr-documents: from a deployment, only inside OCRFLOW_INPUT_ROOTS (children check too).
    roots = check_inputs([inbox], from_deployment=deployment.id is not None)
    found = list(discover([inbox], ingestion, roots=roots))
    for err in found:
        if isinstance(err, DocumentError):
            logger.warning("not a document: %s", err.message)
    documents, arriving = _settled([d for d in found if isinstance(d, Document)], settle_seconds)
    # In-flight first, then the database: a child finishing between the two reads is seen as
    # done; the other order could see it as neither and submit it twice.
    in_flight = in_flight_documents(child_deployment)
    engine = open_results_database(resolve_database_url(database))
    try:
        todo, skipped = plan_work(
            engine,
            documents,
            params_hash=expected_params_hash(detector.resolve()),
            ingestion=ingestion,
            pages_per_child=pages_per_child,
            in_flight=in_flight,
        )
    finally:
        engine.dispose()
    skipped += [{"document": d.path, "pages": "", "reason": "still arriving"} for d in arriving]
    parent = flow_run.get_id() or "local"
    submitted: list[dict[str, Any]] = []
    for item in todo:
        child = run_deployment(
            name=child_deployment,
            parameters=_child_parameters(
                item,
                detector=detector,
                ingestion=ingestion,
                database=database,
                overlay=overlay,
                recognition=recognition,
                output_dir=output_dir,
            ),
            # As the child will name itself when it starts: memo.jpg, long.pdf p1-20.
            flow_run_name=run_name([item.path], item.first_page, item.last_page),
            tags=item.tags,
            # A retried sweep re-submits the same keys: the server hands back the same runs.
            idempotency_key=f"{parent}:{item.key}",
            timeout=0,  # fan out; the workers pick the runs up
        )
        assert isinstance(child, FlowRun)  # sync context: never a coroutine
        submitted.append(
            {"document": item.path, "item": item.key, "flow_run": child.name, "id": str(child.id)}
        )
    logger.info(
        "%d documents: %d child runs submitted, %d items skipped",
        len(documents),
        len(submitted),
        len(skipped),
    )
    create_table_artifact(
        key="ocr-inbox",
        table=_sweep_rows(submitted, skipped),
        description=f"Sweep of {inbox}: {len(submitted)} submitted, {len(skipped)} skipped",
    )
    return submitted
