"""Fault-injection tests: real ``ocrflow run`` processes killed, databases broken, files hostile."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.db_fixtures import database_url, engine, pg_admin_url, pg_url, sqlite_url
from tests.faults.support import (
    DOCUMENTS,
    Snapshot,
    run_to_end,
    snapshot,
    write_corpus,
)

__all__ = [
    "corpus",
    "database_url",
    "engine",
    "pg_admin_url",
    "pg_url",
    "reference",
    "sqlite_url",
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inbox of ``DOCUMENTS`` one-page PNGs with one or two text lines."""
    folder = tmp_path_factory.mktemp("corpus") / "inbox"
    write_corpus(folder, DOCUMENTS)
    return folder


@pytest.fixture(scope="session")
def reference(
    corpus: Path, prefect_api_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    """The uninterrupted run's database (SQLite): the yardstick for every faulted run."""
    work = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{work / 'reference.db'}"
    assert run_to_end([corpus], url, prefect_api_url, work) == 0
    snap = snapshot(url)
    assert len(snap["documents"]) == DOCUMENTS
    assert all(status == "done" for _, status, *_ in snap["documents"])
    assert len(snap["regions"]) >= DOCUMENTS
    return snap
