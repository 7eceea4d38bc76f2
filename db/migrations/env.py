"""Alembic environment: connect with ocrflow's engine settings and migrate under a lock.

The URL comes from ``config.attributes["url"]`` (set by :mod:`db.migrate`) or from
``OCRFLOW_DATABASE_URL``. On SQLite, ``render_as_batch`` lets later migrations alter tables, and
foreign keys are off while migrating so batch table rebuilds cannot cascade-delete rows; they are
checked before commit instead. On PostgreSQL an advisory lock serialises concurrent upgrades.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy.pool import NullPool

from db.models import Base
from db.search import include_object
from db.session import connect, create_engine, to_url

MIGRATION_LOCK_KEY = 0x6F637266  # "ocrf": pg_advisory_xact_lock key held while migrating

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    url = to_url(config.attributes.get("url"))
    context.configure(
        url=url.render_as_string(hide_password=False),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.get_backend_name() == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(config.attributes.get("url"), poolclass=NullPool)
    try:
        with connect(engine) as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:  # must happen outside a transaction, so on the driver connection
                driver_connection: Any = connection.connection.driver_connection
                driver_connection.execute("PRAGMA foreign_keys = OFF")
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
                include_object=include_object,  # per-backend full-text search objects
            )
            with context.begin_transaction():
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
                    )
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
