"""Engines for the results database, with the backend settings ocrflow relies on.

SQLite gets WAL (readers never block the writer), foreign keys (off by default in SQLite, and
the cascades depend on them) and ``BEGIN IMMEDIATE`` transactions (a writer waits for the lock
up front instead of failing half-way with "database is locked"). PostgreSQL uses psycopg 3;
plain ``postgresql://`` URLs are mapped to it. Connection failures become
:class:`DatabaseUnavailableError` with the URL (password masked) and what to check, instead of
a driver traceback.

Read-only engines (``create_engine(..., read_only=True)``, for ``ocrflow query``/``search``) are
read-only in the driver, not just by convention: SQLite opens the file with ``mode=ro`` (a
missing file is an error, never a new empty database), refuses ``ATTACH`` (attached files would
be opened writable, and created) and sets ``query_only``; PostgreSQL sessions default to
``READ ONLY`` transactions.
"""

from __future__ import annotations

import os
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from db.errors import DatabaseMissingError, DatabaseUnavailableError, InvalidDatabaseURLError
from db.settings import get_database_url

__all__ = [
    "connect",
    "create_engine",
    "mask_url",
    "open_database",
    "ping",
    "to_url",
]

READ_ONLY_OPTION = "ocrflow_read_only"
_EXAMPLES = "e.g. sqlite:///ocrflow.db or postgresql://user:password@localhost:5432/ocrflow"
_SECRET_IN_URL = re.compile(r"(://[^:/@]*:)[^@]*@")
# libpq also takes the password as a query parameter (``?password=...``).
_SECRET_IN_QUERY = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def mask_url(url: str | URL) -> str:
    """Render ``url`` for messages and logs, with any password (user info or ``password=``
    query key) replaced by ``***``."""
    text = url.render_as_string(hide_password=True) if isinstance(url, URL) else url
    return _SECRET_IN_QUERY.sub(r"\1***", _SECRET_IN_URL.sub(r"\1***@", text))


def to_url(url: str | URL | None = None) -> URL:
    """Parse and normalise a database URL (``None``: ``OCRFLOW_DATABASE_URL`` or the default).

    ``postgresql://`` and ``postgres://`` become ``postgresql+psycopg://`` (the only PostgreSQL
    driver ocrflow ships); anything but SQLite and PostgreSQL is refused up front.

    Raises:
        InvalidDatabaseURLError: the URL cannot be parsed or names another backend or driver.
    """
    raw = get_database_url() if url is None else url
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise InvalidDatabaseURLError(
            f"cannot parse database URL '{mask_url(str(raw))}' ({_EXAMPLES}); "
            "fix OCRFLOW_DATABASE_URL or --database-url"
        ) from None
    # Split by hand: get_driver_name() would import the dialect, and "postgres" has none.
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed.set(drivername="sqlite")
    raise InvalidDatabaseURLError(
        f"unsupported database URL '{mask_url(parsed)}': ocrflow supports SQLite and PostgreSQL"
        f" (psycopg 3), {_EXAMPLES}; fix OCRFLOW_DATABASE_URL or --database-url"
    )


def create_engine(
    url: str | URL | None = None, *, read_only: bool = False, **kwargs: Any
) -> Engine:
    """Create an engine for ``url`` with ocrflow's backend settings; does not connect yet.

    Args:
        url: database URL; ``None`` reads ``OCRFLOW_DATABASE_URL`` (default: ``ocrflow.db``).
        read_only: open the database read-only in the driver (see the module docstring).
        **kwargs: passed to :func:`sqlalchemy.create_engine`.

    Returns:
        The engine. Use :func:`open_database` to also check reachability and schema.

    Raises:
        DatabaseMissingError: ``read_only`` and the SQLite file does not exist.
    """
    parsed = to_url(url)
    if read_only:
        kwargs["execution_options"] = {
            **kwargs.get("execution_options", {}),
            READ_ONLY_OPTION: True,
        }
    connect_args = dict(kwargs.pop("connect_args", {}))
    if parsed.get_backend_name() == "sqlite":
        connect_args.setdefault("timeout", 30)  # seconds a writer waits for the lock
        path = _sqlite_path(parsed)
        if read_only and path is not None:
            kwargs["creator"] = _read_only_opener(path, connect_args)
        engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
        _configure_sqlite(engine, read_only=read_only)
        return engine
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", 10)
    connect_args.setdefault("application_name", "ocrflow")
    if read_only and "options" not in parsed.query:
        connect_args.setdefault("options", "-c default_transaction_read_only=on")
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, connect_args=connect_args, **kwargs)


def _sqlite_path(url: URL) -> str | None:
    """The SQLite file ``url`` names, or ``None`` for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("uri") in ("true", "1"):
        return None  # memory, or a URI the user spelled out (and its mode) themselves
    return os.path.abspath(database)


def _read_only_opener(path: str, connect_args: dict[str, Any]) -> Any:
    """A ``creator`` opening ``path`` with ``mode=ro``: the driver can neither create nor write it.

    Checked here too, before SQLite's "unable to open database file", to say what to do.
    """
    if not os.path.isfile(path):
        raise DatabaseMissingError(
            f"no database at {path}: run `ocrflow run` first or check the URL"
        )
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
    args = {**connect_args, "uri": True, "check_same_thread": False}

    def _open() -> sqlite3.Connection:
        return sqlite3.connect(uri, **args)

    return _open


def _deny_attach(action: int, *_args: Any) -> int:
    """SQLite authorizer of read-only connections: ``ATTACH`` would open (or create) a file
    writable, whatever the main database's ``mode=ro``."""
    return sqlite3.SQLITE_DENY if action == sqlite3.SQLITE_ATTACH else sqlite3.SQLITE_OK


def _configure_sqlite(engine: Engine, *, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        if read_only:
            dbapi_connection.isolation_level = None
            dbapi_connection.execute("PRAGMA query_only = ON")
            dbapi_connection.set_authorizer(_deny_attach)
            return  # journal mode and the rest are the writers' business
        # The driver must not open transactions itself: we emit BEGIN IMMEDIATE below.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL: an application crash loses nothing; a power cut may lose the last
        # commits but never leaves a half-written one (and pages are idempotent to redo).
        dbapi_connection.execute("PRAGMA synchronous = NORMAL")
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        # 64 MiB page cache (default 2 MiB): index upkeep dominates bulk region writes.
        dbapi_connection.execute("PRAGMA cache_size = -65536")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the lock up front; connect(read_only=True) readers do not need it.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def _unavailable(url: URL, error: BaseException) -> DatabaseUnavailableError:
    """Turn a driver error raised while connecting into one readable message."""
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = reason[0] if reason else type(error).__name__
    if url.password:
        detail = detail.replace(str(url.password), "***")
    if url.get_backend_name() == "sqlite":
        return DatabaseUnavailableError(
            f"cannot open SQLite database '{url.database}': {detail}. Check that its directory "
            "exists and is writable, or fix the URL (--database-url or OCRFLOW_DATABASE_URL)."
        )
    return DatabaseUnavailableError(
        f"cannot reach {mask_url(url)}: {detail}. Is the PostgreSQL server running and are "
        "host, port, user, password and database name right (--database-url or "
        "OCRFLOW_DATABASE_URL)? Create the database first: createdb <name>."
    )


@contextmanager
def connect(engine: Engine, *, read_only: bool = False) -> Iterator[Connection]:
    """Open a connection, turning a failure to connect into :class:`DatabaseUnavailableError`.

    Errors after the connection is open are left alone: they are real bugs or data problems.
    ``read_only`` lets SQLite start a deferred transaction, which does not wait for writers.
    """
    try:
        conn = engine.connect()
    except DBAPIError as error:
        raise _unavailable(engine.url, error) from None
    with conn:
        if read_only:
            conn.execution_options(**{READ_ONLY_OPTION: True})
        yield conn


def ping(engine: Engine) -> None:
    """Check that the database answers; raise :class:`DatabaseUnavailableError` otherwise."""
    with connect(engine, read_only=True) as conn:
        conn.exec_driver_sql("SELECT 1")


def open_database(
    url: str | URL | None = None, *, check_schema: bool = True, read_only: bool = False
) -> Engine:
    """Create an engine, check the database answers and (by default) that its schema is current.

    This is what flows and tasks call: every problem a user can fix surfaces here, before any
    work is done, as one :class:`db.errors.DatabaseError` naming the fix. ``read_only``: see
    :func:`create_engine`.

    Raises:
        InvalidDatabaseURLError: bad URL.
        DatabaseMissingError: ``read_only`` and no SQLite file at that path.
        DatabaseUnavailableError: server down, wrong login, or the file cannot be opened.
        SchemaOutOfDateError: schema not at this ocrflow's head; run ``ocrflow db upgrade``.
    """
    from db.migrate import ensure_current  # db.migrate imports this module

    engine = create_engine(url, read_only=read_only)
    try:
        ping(engine)
        if check_schema:
            ensure_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
