"""The inbox's planning (what to submit, what to skip) and the deployment files, without a
server: the parameter hash matches the flow's, and plans hold on SQLite and PostgreSQL."""

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
from flows.inbox import _settled, expected_params_hash, plan_work
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


@pytest.mark.parametrize("preset", ["default", "words"])
def test_params_hash_matches_the_flow(preset: str) -> None:
    params = DetectorParams.preset(preset, device="cpu")  # type: ignore[arg-type]
    info = craft_predictor(params=params).info  # what begin_run hashes
    flow_hash = writes.params_hash(
        params.model_dump(mode="json"),
        model_sha256=info.model_sha256,
        refiner_sha256=info.refiner_sha256,
    )
    assert expected_params_hash(params) == flow_hash


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
    key = expected_params_hash(DetectorParams())
    todo, skipped = plan_work(
        engine,
        list(docs.values()),
        params_hash=key,
        ingestion=IngestOptions(),
        pages_per_child=2,
        in_flight=set(),
    )
    ranges = sorted((Path(w.path).name, w.first_page, w.last_page) for w in todo)
    assert ranges == [
        ("a.png", None, None),
        ("five.pdf", 1, 2),
        ("five.pdf", 3, 4),
        ("five.pdf", 5, 5),
        ("two.pdf", None, None),  # fits in one range: the whole document
    ]
    assert skipped == []
    assert len({w.key for w in todo}) == 5


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
        params_hash=expected_params_hash(params),
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
        params_hash=expected_params_hash(DetectorParams.preset("words")),
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


def test_deploy_refuses_without_a_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["deploy", "--inbox", str(tmp_path / "in")])
    assert result.exit_code == 1
    assert "PREFECT_API_URL is not set" in result.output


def test_serve_refuses_without_a_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
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
