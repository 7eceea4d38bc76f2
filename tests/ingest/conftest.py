"""Fixtures for ingestion tests (builders live in ``tests.ingest.builders``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[2] / ".." / "shared" / "golden"


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a file under tmp_path and return its path."""

    def _write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    return _write


@pytest.fixture
def golden_pdf() -> Path:
    path = GOLDEN / "natnotes.pdf"
    if not path.is_file():
        pytest.skip(f"golden PDF not found at {path} (the shared/ checkout is missing)")
    return path
