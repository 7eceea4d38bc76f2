"""The inbox's planning (what to submit, what to skip, how it is packed into child runs) and
the deployment files, without a server: the parameter hash the inbox expects is the one a run
records, and plans hold on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
import typer
import yaml
from prefect.flows import Flow, load_flow_from_entrypoint
from sqlalchemy import Engine
from typer.testing import CliRunner

from cli.deploy import register
from craft import craft_predictor
from craft.params import DetectorParams
from db import migrate, writes
from db.models import DocumentStatus
from db.session import create_engine
from deployments.deploy import PREFECT_FILE, PROJECT_DIR, DeploySettings, deploy_env
from flows.inbox import (
    INBOX_TAG,
    PAGES_PER_CHILD,
    ChildRun,
    WorkItem,
    _child_parameters,
    _expected_params_hash,
    _settled,
    pack_children,
    plan_work,
)
from flows.params import DatabaseOptions, DetectorOptions, OverlayOptions, RecognitionOptions
from ingest import Document, IngestOptions, discover
from tests.craft.pages import text_page
from tests.db_fixtures import make_regions
from tests.flows.documents import write_pdf


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    migrate.upgrade(database_url)
    eng = create_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def docs(tmp_path: Path) -> dict[str, Document]:
    """A one-page image, a 2-page and a 5-page PDF."""
    page = text_page(["Invoice 12"], size=(200, 320))
    cv2.imwrite(str(tmp_path / "a.png"), page)
    write_pdf(tmp_path / "two.pdf", [page, page[::-1].copy()])
    write_pdf(tmp_path / "five.pdf", [text_page([f"page {i}"], size=(200, 320)) for i in range(5)])
    found = [d for d in discover([str(tmp_path)]) if isinstance(d, Document)]
    return {Path(d.path).name: d for d in found}


@pytest.mark.parametrize(
    "params",
    [
        DetectorParams.preset("default", device="cpu"),
        DetectorParams.preset("words", device="cpu", precision="fast"),
        DetectorParams(device="cpu", with_refiner=False),
    ],
    ids=["default", "words-fast", "no-refiner"],
)
def test_expected_hash_is_what_a_run_records(engine: Engine, params: DetectorParams) -> None:
    """The inbox's hash (no model loaded) equals the one a run stores: a run records the
    loaded predictor's weights (``ModelInfo``) with its parameters, as here."""
    info = craft_predictor(params=params).info
    run_id = writes.start_run(
        engine,
        params=params.model_dump(mode="json"),
        model_name=info.model,
        model_sha256=info.model_sha256,
        refiner_name=info.refiner,
        refiner_sha256=info.refiner_sha256,
        device=info.device,
        precision=info.precision,
    )
    recorded = writes.run_params_hash(engine, run_id)
    assert _expected_params_hash(params) == recorded
    assert _expected_params_hash(params.model_copy(update={"text_threshold": 0.5})) != recorded


def _mark_done(engine: Engine, doc: Document, pages: range, params: DetectorParams) -> None:
    run = writes.start_run(
        engine,
        params=params.model_dump(mode="json"),
        model_name="craft_mlt_25k",
        model_sha256=expected_sha("craft_mlt_25k"),
        refiner_name="craft_refiner_CTW1500" if params.with_refiner else None,
        refiner_sha256=expected_sha("craft_refiner_CTW1500") if params.with_refiner else None,
        device="cpu",
        precision="fp32",
    )
    doc_id = writes.upsert_document(
        engine,
        sha256=doc.document_id,
        source_uri=doc.path,
        media_type=doc.media_type,
        size_bytes=doc.size_bytes,
    )
    for n in pages:
        page_id = writes.upsert_page(engine, document_id=doc_id, page_number=n, width=9, height=9)
        writes.write_page_regions(engine, run_id=run, page_id=page_id, regions=make_regions(2))


def expected_sha(name: str) -> str:
    from craft.weights_store import WEIGHTS

    return WEIGHTS[name].sha256


def test_plan_new_documents_and_page_ranges(engine: Engine, docs: dict[str, Document]) -> None:
    key = _expected_params_hash(DetectorParams())
    todo, skipped = plan_work(
        engine,
        list(docs.values()),
        params_hash=key,
        ingestion=IngestOptions(),
        pages_per_child=2,
        in_flight=set(),
    )
    ranges = sorted((Path(w.path).name, w.first_page, w.last_page, w.pages) for w in todo)
    assert ranges == [
        ("a.png", None, None, 1),
        ("five.pdf", 1, 2, 2),
        ("five.pdf", 3, 4, 2),
        ("five.pdf", 5, 5, 1),
        ("two.pdf", None, None, 2),  # fits in one range: the whole document
    ]
    assert skipped == []
    assert len({w.key for w in todo}) == 5


def test_small_documents_share_one_child(engine: Engine, docs: dict[str, Document]) -> None:
    """At the default budget the three documents (8 pages) are one child reading all three."""
    todo, _ = plan_work(
        engine,
        list(docs.values()),
        params_hash=_expected_params_hash(DetectorParams()),
        ingestion=IngestOptions(),
        pages_per_child=PAGES_PER_CHILD,
        in_flight=set(),
    )
    [child] = pack_children(todo, PAGES_PER_CHILD)
    assert sorted(child.inputs) == sorted(d.path for d in docs.values())
    assert child.pages == 8 and child.page_range == (None, None)
    assert sorted(child.tags) == sorted(
        [INBOX_TAG] + ["ocr-doc-" + d.document_id[:16] for d in docs.values()]
    )


def _item(name: str, pages: int = 1, first: int | None = None, last: int | None = None) -> WorkItem:
    return WorkItem(f"/in/{name}", (name * 64)[:64], first, last, pages)


def test_pack_children_fills_the_page_budget_in_order() -> None:
    a, b, c, d = _item("a"), _item("b"), _item("c", 2), _item("d")
    ranged = _item("r", 2, 1, 2)
    tiff = _item("t", 3)  # over the budget on its own: still one child
    items = [a, b, c, ranged, d, tiff]
    children = pack_children(items, 2)
    assert [c.items for c in children] == [(a, b), (ranged,), (c,), (d,), (tiff,)]
    assert [c.pages for c in children] == [2, 2, 2, 1, 3]
    assert children[1].page_range == (1, 2)  # only a ranged child carries a range
    assert all(c.page_range == (None, None) for i, c in enumerate(children) if i != 1)
    assert children[0].tags == [INBOX_TAG, a.tag, b.tag]
    assert children[0].inputs == ["/in/a", "/in/b"]
    # 0: one child per item, as before packing existed.
    assert [c.items for c in pack_children(items, 0)] == [(i,) for i in items]


def test_documents_of_a_crashed_child_go_alone(engine: Engine, docs: dict[str, Document]) -> None:
    """A document in a child that crashed (its process died) is not packed again: if it is
    what kills the process, it must not take the documents packed with it down each time."""
    crashed = {docs["two.pdf"].document_id[:16]}
    todo, _ = plan_work(
        engine,
        list(docs.values()),
        params_hash=_expected_params_hash(DetectorParams()),
        ingestion=IngestOptions(),
        pages_per_child=PAGES_PER_CHILD,
        in_flight=set(),
        crashed=crashed,
    )
    children = pack_children(todo, PAGES_PER_CHILD)
    assert sorted(sorted(Path(p).name for p in c.inputs) for c in children) == [
        ["a.png", "five.pdf"],
        ["two.pdf"],
    ]


def test_child_keys_are_stable_and_distinct() -> None:
    """A retried sweep rebuilds the same children with the same idempotency keys; no two
    different children share one (one item's key is its own, as before packing)."""
    items = [_item(n) for n in "abcdef"]
    keys = [c.key for c in pack_children(items, 2)]
    assert keys == [c.key for c in pack_children(list(items), 2)]
    assert len(set(keys)) == 3
    others = {c.key for c in pack_children(items, 3)} | {c.key for c in pack_children(items, 0)}
    assert not set(keys) & others
    assert ChildRun((items[0],)).key == items[0].key


def test_child_parameters_carry_a_range_only_for_a_ranged_child() -> None:
    common: dict[str, Any] = {
        "detector": DetectorOptions(),
        "ingestion": IngestOptions(dpi=200),
        "database": DatabaseOptions(),
        "overlay": OverlayOptions(),
        "recognition": RecognitionOptions(),
        "output_dir": "out",
    }
    packed = _child_parameters(ChildRun((_item("a"), _item("b", 2))), **common)
    assert packed["inputs"] == ["/in/a", "/in/b"]
    assert packed["ingestion"].get("first_page") is None and packed["ingestion"]["dpi"] == 200
    ranged = _child_parameters(ChildRun((_item("r", 20, 21, 40),)), **common)
    assert ranged["inputs"] == ["/in/r"]
    assert (ranged["ingestion"]["first_page"], ranged["ingestion"]["last_page"]) == (21, 40)
    assert ranged["skip_processed"] is True


def test_plan_skips_done_running_and_failed(engine: Engine, docs: dict[str, Document]) -> None:
    params = DetectorParams()
    _mark_done(engine, docs["two.pdf"], range(1, 3), params)
    _mark_done(engine, docs["five.pdf"], range(1, 3), params)  # first range only
    failed = writes.upsert_document(
        engine, sha256=docs["a.png"].document_id, source_uri="a.png", media_type="image/png",
        size_bytes=1,
    )  # fmt: skip
    writes.set_document_status(engine, failed, DocumentStatus.FAILED, error="truncated")
    todo, skipped = plan_work(
        engine,
        list(docs.values()),
        params_hash=_expected_params_hash(params),
        ingestion=IngestOptions(),
        pages_per_child=2,
        in_flight=set(),
    )
    assert sorted((Path(w.path).name, w.first_page) for w in todo) == [
        ("five.pdf", 3),
        ("five.pdf", 5),
    ]
    reasons = sorted((Path(s["document"]).name, s["reason"]) for s in skipped)
    assert reasons == [
        ("a.png", "failed before"),
        ("five.pdf", "done"),
        ("two.pdf", "done"),
    ]

    # Other parameters: nothing counts as done; a document in flight waits for its child.
    todo, skipped = plan_work(
        engine,
        [docs["two.pdf"], docs["five.pdf"]],
        params_hash=_expected_params_hash(DetectorParams.preset("words")),
        ingestion=IngestOptions(),
        pages_per_child=0,
        in_flight={docs["five.pdf"].document_id[:16]},
    )
    assert [(Path(w.path).name, w.first_page) for w in todo] == [("two.pdf", None)]
    assert [s["reason"] for s in skipped] == ["running"]


def test_prefect_yaml_runs_the_project_from_its_directory() -> None:
    config = yaml.safe_load(PREFECT_FILE.read_text())
    assert "git_clone" not in PREFECT_FILE.read_text()
    assert config["pull"] == [
        {
            "prefect.deployments.steps.set_working_directory": {
                "directory": "{{ $OCRFLOW_PROJECT_DIR }}"
            }
        }
    ]
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {"ocr-inbox", "ocr-manual"} <= deployments.keys()
    inbox = deployments["ocr-inbox"]
    assert inbox["schedules"][0]["cron"] == "{{ $OCRFLOW_INBOX_CRON }}"
    assert inbox["concurrency_limit"]["limit"] == 1
    for d in deployments.values():
        assert d["work_pool"]["job_variables"]["env"]["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
        flow: Flow[..., Any] = load_flow_from_entrypoint(str(PROJECT_DIR / d["entrypoint"]))
        assert flow.name in ("ocr-inbox", "ocr-documents")
    # Every variable the file uses is one `ocrflow deploy` sets.
    env = deploy_env(DeploySettings(inbox=Path("in"), output_dir=Path("out")))
    for name in ("PROJECT_DIR", "WORK_POOL", "GPU_WORK_POOL", "INBOX", "INBOX_CRON"):
        assert f"{{{{ $OCRFLOW_{name} }}}}" in PREFECT_FILE.read_text()
        assert env[f"OCRFLOW_{name}"]


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No Prefect server configured: neither in the environment nor in this process's settings
    (the session's test harness, once started by an earlier test, sets one there)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        yield


@pytest.mark.usefixtures("no_server")
def test_deploy_refuses_without_a_server(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["deploy", "--inbox", str(tmp_path / "in")])
    assert result.exit_code == 1
    assert "PREFECT_API_URL is not set" in result.output


@pytest.mark.usefixtures("no_server")
def test_serve_refuses_without_a_server(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["serve", "--inbox", str(tmp_path / "in")])
    assert result.exit_code == 1
    assert "PREFECT_API_URL is not set" in result.output


def test_files_still_arriving_wait_for_the_next_sweep(docs: dict[str, Document]) -> None:
    old = time.time() - 60
    for doc in docs.values():
        os.utime(doc.path, (old, old))
    os.utime(docs["a.png"].path)  # just written
    settled, arriving = _settled(list(docs.values()), 10)
    assert [Path(d.path).name for d in arriving] == ["a.png"]
    assert sorted(Path(d.path).name for d in settled) == ["five.pdf", "two.pdf"]
