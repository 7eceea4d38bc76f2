"""Database fixtures shared by every test that touches the results database.

Import them in a ``conftest.py`` (``from db_fixtures import *``). Each test gets an empty
database on each backend:

- SQLite: a fresh file under ``tmp_path``;
- PostgreSQL: one database per test session (unique name, created at start and dropped at the
  end), emptied before each test by recreating its ``public`` schema (far faster than a new
  database per test).

The admin connection comes from ``OCRFLOW_TEST_PG_URL`` (default: the local server as
``postgres``). If PostgreSQL is unreachable the PostgreSQL tests FAIL with a message saying so:
CI must never pass with half the backends silently skipped.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from db import migrate
from db.session import create_engine

__all__ = [
    "BACKENDS",
    "FakeRegion",
    "database_url",
    "engine",
    "make_regions",
    "pg_admin_url",
    "pg_url",
    "sqlite_url",
]

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _libpq(url: str) -> str:
    """A SQLAlchemy-style URL as a libpq conninfo URL (no ``+driver``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """Admin URL used to create and drop the session's test database."""
    url = os.environ.get("OCRFLOW_TEST_PG_URL", DEFAULT_PG_ADMIN_URL)
    problem = None
    try:
        with psycopg.connect(_libpq(url), connect_timeout=5):
            pass
    except psycopg.Error as error:
        problem = " ".join(str(error).split()).rstrip(".")
    if problem is not None:  # outside the except block: no chained driver traceback
        masked = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL is required for the database tests and is unreachable at {masked}: "
            f"{problem}. Start it (e.g. `pg_ctlcluster <version> main start`) or set "
            "OCRFLOW_TEST_PG_URL to an admin URL that can CREATE DATABASE.",
            pytrace=False,
        )
    return url


@contextmanager
def pg_database(admin_url: str, name: str) -> Iterator[str]:
    """A PostgreSQL database for the test, dropped afterwards; yields its URL."""
    with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(admin_url), autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """URL of a PostgreSQL database created for this test session and dropped after it."""
    with pg_database(pg_admin_url, f"ocrflow_test_{os.getpid()}_{uuid.uuid4().hex[:8]}") as url:
        yield url


def _empty_pg(url: str) -> None:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new, empty SQLite file."""
    return f"sqlite:///{tmp_path / 'ocrflow.db'}"


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database, once per backend (tests using it run on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ocrflow.db'}"
    url: str = request.getfixturevalue("pg_url")
    _empty_pg(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """Engine on a database migrated to head, on both backends."""
    migrate.upgrade(database_url)
    eng = create_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


@dataclass(frozen=True, slots=True)
class FakeRegion:
    """Same fields as ``craft.types.Region``, without importing ``craft`` (and torch)."""

    polygon: tuple[tuple[float, float], ...]
    center: tuple[float, float]
    size: tuple[float, float]
    angle: float
    score: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Axis-aligned (x_min, y_min, x_max, y_max)."""
        xs, ys = [p[0] for p in self.polygon], [p[1] for p in self.polygon]
        return min(xs), min(ys), max(xs), max(ys)


def make_regions(count: int, *, seed: int = 0, score: float | None = None) -> list[FakeRegion]:
    """Deterministic rotated regions on a 1000 x 1400 page."""
    out = []
    for i in range(count):
        cx, cy = 50.0 + (i * 37 + seed) % 900, 40.0 + (i * 53 + seed) % 1300
        w, h, angle = 40.0 + i % 30, 12.0 + i % 7, float((i * 7 + seed) % 40 - 20)
        a = math.radians(angle)
        ux, uy = math.cos(a) * w / 2, math.sin(a) * w / 2
        vx, vy = -math.sin(a) * h / 2, math.cos(a) * h / 2
        poly = (
            (cx - ux - vx, cy - uy - vy),
            (cx + ux - vx, cy + uy - vy),
            (cx + ux + vx, cy + uy + vy),
            (cx - ux + vx, cy - uy + vy),
        )
        s = score if score is not None else ((i * 31 + seed) % 100) / 100
        out.append(FakeRegion(polygon=poly, center=(cx, cy), size=(w, h), angle=angle, score=s))
    return out


# What a run leaves in SQL, without ids or times: two runs of the same documents compare equal.
RESULT_ROWS = {
    "documents": "SELECT sha256, status, page_count, error FROM documents ORDER BY sha256",
    "pages": """SELECT d.sha256, p.page_number, p.width, p.height, p.status, p.error
                FROM pages p JOIN documents d ON d.id = p.document_id
                ORDER BY d.sha256, p.page_number""",
    "regions": """SELECT d.sha256, p.page_number, r.region_index, r.center_x, r.center_y,
                         r.width, r.height, r.angle, r.score
                  FROM regions r JOIN page_results pr ON pr.id = r.page_result_id
                  JOIN pages p ON p.id = pr.page_id JOIN documents d ON d.id = p.document_id
                  ORDER BY d.sha256, p.page_number, r.region_index""",
}


def result_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Documents, pages and regions as rows; geometry to 0.01 px and scores to 0.001 (batching
    may move the last float bits)."""
    with engine.connect() as conn:
        rows = {k: [tuple(r) for r in conn.execute(text(q))] for k, q in RESULT_ROWS.items()}
    rows["regions"] = [(*r[:3], *(round(float(v), 2) for v in r[3:8]), round(float(r[8]), 3))
                       for r in rows["regions"]]  # fmt: skip
    return rows
