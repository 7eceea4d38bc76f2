"""Read-only SQL for ``ocrflow query``: analysts may explore, never change, the results.

Read-only is enforced by the database and its driver, not by parsing SQL. Give
:func:`run_read_only` an engine from ``create_engine(..., read_only=True)`` (see
:mod:`db.session`): SQLite then has the file open ``mode=ro`` with ``query_only`` and no
``ATTACH``; PostgreSQL runs the statement in a ``READ ONLY`` transaction. On PostgreSQL the
statement goes through the extended protocol, which takes exactly one statement, so
``COMMIT; DELETE ...`` cannot end the read-only transaction and write after it (the simple
protocol, psycopg's default without parameters, would run both). The Python SQLite driver runs
one statement per call by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from db.errors import DatabaseError
from db.session import READ_ONLY_OPTION, connect

__all__ = ["QueryError", "QueryResult", "run_read_only"]


class QueryError(DatabaseError):
    """The database refused the statement (a write, a syntax error, an unknown table...)."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    """Column names, the rows fetched, and whether ``limit`` left more rows unfetched."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


def run_read_only(engine: Engine, sql: str, *, limit: int | None = None) -> QueryResult:
    """Execute one statement read-only; return its columns and at most ``limit`` rows.

    Raises:
        QueryError: the statement failed, including any attempt to write.
        DatabaseUnavailableError: the database cannot be reached.
    """
    with connect(engine, read_only=True) as conn:
        sqlite = conn.dialect.name == "sqlite"
        # A read-only engine's SQLite connections are query_only for good; others only here.
        toggle = sqlite and not conn.get_execution_options().get(READ_ONLY_OPTION, False)
        try:
            with conn.begin():
                if toggle:
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                if not sqlite:
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                fetch = None if limit is None else limit + 1  # one more: were rows left out?
                columns, rows = (_sqlite if sqlite else _postgresql)(conn, sql, fetch)
        except DBAPIError as error:
            raise QueryError(_reason(error.orig, sqlite)) from None
        except psycopg.Error as error:
            raise QueryError(_reason(error, sqlite)) from None
        finally:
            if toggle:  # pooled connections must not stay read-only for the next user
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                conn.commit()
    if limit is not None and len(rows) > limit:
        return QueryResult(columns, rows[:limit], truncated=True)
    return QueryResult(columns, rows)


def _sqlite(
    conn: Connection, sql: str, fetch: int | None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    result = conn.exec_driver_sql(sql)
    if not result.returns_rows:
        return [], []
    rows = result.fetchmany(fetch) if fetch is not None else result.fetchall()
    return list(result.keys()), [tuple(r) for r in rows]


def _postgresql(
    conn: Connection, sql: str, fetch: int | None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, psycopg.Connection)
    with raw.cursor() as cursor:
        cursor.execute(sql, prepare=True)  # prepared = extended protocol = one statement
        if cursor.description is None:
            return [], []
        rows = cursor.fetchmany(fetch) if fetch is not None else cursor.fetchall()
        return [d.name for d in cursor.description], [tuple(r) for r in rows]


def _reason(error: BaseException | None, sqlite: bool) -> str:
    """The driver's message (first line and PostgreSQL's DETAIL), with a hint where one helps."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    detail = next((line for line in lines[1:] if line.startswith("DETAIL:")), None)
    if detail:
        text += f" ({detail})"
    if sqlite and text == "not authorized":
        text += ": read-only queries cannot ATTACH databases"
    if "multiple commands" in text:
        text += ": ocrflow query runs one statement"
    return text
