"""Run and task names say what they read, never a list repr or an absolute path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest import Document, IngestOptions, Page
from tasks.detect import detect_pages
from tasks.ingest import count_document_pages, discover_documents, load_pages
from tasks.names import (
    document_label,
    page_range_label,
    run_name,
    run_name_from_parameters,
    sweep_name,
)
from tasks.persist import claim_document, register_page
from tasks.render import render_overlay


@pytest.mark.parametrize(
    ("inputs", "first", "last", "name"),
    [
        (["/srv/inbox/manual/memo.jpg"], None, None, "memo.jpg"),
        (["/srv/inbox/report.pdf"], 1, 50, "report.pdf p1-50"),
        (["report.pdf"], 7, None, "report.pdf p7-"),
        (["report.pdf"], None, 4, "report.pdf p1-4"),
        (["report.pdf"], 3, 3, "report.pdf p3"),
        (["a.png", "/x/b.pdf", "c.jpg"], None, None, "3 documents"),
        (["/srv/inbox/", "b.pdf"], None, None, "2 inputs"),  # a folder: documents not counted
        (["scans/*.pdf", "b.pdf"], None, None, "2 inputs"),
        (["/srv/inbox/"], None, None, "inbox/"),
        (["/srv/inbox"], None, None, "inbox"),
        ([], None, None, "no inputs"),
    ],
)
def test_run_name(inputs: list[str], first: int | None, last: int | None, name: str) -> None:
    assert run_name(inputs, first, last) == name
    assert "[" not in name and "/srv" not in name


def test_run_name_from_parameters_as_models_or_dicts() -> None:
    """The engine names a run with validated models; a dict (as sent) reads the same."""
    models = {"inputs": ["/d/report.pdf"], "ingestion": IngestOptions(first_page=2, last_page=9)}
    dicts = {"inputs": ["/d/report.pdf"], "ingestion": {"first_page": 2, "last_page": 9}}
    assert run_name_from_parameters(models) == run_name_from_parameters(dicts) == "report.pdf p2-9"
    assert run_name_from_parameters({"inputs": ["/d/memo.jpg"]}) == "memo.jpg"
    assert page_range_label(None, None) == "" and document_label("/d/x.png") == "x.png"


def test_sweep_name() -> None:
    assert sweep_name("/srv/ocr/inbox") == "sweep inbox"
    assert sweep_name("/srv/ocr/inbox/") == "sweep inbox/"
    assert sweep_name("") == "sweep"


def _name(task: Any, **parameters: Any) -> str:
    """The name the engine gives a run of ``task`` with these arguments."""
    name = task.task_run_name(parameters=parameters)
    assert isinstance(name, str)
    return name


def test_task_run_names_say_which_document_and_pages() -> None:
    doc = Document("ab" * 32, "/srv/inbox/report.pdf", "application/pdf", 1234)
    image = np.zeros((8, 8, 3), np.uint8)
    page = Page(doc.document_id, doc.path, 3, image)
    slice_ = IngestOptions(first_page=5, last_page=8)
    assert _name(discover_documents, inputs=["/srv/inbox/"]) == "discover inbox/"
    assert _name(count_document_pages, document=doc) == "count pages report.pdf"
    assert _name(load_pages, document=doc, options=slice_) == "load report.pdf p5-8"
    assert _name(load_pages, document=doc, options=None) == "load report.pdf"
    assert _name(detect_pages, images=[image] * 4, label="report.pdf p5-8") == (
        "detect report.pdf p5-8"
    )
    assert _name(detect_pages, images=[image] * 4, label="") == "detect 4 pages"
    assert _name(claim_document, document=doc) == "claim report.pdf"
    assert _name(register_page, page=page) == "register report.pdf p3"
    overlay = Path("/out/report-abababab/page-0003.png")
    assert _name(render_overlay, path=overlay) == "render report-abababab/page-0003.png"
    # A name never fails its task: missing arguments leave the verb alone.
    assert _name(load_pages) == "load"
