"""The results database: schema, engines, migrations and the writes the flows make."""

from db.errors import (
    DatabaseError,
    DatabaseUnavailableError,
    InvalidDatabaseURLError,
    SchemaOutOfDateError,
)
from db.session import create_engine, open_database

__all__ = [
    "DatabaseError",
    "DatabaseUnavailableError",
    "InvalidDatabaseURLError",
    "SchemaOutOfDateError",
    "create_engine",
    "open_database",
]
