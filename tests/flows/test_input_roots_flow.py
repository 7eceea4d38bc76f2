"""The real flow and OCRFLOW_INPUT_ROOTS: deployment runs outside the roots fail before reading;
escaping symlinks in a folder are refused per file; unreadable files are recorded with retries.

"From a deployment" is Prefect's own runtime value, mocked through the environment variable
Prefect documents for it (``PREFECT__RUNTIME__DEPLOYMENT__ID``); the real-deployment version
is tests/deployments/test_input_roots_deployment.py.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import cv2
import pytest
from sqlalchemy import text

from db import migrate, writes
from db.errors import DatabaseUnavailableError
from db.session import create_engine
from flows.ocr_documents import ocr_documents
from flows.params import DatabaseOptions, DetectorOptions, OverlayOptions
from ingest import IngestOptions
from ingest.roots import ROOTS_SETTING, InputRootsError
from tests.craft.pages import text_page

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _run(inputs: list[str], url: str, tmp_path: Path, **kwargs: Any) -> Any:
    return ocr_documents(
        inputs=inputs,
        detector=DetectorOptions(device="cpu", width=320, mag_ratio=1),
        ingestion=IngestOptions(dpi=100),
        database=DatabaseOptions(url=url),
        overlay=OverlayOptions(enabled=False),
        output_dir=str(tmp_path / "out"),
        **kwargs,
    )


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    cv2.imwrite(str(root / "in.png"), text_page(["Invoice 12"], size=(120, 240)))
    cv2.imwrite(str(outside / "secret.png"), text_page(["Salary 99"], size=(120, 240)))
    return {"root": root, "outside": outside}


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


@pytest.mark.parametrize("roots", ["root", "none"])
def test_deployment_run_outside_the_roots_fails_before_touching_anything(
    roots: str, tree: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(uuid.uuid4()))
    if roots == "root":
        monkeypatch.setenv(ROOTS_SETTING, str(tree["root"]))
    else:
        monkeypatch.delenv(ROOTS_SETTING, raising=False)
    db_file = tmp_path / "never.db"
    secret = str(tree["outside"] / "secret.png")
    state = _run([secret], f"sqlite:///{db_file}", tmp_path, return_state=True)
    assert state.is_failed()
    with pytest.raises(InputRootsError) as err:
        state.result()
    if roots == "root":
        assert f"input '{secret}'" in str(err.value) and ROOTS_SETTING in str(err.value)
    else:
        assert f"{ROOTS_SETTING} is not set" in str(err.value)
    assert not db_file.exists(), "the run opened its database before refusing the input"


def test_escaping_symlink_in_a_folder_is_refused_the_rest_is_processed(
    tree: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tree["root"]
    (root / "evil.png").symlink_to(tree["outside"] / "secret.png")
    monkeypatch.setenv(ROOTS_SETTING, str(root))  # a local run: checked because configured
    url = f"sqlite:///{tmp_path / 'r.db'}"
    summary = _run([str(root)], url, tmp_path)
    by_name = {Path(d.source).name: d for d in summary.documents}
    assert by_name["in.png"].status == "done"
    assert by_name["evil.png"].status == "failed" and by_name["evil.png"].sha256 is None
    assert "outside the allowed input roots" in (by_name["evil.png"].error or "")
    assert summary.exit_code == 1
    # Nothing of the outside file reached the database (it was never opened).
    assert [Path(str(r[0])).name for r in _rows(url, "SELECT source_uri FROM documents")] == [
        "in.png"
    ]


def test_unreadable_file_is_recorded_through_the_retried_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "notes.pdf").write_text("not a pdf at all, just some notes\n")
    url = f"sqlite:///{tmp_path / 'r.db'}"
    migrate.upgrade(url)
    real = writes.upsert_document
    calls: list[int] = []

    def flaky(*args: object, **kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise DatabaseUnavailableError("the database restarted (injected)")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writes, "upsert_document", flaky)
    summary = _run([str(inbox / "notes.pdf")], url, tmp_path)
    assert len(calls) == 2  # failed once, retried once
    [doc] = summary.documents
    assert doc.status == "failed" and doc.sha256 is not None
    [(status, error)] = _rows(url, "SELECT status, error FROM documents")
    assert status == "failed" and "notes.pdf" in str(error)
