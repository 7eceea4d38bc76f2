"""The ``ocr-inbox`` flow: sweep a folder, fan the new work out to child flow runs.

A sweep is cheap and safe to repeat (it runs on a cron): it hashes the files, asks the results
database which documents (or page ranges) already have results for the *same* detector
parameters and weights, asks Prefect which are already in flight, and submits the rest to the
work pool as ``ocr-documents`` runs of up to ``pages_per_child`` pages each: many small
documents packed into one run, a long PDF split into page ranges, one run per range. A child
run pays a process start, imports and a model load (5-8 s) once for all its pages, so an inbox
of one-page scans no longer spends most of its time starting up (docs/operations.md, "Page
budget"). N workers process N children at once. Children write idempotently (upserts, one
result per page and parameter hash, ``skip_processed``, per-document claims), so a retried or
duplicated child changes nothing.

No password ever becomes a parameter: children get the same ``database`` options (a Secret
block name, or nothing so the worker's ``OCRFLOW_DATABASE_URL`` applies).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.runtime import deployment, flow_run
from pydantic import Field
from sqlalchemy import Engine

from craft import weight_digests
from craft.params import DetectorParams
from db import page_state, writes
from db.documents import known_documents
from db.models import DocumentStatus
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
from tasks.names import run_name_from_parameters, sweep_run_name

__all__ = [
    "CHILD_DEPLOYMENT",
    "INBOX_TAG",
    "PAGES_PER_CHILD",
    "ChildRun",
    "WorkItem",
    "crashed_documents",
    "in_flight_documents",
    "ocr_inbox",
    "pack_children",
    "plan_work",
]

CHILD_DEPLOYMENT = "ocr-documents/ocr-manual"
INBOX_TAG = "ocr-inbox"  # on every child, so the UI filters the fan-out in one click
# The page budget of a child run. A child's start-up (worker poll, process, imports, model
# load: ~10 s on a CPU worker) is paid once per child; at 50 pages it is under a tenth of a
# child's time on a CPU (2-3 s a page) while an inbox of 100+ pages still spreads over several
# workers. docs/operations.md ("Page budget") has the measurements and when to change it.
PAGES_PER_CHILD = 50
_DOC_TAG = "ocr-doc-"  # + the first 16 hex digits of the sha256: work in flight per document
_UNFINISHED = ("SCHEDULED", "PENDING", "RUNNING", "PAUSED", "CANCELLING")


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A document to process, or pages ``first_page..last_page`` of it (``pages`` of them)."""

    path: str
    sha256: str
    first_page: int | None = None
    last_page: int | None = None
    pages: int = 1
    alone: bool = False  # in a child that crashed before: not packed with other documents

    @property
    def key(self) -> str:
        """Stable name of this piece of work (content hash + page range)."""
        pages = f"-p{self.first_page}-{self.last_page}" if self.first_page else ""
        return f"{self.sha256[:16]}{pages}"

    @property
    def tag(self) -> str:
        """The tag that marks its document in flight (per document, whatever the range)."""
        return _DOC_TAG + self.sha256[:16]


@dataclass(frozen=True, slots=True)
class ChildRun:
    """One child flow run: whole documents, or one page range of one document."""

    items: tuple[WorkItem, ...]

    @property
    def inputs(self) -> list[str]:
        """The child's ``inputs`` parameter."""
        return [item.path for item in self.items]

    @property
    def pages(self) -> int:
        """Pages it reads (as counted by the sweep)."""
        return sum(item.pages for item in self.items)

    @property
    def page_range(self) -> tuple[int | None, int | None]:
        """The ingestion page range of a ranged child; ``(None, None)`` for whole documents."""
        [first, *rest] = self.items
        return (None, None) if rest else (first.first_page, first.last_page)

    @property
    def key(self) -> str:
        """Stable name built from its items: a retried sweep's same child gets the same key."""
        if len(self.items) == 1:
            return self.items[0].key
        joined = "\n".join(item.key for item in self.items)
        return f"{len(self.items)}docs-{hashlib.sha256(joined.encode()).hexdigest()[:16]}"

    @property
    def tags(self) -> list[str]:
        """The fan-out's tag and every document's: in-flight checks stay per document."""
        return [INBOX_TAG, *dict.fromkeys(item.tag for item in self.items)]


def _expected_params_hash(params: DetectorParams) -> str:
    """The ``params_hash`` a run with ``params`` records (its weights' digests, no loading)."""
    model_sha256, refiner_sha256 = weight_digests(params)
    return writes.params_hash(
        params.model_dump(mode="json"), model_sha256=model_sha256, refiner_sha256=refiner_sha256
    )


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
    crashed: AbstractSet[str] = frozenset(),
) -> tuple[list[WorkItem], list[dict[str, Any]]]:
    """What to submit, and a row per document explaining what was left out and why.

    A PDF with more pages (in the ingestion range) than ``pages_per_child`` becomes one item
    per range of that many pages; every other document is one item, with its page count.
    Skipped: documents whose every page in range has results for ``params_hash``; documents
    with a child still in flight (``in_flight`` holds sha256 prefixes: per document, not per
    range, so a sweep with another range size cannot overlap it); documents that failed as a
    whole before (a content problem: same bytes, same failure; rerun them with ``ocr-manual``).
    Documents in ``crashed`` (sha256 prefixes) are marked to go alone.
    """
    known = known_documents(engine, (d.document_id for d in documents))
    todo: list[WorkItem] = []
    skipped: list[dict[str, Any]] = []
    for doc in documents:
        row = known.get(doc.document_id)
        if row and row.status == DocumentStatus.FAILED.value:
            skipped.append({"document": doc.path, "pages": "", "reason": "failed before"})
            continue
        if doc.document_id[:16] in in_flight:
            skipped.append({"document": doc.path, "pages": "", "reason": "running"})
            continue
        split = doc.is_pdf and pages_per_child > 0
        try:
            count = count_pages(doc, ingestion) if pages_per_child > 0 or row else 1
        except DocumentError:
            count = 1  # let a child record the failure against the document
            split = False
        first = ingestion.first_page or 1
        numbers = list(range(first, min(ingestion.last_page or count, count) + 1)) or [first]
        for lo, hi in _ranges(numbers, pages_per_child if split else 0):
            ranged = split and (lo, hi) != (numbers[0], numbers[-1])
            pages = list(range(lo, hi + 1))
            if row and page_state.document_done(
                engine, document_id=row.id, page_numbers=pages, params_hash=params_hash
            ):
                skipped.append({"document": doc.path, "pages": f"{lo}-{hi}", "reason": "done"})
                continue
            todo.append(
                WorkItem(
                    doc.path,
                    doc.document_id,
                    first_page=lo if ranged else None,
                    last_page=hi if ranged else None,
                    pages=len(pages),
                    alone=doc.document_id[:16] in crashed,
                )
            )
    return todo, skipped


def pack_children(items: Sequence[WorkItem], pages_per_child: int) -> list[ChildRun]:
    """Group whole documents, in order, into children of at most ``pages_per_child`` pages.

    A page range is a child of its own (its range is the child's ingestion range, which
    would apply to every input), and so is an item marked ``alone``. A document over the
    budget on its own (a long TIFF) is one child. 0 = one child per item. Deterministic: the
    same items give the same children, hence the same idempotency keys.
    """
    children: list[ChildRun] = []
    bin_: list[WorkItem] = []
    for item in items:
        if item.first_page is not None or item.alone or pages_per_child == 0:
            children.append(ChildRun((item,)))
            continue
        if bin_ and sum(i.pages for i in bin_) + item.pages > pages_per_child:
            children.append(ChildRun(tuple(bin_)))
            bin_ = []
        bin_.append(item)
    if bin_:
        children.append(ChildRun(tuple(bin_)))
    return children


def _documents_of_children(deployment: str, states: Sequence[str], most: int | None) -> set[str]:
    """sha256 prefixes of the documents of inbox children in ``states``: all of them, or the
    ``most`` that ended last."""
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
    from prefect.client.schemas.sorting import FlowRunSort

    keys: set[str] = set()
    page = min(most or 200, 200)
    # All: a unique key keeps offset paging exact. The latest: one page, by end time.
    order = FlowRunSort.ID_DESC if most is None else FlowRunSort.END_TIME_DESC
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(deployment)
        run_filter = FlowRunFilter(
            state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=[StateType(s) for s in states])
            ),
            tags=FlowRunFilterTags(all_=[INBOX_TAG]),
        )
        offset = 0
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=run_filter,
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
                sort=order,
                limit=page,
                offset=offset,
            )
            keys.update(
                t.removeprefix(_DOC_TAG) for r in runs for t in r.tags if t.startswith(_DOC_TAG)
            )
            offset += len(runs)
            if len(runs) < page or (most is not None and offset >= most):
                return keys


def in_flight_documents(deployment: str) -> set[str]:
    """sha256 prefixes (16 hex digits) of documents with unfinished child runs."""
    return _documents_of_children(deployment, _UNFINISHED, None)


def crashed_documents(deployment: str, most: int = 200) -> set[str]:
    """sha256 prefixes of documents in the ``most`` latest child runs that crashed.

    A child crashes when its process dies (killed for memory, a segfault in a decoder), and
    a document that kills it would kill every later child it is packed into, starving the
    documents packed with it: the sweep gives such documents a child of their own.
    """
    return _documents_of_children(deployment, ("CRASHED",), most)


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
    child: ChildRun,
    *,
    detector: DetectorOptions,
    ingestion: IngestOptions,
    database: DatabaseOptions,
    overlay: OverlayOptions,
    recognition: RecognitionOptions,
    output_dir: str,
) -> dict[str, Any]:
    first_page, last_page = child.page_range
    if first_page is not None:
        ingestion = ingestion.model_copy(update={"first_page": first_page, "last_page": last_page})
    return {
        "inputs": child.inputs,
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
    """The sweep's artifact: a row per document submitted (and its child), or left out and why."""
    rows = [
        {"document": doc, "action": "submitted", "flow_run": s["flow_run"]}
        for s in submitted
        for doc in s["documents"]
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
    pages_per_child: Annotated[int, Field(ge=0)] = PAGES_PER_CHILD,
    settle_seconds: Annotated[float, Field(ge=0)] = 10.0,
    child_deployment: str = CHILD_DEPLOYMENT,
) -> list[dict[str, Any]]:
    """Submit ``ocr-documents`` runs of up to ``pages_per_child`` pages for the new work.

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
        pages_per_child: Page budget of a child run: small documents are packed together up
            to it, a longer PDF is split into page ranges of this size; 0 = one child per
            document. Each child pays ~10 s of start-up once for all its pages.
        settle_seconds: Leave files modified more recently than this for the next sweep, so
            a file still being copied in is not taken (and recorded) as a broken one.
        child_deployment: The deployment children run as (``flow/deployment``).

    Returns:
        One row per submitted child: its documents, pages, key, flow run name and id.
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
    crashed = crashed_documents(child_deployment)
    engine = open_results_database(resolve_database_url(database))
    try:
        todo, skipped = plan_work(
            engine,
            documents,
            params_hash=_expected_params_hash(detector.resolve()),
            ingestion=ingestion,
            pages_per_child=pages_per_child,
            in_flight=in_flight,
            crashed=crashed,
        )
    finally:
        engine.dispose()
    skipped += [{"document": d.path, "pages": "", "reason": "still arriving"} for d in arriving]
    parent = flow_run.get_id() or "local"
    submitted: list[dict[str, Any]] = []
    for child in pack_children(todo, pages_per_child):
        parameters = _child_parameters(
            child,
            detector=detector,
            ingestion=ingestion,
            database=database,
            overlay=overlay,
            recognition=recognition,
            output_dir=output_dir,
        )
        run = run_deployment(
            name=child_deployment,
            parameters=parameters,
            # As the child will name itself: memo.jpg, long.pdf p1-20, 12 documents.
            flow_run_name=run_name_from_parameters(parameters),
            tags=child.tags,
            # A retried sweep re-submits the same keys: the server hands back the same runs.
            idempotency_key=f"{parent}:{child.key}",
            timeout=0,  # fan out; the workers pick the runs up
        )
        assert isinstance(run, FlowRun)  # sync context: never a coroutine
        submitted.append(
            {
                "documents": child.inputs,
                "pages": child.pages,
                "item": child.key,
                "flow_run": run.name,
                "id": str(run.id),
            }
        )
    logger.info(
        "%d documents: %d items in %d child runs submitted, %d items skipped",
        len(documents),
        len(todo),
        len(submitted),
        len(skipped),
    )
    create_table_artifact(
        key="ocr-inbox",
        table=_sweep_rows(submitted, skipped),
        description=f"Sweep of {inbox}: {len(submitted)} child runs, {len(skipped)} skipped",
    )
    return submitted
