"""Flow tests run real flows on Prefect's test harness (``prefect_harness``, tests/conftest.py)."""

from __future__ import annotations

from tests.db_fixtures import database_url, pg_admin_url, pg_url, sqlite_url

__all__ = ["database_url", "pg_admin_url", "pg_url", "sqlite_url"]
