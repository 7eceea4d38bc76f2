"""Fixtures for the database tests: real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.db_fixtures import database_url, engine, pg_admin_url, pg_url, sqlite_url

__all__ = [
    "database_url",
    "engine",
    "pg_admin_url",
    "pg_url",
    "sqlite_url",
    "timings",
]


@dataclass(frozen=True)
class Timings:
    """Stands in for ``craft.types.StageTimings`` (importing craft loads torch)."""

    preprocess: float
    forward: float
    refine: float
    postprocess: float


@pytest.fixture
def timings() -> Timings:
    return Timings(preprocess=0.01, forward=0.2, refine=0.05, postprocess=0.02)
