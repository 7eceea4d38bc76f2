"""Flow tests run real flows on Prefect's test harness (one temporary server per session)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prefect.testing.utilities import prefect_test_harness

from tests.db_fixtures import database_url, pg_admin_url, pg_url, sqlite_url

__all__ = ["database_url", "pg_admin_url", "pg_url", "prefect_harness", "sqlite_url"]


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect server and database for the whole session (~15 s to start)."""
    with prefect_test_harness(server_startup_timeout=120):
        yield
