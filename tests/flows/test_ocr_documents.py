"""The real flow, on Prefect's test harness, against real SQLite and PostgreSQL (no mocks)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.utilities.callables import parameter_schema
from sqlalchemy import text

from craft import craft_predictor
from db import migrate
from db.session import create_engine
from flows.ocr_documents import ocr_documents
from flows.params import DatabaseOptions, DetectorOptions
from ingest import IngestOptions, discover, iter_pages
from tests.craft.pages import text_page
from tests.flows.documents import make_inbox, write_pdf

pytestmark = pytest.mark.usefixtures("prefect_harness")

TABLES = ("documents", "pages", "page_results", "regions")


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of the result tables, minus columns that are times by nature."""
    engine = create_engine(url)
    skip = {"first_seen_at", "last_processed_at", "created_at"}
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            result = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1, 2"))
            keep = [i for i, c in enumerate(result.keys()) if c not in skip]
            out[table] = [tuple(row[i] for i in keep) for row in result]
    engine.dispose()
    return out


def run(inbox: Path, url: str, out: Path, ingestion_options: IngestOptions | None = None, **kwargs):
    return ocr_documents(
        inputs=[str(inbox)],
        detector=DetectorOptions(device="cpu"),
        ingestion=ingestion_options or IngestOptions(dpi=100),
        database=DatabaseOptions(url=url),
        output_dir=str(out),
        **kwargs,
    )


def test_flow_end_to_end(database_url: str, tmp_path: Path) -> None:
    migrate.upgrade(database_url)  # what `ocrflow db upgrade` does for a production database
    inbox = tmp_path / "inbox"
    files = make_inbox(inbox)
    summary = run(inbox, database_url, tmp_path / "out")

    by_name = {Path(d.source).name: d for d in summary.documents}
    assert by_name["letter.pdf"].status == "done" and by_name["letter.pdf"].pages == 2
    assert by_name["receipt.png"].status == "done"
    assert by_name["broken.png"].status == "failed" and "broken.png" in by_name["broken.png"].error
    assert summary.exit_code == 1

    # The database holds exactly what the detector library returns for the same pages.
    predictor = craft_predictor(device="cpu")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        for doc in discover([str(files["pdf"]), str(files["png"])]):
            for page in iter_pages(doc, IngestOptions(dpi=100)):
                [expected] = predictor([page.image])
                rows = conn.execute(
                    text(
                        "SELECT r.x0, r.y0, r.x1, r.y1, r.x2, r.y2, r.x3, r.y3, r.score "
                        "FROM regions r JOIN pages p ON p.id = r.page_id "
                        "JOIN documents d ON d.id = p.document_id "
                        "WHERE d.sha256 = :sha AND p.page_number = :n ORDER BY r.region_index"
                    ),
                    {"sha": doc.document_id, "n": page.page_number},
                ).all()
                assert len(rows) == len(expected.regions) > 0
                for row, region in zip(rows, expected.regions, strict=True):
                    assert np.allclose(row[:8], np.ravel(region.polygon), atol=1e-6)
                    assert row[8] == pytest.approx(region.score, abs=1e-6)
        failed = conn.execute(
            text("SELECT status, error FROM documents WHERE source_uri LIKE '%broken.png'")
        ).one()
        assert failed.status == "failed" and "broken.png" in failed.error
        run_row = conn.execute(text("SELECT status, params FROM runs")).one()
        assert run_row.status == "completed"
    engine.dispose()

    # Overlays exist and are green where the regions are.
    pdf_doc = by_name["letter.pdf"]
    assert len(pdf_doc.overlays) == 2
    overlay = cv2.imread(pdf_doc.overlays[0])
    pdf = next(discover([str(files["pdf"])]))
    first_page = next(iter_pages(pdf, IngestOptions(dpi=100)))
    [page1] = predictor([first_page.image])
    x, y = (round(v) for v in page1.regions[0].polygon[0])
    patch = overlay[max(y - 2, 0) : y + 3, max(x - 2, 0) : x + 3]
    assert ((patch[..., 1] > 200) & (patch[..., 0] < 80) & (patch[..., 2] < 80)).any()

    # Artifacts with the expected keys: a few fixed ones, none per document (the cards are
    # unkeyed; tests/flows/test_prefect_ui.py reads them back).
    keys = asyncio.run(_artifact_keys())
    assert {"ocr-documents", "ocr-progress"} <= keys
    assert not any(k.startswith("ocr-doc-") or k == "ocr-overlays" for k in keys)

    # Re-running with skip on does no detection and changes nothing.
    before = snapshot(database_url)
    again = run(inbox, database_url, tmp_path / "out")
    statuses = {Path(d.source).name: d.status for d in again.documents}
    assert statuses == {"letter.pdf": "skipped", "receipt.png": "skipped", "broken.png": "failed"}
    assert snapshot(database_url) == before


async def _artifact_keys() -> set[str]:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="ocr-"))
        )
    return {a.key for a in found if a.key}


def test_parameter_schema_is_typed_and_described() -> None:
    schema = parameter_schema(ocr_documents).model_dump_for_openapi()
    defs = schema.get("definitions", {})

    def check(props: dict, where: str) -> None:
        for name, prop in props.items():
            assert prop.get("description"), f"{where}.{name} has no description"
            typed = "type" in prop or "$ref" in prop or "anyOf" in prop or "allOf" in prop
            assert typed or "enum" in prop, f"{where}.{name} has no type"

    check(schema["properties"], "flow")
    for name, model in defs.items():
        if "properties" in model:
            check(model["properties"], name)
    assert {"DetectorOptions", "IngestOptions", "DatabaseOptions", "OverlayOptions"} <= set(defs)


def test_password_in_url_parameter_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Secret block"):
        run(tmp_path, "postgresql://ocr:hunter2@127.0.0.1:5432/x", tmp_path / "out")


def test_production_database_behind_schema_is_one_clear_error(pg_url: str, tmp_path: Path) -> None:
    from tests.db_fixtures import _empty_pg

    _empty_pg(pg_url)
    with pytest.raises(Exception, match="ocrflow db upgrade"):
        run(tmp_path, pg_url, tmp_path / "out")


def test_document_status_says_whether_its_pages_are_there(
    database_url: str, tmp_path: Path
) -> None:
    """``done`` only when every selected page is stored; ``partial``/``failed`` otherwise, and a
    page range that selects nothing fails the document with the reason (never "done")."""
    migrate.upgrade(database_url)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    big, small = text_page(["Invoice 17"], size=(300, 520)), text_page(["p2"], size=(90, 200))
    write_pdf(inbox / "mixed.pdf", [big, small])  # page 2 under min_side_px: it fails
    cv2.imwrite(str(inbox / "tiny.png"), small)  # its only page fails
    options = IngestOptions(dpi=100, min_side_px=120)
    summary = run(inbox, database_url, tmp_path / "out", ingestion_options=options)
    by_name = {Path(d.source).name: d for d in summary.documents}
    assert (by_name["mixed.pdf"].status, by_name["mixed.pdf"].pages_failed) == ("partial", 1)
    assert by_name["tiny.png"].status == "failed" and "min_side_px" in by_name["tiny.png"].error
    assert summary.exit_code == 1

    past_end = IngestOptions(dpi=100, first_page=5)
    backwards = IngestOptions(dpi=100, first_page=2, last_page=1)
    for options, reason in ((past_end, "only 2 page"), (backwards, "before first_page")):
        [doc] = run(inbox / "mixed.pdf", database_url, tmp_path / "out", ingestion_options=options
                    ).documents  # fmt: skip
        assert (doc.status, doc.pages) == ("failed", 0), doc
        assert reason in (doc.error or ""), doc.error

    engine = create_engine(database_url)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT source_uri, status FROM documents")).all())
        viewed = conn.execute(text("SELECT DISTINCT document_status FROM page_summary")).all()
        # The default preset looks for turned pages: a stored page says how it found it.
        turned = conn.execute(text("SELECT orientation FROM pages WHERE status = 'done'")).all()
    engine.dispose()
    assert turned == [(0,)]
    by_file = {Path(k).name: v for k, v in statuses.items()}
    assert by_file == {"mixed.pdf": "failed", "tiny.png": "failed"}  # the last run's outcome
    assert viewed == [("failed",)]
