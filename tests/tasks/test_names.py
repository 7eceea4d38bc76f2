"""Run and task names say what they read, never a list repr or an absolute path."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ingest import IngestOptions
from tasks.detect import detect_pages
from tasks.ingest import discover_documents
from tasks.names import (
    batch_label,
    document_label,
    page_range_label,
    run_name,
    run_name_from_parameters,
    sweep_name,
)


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
    image = np.zeros((8, 8, 3), np.uint8)
    assert _name(discover_documents, inputs=["/srv/inbox/"]) == "discover inbox/"
    assert _name(detect_pages, images=[image] * 4, label="report.pdf p5-8") == (
        "detect report.pdf p5-8"
    )
    assert _name(detect_pages, images=[image] * 4, label="") == "detect 4 pages"
    # A name never fails its task: missing arguments leave the verb alone.
    assert _name(detect_pages) == "detect"


def test_batch_label_names_the_documents_of_a_cross_document_batch() -> None:
    assert batch_label([("/srv/inbox/report.pdf", 5), ("/srv/inbox/report.pdf", 8)]) == (
        "report.pdf p5-8"
    )
    assert batch_label([("a/letter.pdf", 2), ("b/memo.png", 1)]) == "letter.pdf p2, memo.png p1"
    four = [(f"/in/{c}.png", 1) for c in "abcd"]
    assert batch_label(four) == "a.png p1, b.png p1 +2 documents"
    assert batch_label(four[:3]) == "a.png p1, b.png p1 +1 document"
