"""Read-only SQL for ``ocrflow query``: analysts may explore, never change, the results.

Read-only is enforced by the database, not by parsing SQL: PostgreSQL runs the statement in a
``READ ONLY`` transaction, SQLite with ``PRAGMA query_only``; either refuses any write.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from db.session import connect

__all__ = ["run_read_only"]


def run_read_only(
    engine: Engine, sql: str, *, limit: int | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Execute one statement read-only; return column names and (at most ``limit``) rows.

    Raises:
        sqlalchemy.exc.DBAPIError: the statement failed, including any attempt to write.
    """
    with connect(engine, read_only=True) as conn:
        sqlite = conn.dialect.name == "sqlite"
        try:
            with conn.begin():
                # SQLite's pragma binds the connection, PostgreSQL's setting the transaction.
                conn.exec_driver_sql(
                    "PRAGMA query_only = ON" if sqlite else "SET TRANSACTION READ ONLY"
                )
                result = conn.exec_driver_sql(sql)
                if not result.returns_rows:
                    return [], []
                columns = list(result.keys())
                rows = result.fetchmany(limit) if limit is not None else result.fetchall()
                return columns, [tuple(r) for r in rows]
        finally:
            if sqlite:  # pooled connections must not stay read-only for the next user
                conn.exec_driver_sql("PRAGMA query_only = OFF")
                conn.commit()
