"""``ocrflow query`` and ``ocrflow search``: read the results database, never change it.

Mounted on the main app with ``register(app)``. SQLAlchemy is imported inside the commands so
``ocrflow --help`` stays instant. Exit codes, as in every ocrflow command: 0 done; 1 partly
done (``search``: no match, as grep); 2 nothing done (bad arguments, database missing,
unreachable or without schema, statement refused or invalid), with one ``error:`` line.
"""

from __future__ import annotations

from typing import Annotated

import typer

from cli.options import Command
from cli.query_output import OutputFormat

__all__ = ["query", "register", "search"]

UrlOpt = Annotated[
    str | None,
    typer.Option(metavar="URL", help="Default: OCRFLOW_DATABASE_URL, else ./ocrflow.db."),
]
FormatOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="table, csv or json (a list of objects). Default: table on a terminal, else csv.",
        show_default=False,
    ),
]


def _fail(error: BaseException) -> typer.Exit:
    """Print ``error`` as one ``error:`` line on stderr; the exit for "nothing done"."""
    typer.echo(f"error: {' '.join(str(error).splitlines())}", err=True)
    return typer.Exit(2)


def query(
    sql: Annotated[str, typer.Argument(metavar="SQL", help="One SQL statement; runs read-only.")],
    database_url: UrlOpt = None,
    limit: Annotated[
        int, typer.Option(min=1, metavar="N", help="Print at most this many rows.")
    ] = 200,
    output_format: FormatOpt = None,
) -> None:
    """Print the result of one read-only SQL statement (the database refuses writes).

    Exit code 0: done; 2: database missing or unreachable, or the statement refused or invalid.
    """
    from cli.query_output import default_format, print_query
    from db.errors import DatabaseError

    try:
        print_query(database_url, sql, limit=limit, output_format=output_format or default_format())
    except DatabaseError as exc:
        raise _fail(exc) from None


def search(
    phrase: Annotated[
        str, typer.Argument(metavar="PHRASE", help="Words to find, adjacent and in order.")
    ],
    database_url: UrlOpt = None,
    run_id: Annotated[
        int | None, typer.Option(metavar="ID", help="Only regions written by this run.")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, metavar="N", help="At most this many matches.")
    ] = 100,
    output_format: FormatOpt = None,
) -> None:
    """Find recognised text: documents, pages and region boxes (needs runs with --recognize).

    Exit code 0: found; 1: no match; 2: database missing, unreachable or without schema.
    """
    from cli.query_output import default_format, print_search
    from db.errors import DatabaseError

    fmt = output_format or default_format()
    try:
        found = print_search(database_url, phrase, run_id=run_id, limit=limit, output_format=fmt)
    except (DatabaseError, ValueError) as exc:
        raise _fail(exc) from None
    raise typer.Exit(0 if found else 1)


def register(app: typer.Typer) -> None:
    """Add ``query`` and ``search`` to ``app`` (the ``ocrflow`` command)."""
    app.command("query", cls=Command)(query)
    app.command("search", cls=Command)(search)
