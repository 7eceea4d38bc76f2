"""Pipeline tests run the real page stream on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from tests.db_fixtures import database_url, pg_admin_url, pg_url, sqlite_url

__all__ = ["database_url", "pg_admin_url", "pg_url", "sqlite_url"]
