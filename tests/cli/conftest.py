"""CLI tests: real databases on both backends; flows run on ``prefect_harness`` (root conftest)."""

from __future__ import annotations

from tests.db_fixtures import database_url, pg_admin_url, pg_url, sqlite_url

__all__ = ["database_url", "pg_admin_url", "pg_url", "sqlite_url"]
