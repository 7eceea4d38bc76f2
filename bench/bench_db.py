"""Bulk-write benchmark of the results database: regions/s on SQLite and PostgreSQL.

Writes ``--pages`` pages of ``--regions`` regions each through :func:`db.writes.write_page_regions`
(one transaction per page, as the flow does) into a fresh SQLite file and a fresh PostgreSQL
database, then prints regions/s; the target is >= 50,000 regions/s on both. A second pass
rewrites every page (the replace path: delete + insert). Each measurement is repeated on a new
database (``--repeat``) and the best and median are printed: on a shared machine the best is
the closest to what the code can do, the median to what you will see.

    python bench/bench_db.py [--pages 200] [--regions 500] [--repeat 3] [--backend sqlite]

PostgreSQL: a scratch database is created and dropped through the admin URL in
``OCRFLOW_TEST_PG_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy.engine import make_url

from db import migrate, writes
from db.session import create_engine

TARGET = 50_000


@dataclass(frozen=True, slots=True)
class BenchRegion:
    polygon: tuple[tuple[float, float], ...]
    center: tuple[float, float]
    size: tuple[float, float]
    angle: float
    score: float


def make_page(count: int, seed: int) -> list[BenchRegion]:
    out = []
    for i in range(count):
        cx, cy = 50.0 + (i * 37 + seed) % 1500, 40.0 + (i * 53 + seed) % 2100
        w, h, angle = 40.0 + i % 90, 12.0 + i % 9, float((i + seed) % 30 - 15)
        a = math.radians(angle)
        ux, uy, vx, vy = (
            math.cos(a) * w / 2,
            math.sin(a) * w / 2,
            -math.sin(a) * h / 2,
            math.cos(a) * h / 2,
        )
        poly = ((cx - ux - vx, cy - uy - vy), (cx + ux - vx, cy + uy - vy),
                (cx + ux + vx, cy + uy + vy), (cx - ux + vx, cy - uy + vy))  # fmt: skip
        out.append(BenchRegion(poly, (cx, cy), (w, h), angle, ((i * 31) % 100) / 100))
    return out


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as tmp:
        yield f"sqlite:///{Path(tmp) / 'bench.db'}"


@contextmanager
def postgresql_database() -> Iterator[str]:
    admin = os.environ.get("OCRFLOW_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    libpq = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"ocrflow_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench(url: str, pages: int, per_page: int) -> tuple[float, float]:
    migrate.upgrade(url)
    engine = create_engine(url)
    run = writes.start_run(engine, params={"bench": True}, model_name="craft",
                           model_sha256="0" * 64, device="cpu", precision="fp32")  # fmt: skip
    doc = writes.upsert_document(engine, sha256="1" * 64, source_uri="bench.pdf",
                                 media_type="application/pdf", size_bytes=1)  # fmt: skip
    page_ids = [
        writes.upsert_page(engine, document_id=doc, page_number=n, width=1700, height=2200)
        for n in range(1, pages + 1)
    ]
    content = [make_page(per_page, seed) for seed in range(8)]
    rates = []
    for _ in range(2):  # first pass inserts, second replaces
        start = time.perf_counter()
        for n, page in enumerate(page_ids):
            writes.write_page_regions(engine, run_id=run, page_id=page, regions=content[n % 8])
        rates.append(pages * per_page / (time.perf_counter() - start))
    engine.dispose()
    return rates[0], rates[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--regions", type=int, default=500, help="regions per page")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", action="append", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    databases = {"sqlite": sqlite_database, "postgresql": postgresql_database}
    ok = True
    total = args.pages * args.regions
    for backend in args.backend or list(databases):
        inserts, replaces = [], []
        for _ in range(args.repeat):
            with databases[backend]() as url:
                insert, replace = bench(url, args.pages, args.regions)
            inserts.append(insert)
            replaces.append(replace)
        ok &= min(max(inserts), max(replaces)) >= TARGET
        print(
            f"{backend:<10} {total:>9,} regions x{args.repeat}  "
            f"insert best {max(inserts):>7,.0f}/s median {statistics.median(inserts):>7,.0f}/s  "
            f"replace best {max(replaces):>7,.0f}/s median {statistics.median(replaces):>7,.0f}/s"
        )
    print(f"target: {TARGET:,} regions/s ({'met' if ok else 'NOT met'})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
