"""Where the results database lives, read from the environment.

The default is an SQLite file in the working directory so a new user needs nothing; set
``OCRFLOW_DATABASE_URL`` (e.g. ``postgresql://user@host:5432/ocrflow``) for production.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_DATABASE_URL", "DatabaseSettings", "get_database_url"]

DEFAULT_DATABASE_URL = "sqlite:///ocrflow.db"


class DatabaseSettings(BaseSettings):
    """Database settings; every field reads ``OCRFLOW_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix="OCRFLOW_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL


def get_database_url() -> str:
    """Return ``OCRFLOW_DATABASE_URL``, read now (not cached, so tests can change it)."""
    return DatabaseSettings().database_url
