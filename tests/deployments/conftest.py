"""Deployment tests: the results-database fixtures, plus a real Prefect stack in ``stack.py``."""

from __future__ import annotations

from tests.db_fixtures import database_url, pg_admin_url, pg_url, sqlite_url

__all__ = ["database_url", "pg_admin_url", "pg_url", "sqlite_url"]
