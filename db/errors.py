"""Errors the database layer raises instead of driver tracebacks.

Each message says what went wrong and the command that fixes it, because the people who see
them run ocrflow from a shell or read them in the Prefect UI, not in a debugger.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

__all__ = [
    "DatabaseError",
    "DatabaseMissingError",
    "DatabaseUnavailableError",
    "InvalidDatabaseURLError",
    "SchemaOutOfDateError",
    "sqlstate",
]


def sqlstate(error: DBAPIError) -> str | None:
    """PostgreSQL's SQLSTATE of a driver error (None on SQLite): what decides a retry."""
    return getattr(error.orig, "sqlstate", None)


class DatabaseError(RuntimeError):
    """Base class: a problem with the results database that the user has to fix."""


class InvalidDatabaseURLError(DatabaseError, ValueError):
    """``OCRFLOW_DATABASE_URL`` cannot be parsed or names an unsupported backend."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached or opened (server down, bad host, bad path, bad login)."""


class DatabaseMissingError(DatabaseUnavailableError):
    """A read-only command was pointed at an SQLite file that does not exist (and must not
    create it)."""


class SchemaOutOfDateError(DatabaseError):
    """The database schema is not at the revision this ocrflow ships; run ``ocrflow db upgrade``."""
