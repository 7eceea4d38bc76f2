"""Engine setup and the errors a user sees for a bad URL, a dead server or a bad path."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from db.errors import DatabaseUnavailableError, InvalidDatabaseURLError
from db.session import create_engine, mask_url, open_database, ping, to_url
from db.settings import DEFAULT_DATABASE_URL, get_database_url


def test_default_url_is_sqlite_in_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCRFLOW_DATABASE_URL", raising=False)
    assert get_database_url() == DEFAULT_DATABASE_URL == "sqlite:///ocrflow.db"
    monkeypatch.setenv("OCRFLOW_DATABASE_URL", "postgresql://u@h/db")
    assert to_url(None).drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p@h:5432/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
        ("sqlite+pysqlite:///x.db", "sqlite"),
    ],
)
def test_urls_are_normalised(url: str, driver: str) -> None:
    assert to_url(url).drivername == driver


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "cannot parse database URL 'not a url'"),
        ("mysql://u:hunter2@h/db", "unsupported database URL 'mysql://u:\\*\\*\\*@h/db'"),
        ("postgresql+psycopg2://u@h/db", "unsupported database URL"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(InvalidDatabaseURLError, match=message) as caught:
        create_engine(url)
    assert "hunter2" not in str(caught.value)
    assert "OCRFLOW_DATABASE_URL" in str(caught.value)


def test_mask_url_hides_passwords() -> None:
    assert mask_url("postgresql://u:s3cret@h/db") == "postgresql://u:***@h/db"
    assert "s3cret" not in mask_url(to_url("postgresql://u:s3cret@h/db"))
    # libpq's other spelling: the password as a query key (once it showed in the run log).
    query = "postgresql://u@h/db?sslmode=require&password=s3cret&x=1"
    assert mask_url(query) == "postgresql://u@h/db?sslmode=require&password=***&x=1"
    assert "s3cret" not in mask_url(to_url(query))


def test_server_down_is_one_clear_error() -> None:
    url = "postgresql://bob:s3cret@127.0.0.1:1/ocrflow"  # nothing listens on port 1
    with pytest.raises(DatabaseUnavailableError) as caught:
        open_database(url)
    message = str(caught.value)
    assert message.startswith("cannot reach postgresql+psycopg://bob:***@127.0.0.1:1/ocrflow")
    assert "s3cret" not in message and "OCRFLOW_DATABASE_URL" in message
    assert caught.value.__cause__ is None  # no driver traceback chained behind it


def test_missing_database_is_one_clear_error(pg_url: str) -> None:
    url = to_url(pg_url).set(database="ocrflow_no_such_database")
    with pytest.raises(DatabaseUnavailableError, match="does not exist"):
        ping(create_engine(url))


def test_unopenable_sqlite_file_is_one_clear_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'ocrflow.db'}"
    with pytest.raises(DatabaseUnavailableError, match="cannot open SQLite database"):
        open_database(url)


def test_sqlite_runs_in_wal_with_foreign_keys(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_postgresql_uses_psycopg3(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        assert engine.dialect.driver == "psycopg"
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


def test_sqlite_readers_do_not_wait_for_a_writer(sqlite_url: str) -> None:
    from db import migrate
    from db.session import connect

    migrate.upgrade(sqlite_url)
    engine = create_engine(sqlite_url, connect_args={"timeout": 0.2})
    try:
        with engine.connect() as writer, writer.begin():  # BEGIN IMMEDIATE: holds the lock
            writer.execute(sa.text("DELETE FROM documents"))
            with connect(engine, read_only=True) as reader:
                assert reader.execute(sa.text("SELECT COUNT(*) FROM documents")).scalar() == 0
    finally:
        engine.dispose()
