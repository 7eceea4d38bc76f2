"""Fault-injection tests: real ``ocrflow run`` processes killed, databases broken, files hostile."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.db_fixtures import database_url, engine, pg_admin_url, pg_url, sqlite_url
from tests.faults.support import (
    DOCUMENTS,
    Snapshot,
    run_to_end,
    snapshot,
    start_prefect_server,
    write_corpus,
)

__all__ = [
    "corpus",
    "database_url",
    "engine",
    "pg_admin_url",
    "pg_url",
    "prefect_api_url",
    "reference",
    "sqlite_url",
]


@pytest.fixture(scope="session")
def prefect_api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server for every CLI process of the session (saves ~15 s per process)."""
    home = tmp_path_factory.mktemp("prefect-home")
    with start_prefect_server(Path(home)) as url:
        yield url


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
