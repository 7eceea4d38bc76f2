"""``ocrflow query`` and ``ocrflow search``: read the results database, never change it.

Mounted on the main app with ``register(app)``. SQLAlchemy is imported inside the commands so
``ocrflow --help`` stays instant.
"""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["query", "register", "search"]


def query(
    sql: Annotated[str, typer.Argument(help="One SQL statement; runs read-only.")],
    database_url: Annotated[
        str | None, typer.Option(help="Default: OCRFLOW_DATABASE_URL, else ./ocrflow.db.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Print at most this many rows.")] = 200,
) -> None:
    """Print the result of a read-only SQL query as a table."""
    from sqlalchemy.exc import DBAPIError

    from db.errors import DatabaseError
    from flows.query_output import print_query

    try:
        print_query(database_url, sql, limit=limit)
    except DatabaseError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except DBAPIError as exc:  # the database refused the statement (e.g. a write)
        typer.echo(f"error: {str(exc.orig).strip()}", err=True)
        raise typer.Exit(1) from None


def search(
    phrase: Annotated[str, typer.Argument(help="Words to find, adjacent and in order.")],
    database_url: Annotated[
        str | None, typer.Option(help="Default: OCRFLOW_DATABASE_URL, else ./ocrflow.db.")
    ] = None,
    run_id: Annotated[int | None, typer.Option(help="Only regions written by this run.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many matches.")] = 100,
) -> None:
    """Find recognised text: documents, pages and region boxes (needs runs with --recognize)."""
    from db.errors import DatabaseError
    from flows.query_output import print_search

    try:
        found = print_search(database_url, phrase, run_id=run_id, limit=limit)
    except (DatabaseError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(0 if found else 1)


def register(app: typer.Typer) -> None:
    """Add ``query`` and ``search`` to ``app`` (the ``ocrflow`` command)."""
    app.command("query")(query)
    app.command("search")(search)
