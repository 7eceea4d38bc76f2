"""Fixtures for the database tests: real SQLite files and a real PostgreSQL database."""

from __future__ import annotations

import pytest

from craft.types import StageTimings
from tests.db_fixtures import database_url, engine, pg_admin_url, pg_url, sqlite_url

__all__ = [
    "database_url",
    "engine",
    "pg_admin_url",
    "pg_url",
    "sqlite_url",
    "timings",
]


@pytest.fixture
def timings() -> StageTimings:
    return StageTimings(preprocess=0.01, forward=0.2, refine=0.05, postprocess=0.02)
