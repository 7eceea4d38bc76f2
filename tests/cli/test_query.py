"""``ocrflow query``, ``ocrflow search`` and ``ocrflow db`` through the real console script.

Each backend's database is written once per module with :mod:`db.writes` (no detector run):
run 1 has recognised text, run 2 only regions. Read-only means nothing is created or changed,
output formats suit a terminal (a table cut to its width) and a pipe (csv, json), and exit
codes mean the same everywhere: 0 done, 1 partly done (search: no match), 2 nothing done.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pytest
import sqlalchemy as sa
from rich.cells import cell_len
from sqlalchemy.engine import make_url

from db import migrate, writes
from db.recognition_writes import write_region_texts
from db.session import create_engine
from tests.db_fixtures import BACKENDS, make_regions, pg_database

OCRFLOW = Path(sys.executable).with_name("ocrflow")
LONG_URI = "/data/scans/2026/november/customer-correspondence/acme-invoice-4711-final.pdf"
FIRST_REVISION = "4f22598ae99b"


class Read(NamedTuple):
    text: str
    confidence: float


TEXTS = [Read("Invoice number 4711", 0.93), Read("Payment terms: 30 days", 0.88), None]


@dataclass(frozen=True)
class Results:
    url: str
    recognised_run: int
    unread_run: int


def ocrflow(
    *args: str, columns: int = 80, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``ocrflow`` with stdout a pipe, as a script would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCRFLOW_DATABASE")}
    env.update(COLUMNS=str(columns), LINES="50", NO_COLOR="1", TERM="dumb")
    return subprocess.run(
        [str(OCRFLOW), *args], capture_output=True, text=True, env=env, timeout=120,
        check=False,
    )  # fmt: skip


def ocrflow_each(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent ``ocrflow`` commands side by side (each is mostly start-up time)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda command: ocrflow(*command), commands))


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exit code 2 and said why in one ``error:`` line."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.strip()


def seed(url: str) -> Results:
    migrate.upgrade(url)
    engine = create_engine(url)
    try:
        runs = [
            writes.start_run(
                engine,
                params={"preset": "default", "n": n},
                model_name="craft_mlt_25k",
                model_sha256="a" * 64,
                device="cpu",
                precision="fp32",
            )
            for n in (1, 2)
        ]
        for run, name in zip(runs, (LONG_URI, "/data/scans/memo.png"), strict=True):
            doc = writes.upsert_document(
                engine, sha256=hashlib.sha256(name.encode()).hexdigest(), source_uri=name,
                media_type="application/pdf", size_bytes=100, page_count=1,
            )  # fmt: skip
            page = writes.upsert_page(engine, document_id=doc, page_number=1, width=1000,
                                      height=1400, dpi=150)  # fmt: skip
            writes.write_page_regions(engine, run_id=run, page_id=page, regions=make_regions(3))
            if run == runs[0]:
                write_region_texts(engine, run_id=run, page_id=page, texts=TEXTS)
    finally:
        engine.dispose()  # SQLite: checkpointed, no -wal/-shm file left beside it
    return Results(url, recognised_run=runs[0], unread_run=runs[1])


@pytest.fixture(scope="module")
def own_pg_database(pg_admin_url: str) -> Iterator[str]:
    """A PostgreSQL database for this module alone (the shared one is emptied per test)."""
    with pg_database(pg_admin_url, f"ocrflow_query_{uuid.uuid4().hex[:10]}") as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Results:
    if request.param == "sqlite":
        return seed(f"sqlite:///{tmp_path_factory.mktemp('query') / 'ocrflow.db'}")
    return seed(request.getfixturevalue("own_pg_database"))


@pytest.fixture(scope="module")
def sqlite_results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return seed(f"sqlite:///{tmp_path_factory.mktemp('query-ro') / 'ocrflow.db'}")


def test_pipes_get_csv_and_json_on_request(results: Results) -> None:
    url = ["--database-url", results.url]
    done = ocrflow("query", "SELECT run_id, region_index, text FROM region_details "
                   "ORDER BY run_id, region_index", *url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # data on stdout, nothing else to say
    rows = list(csv.reader(io.StringIO(done.stdout)))
    r1, r2 = str(results.recognised_run), str(results.unread_run)
    assert rows == [
        ["run_id", "region_index", "text"],
        [r1, "0", "Invoice number 4711"], [r1, "1", "Payment terms: 30 days"], [r1, "2", ""],
        [r2, "0", ""], [r2, "1", ""], [r2, "2", ""],
    ]  # fmt: skip

    done = ocrflow("query", "SELECT id, started_at, score, params FROM runs r JOIN regions g "
                   "ON g.run_id = r.id ORDER BY id, region_index LIMIT 2", *url,
                   "--format", "json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [sorted(r) for r in records] == [["id", "params", "score", "started_at"]] * 2
    assert isinstance(records[0]["score"], float)
    params, expected = records[0]["params"], {"preset": "default", "n": 1}
    if results.url.startswith("sqlite"):
        assert json.loads(params) == expected  # SQLite keeps json as text
    else:
        assert params == expected  # PostgreSQL's json: an object
    dt.datetime.fromisoformat(records[0]["started_at"])  # ISO 8601 on both backends

    done = ocrflow("query", "SELECT id FROM runs ORDER BY id", *url, "--limit", "1")
    assert done.stdout.splitlines() == ["id", str(results.recognised_run)]
    assert "first 1 rows shown" in done.stderr


def test_table_cuts_cells_to_fit_the_terminal(results: Results) -> None:
    query = "SELECT * FROM region_details ORDER BY run_id, region_index LIMIT 3"
    done = ocrflow("query", query, "--database-url", results.url, "--format", "table")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), done.stdout
    assert "region_details" not in done.stdout  # the SQL is not the table's title
    data = [line for line in lines if line.startswith("│")]
    assert len(data) == 3  # one line per row, nothing wrapped
    cells = [[c.strip() for c in line.strip("│").split("│")] for line in data]
    assert len(cells[0]) >= 4 and all(all(c) for c in cells), done.stdout  # readable, not empty
    assert cells[0][0] == "1" and any(c.endswith("…") for c in cells[0])  # document_id; cut
    left_out = re.search(r"(\d+) of (\d+) columns left out to fit 80 columns", done.stderr)
    assert left_out, done.stderr
    assert int(left_out[1]) + len(cells[0]) == int(left_out[2])

    narrow = ("SELECT source_uri, text, '[b]x[/b]' AS \"[raw]\" FROM region_details "
              "ORDER BY run_id, region_index LIMIT 3")  # fmt: skip
    wide = ocrflow("query", narrow, "--database-url", results.url, "--format", "table",
                   columns=200)  # fmt: skip
    assert LONG_URI in wide.stdout and "Invoice number 4711" in wide.stdout  # room: not cut
    assert "[raw]" in wide.stdout and "[b]x[/b]" in wide.stdout  # data, not rich markup
    assert wide.stderr == ""


def test_writes_are_refused_and_change_nothing(results: Results) -> None:
    statements = [
        "DELETE FROM regions",
        "COMMIT; DELETE FROM regions",  # must not end the read-only transaction and write
        "COMMIT; CREATE TABLE intruder (x integer)",
        "SELEC 1",
    ]
    for done in ocrflow_each(*(["query", s, "--database-url", results.url] for s in statements)):
        one_error_line(done)
    engine = create_engine(results.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM regions")).scalar() == 6
        assert "intruder" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


EMPTY = hashlib.sha256(b"").hexdigest()


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_sqlite_query_creates_and_changes_no_file(sqlite_results: Results) -> None:
    db_file = Path(make_url(sqlite_results.url).database or "")
    folder = db_file.parent
    before = _snapshot(folder)
    assert list(before) == ["ocrflow.db"]
    url = ["--database-url", sqlite_results.url]
    statements = (
        f"ATTACH DATABASE '{folder / 'new.db'}' AS other",
        f"ATTACH DATABASE 'file:{folder / 'uri.db'}?mode=rwc' AS other",
        f"VACUUM INTO '{folder / 'copy.db'}'",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA user_version = 7",
    )
    for statement, done in zip(
        statements, ocrflow_each(*(["query", s, *url] for s in statements)), strict=True
    ):
        error = one_error_line(done)
        assert "ATTACH" in error or "ATTACH" not in statement, error
    reads = ocrflow_each(["query", "SELECT count(*) FROM regions", *url], ["search", "x", *url],
                         ["search", "invoice", *url], ["db", "current", *url])  # fmt: skip
    assert [done.returncode for done in reads] == [0, 1, 0, 0]
    after = _snapshot(folder)
    # A reader of a WAL database needs SQLite's shared-memory index: a mode=ro reader may
    # leave it and an empty -wal beside the file (a read-write one would remove them).
    assert after.pop("ocrflow.db-wal", EMPTY) == EMPTY
    after.pop("ocrflow.db-shm", None)
    assert after == before  # no other file, and the database byte for byte the same


def test_missing_sqlite_file_is_an_error_and_stays_missing(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    url = ["--database-url", f"sqlite:///{missing}"]
    commands = (["query", "SELECT 1"], ["search", "invoice"], ["db", "current"],
                ["db", "check"], ["db", "downgrade", "base"])  # fmt: skip
    for done in ocrflow_each(*([*command, *url] for command in commands)):
        error = one_error_line(done)
        assert error == (
            f"error: no database at {missing}: run `ocrflow run` first or check the URL"
        ), done.args
    assert list(tmp_path.iterdir()) == []


def test_search_formats_and_exit_codes(results: Results) -> None:
    url = ["--database-url", results.url]
    found = ocrflow("search", "payment terms", *url)
    assert found.returncode == 0, found.stderr
    rows = list(csv.DictReader(io.StringIO(found.stdout)))
    assert [(r["source_uri"], r["text"]) for r in rows] == [(LONG_URI, "Payment terms: 30 days")]
    assert float(rows[0]["y_max"]) > float(rows[0]["y_min"])
    assert "1 match(es)" in found.stderr

    [match] = json.loads(ocrflow("search", "invoice", *url, "--format", "json").stdout)
    assert match["text"] == "Invoice number 4711" and len(match["polygon"]) == 4

    table = ocrflow("search", "invoice", *url, "--format", "table", columns=60)
    assert all(cell_len(line) <= 60 for line in table.stdout.splitlines()), table.stdout
    [row] = [line for line in table.stdout.splitlines() if line.startswith("│")]
    assert "acme-invoice" in row and "Invoice" in row

    none = ocrflow("search", "refund", *url)
    assert none.returncode == 1 and "0 match(es)" in none.stderr
    assert "--recognize" not in none.stderr  # there is text: the phrase is just not in it

    unread = ocrflow("search", "invoice", *url, "--run-id", str(results.unread_run))
    assert unread.returncode == 1
    assert f"no recognised text in run {results.unread_run}: runs need --recognize" in (
        unread.stderr
    )
    assert one_error_line(ocrflow("search", "!!", *url)).startswith("error: search phrase")


def test_search_in_a_database_without_text(database_url: str) -> None:
    migrate.upgrade(database_url)
    done = ocrflow("search", "invoice", "--database-url", database_url, "--format", "table")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "no recognised text in this database: runs need --recognize" in done.stderr


def test_bad_arguments_and_unreachable_databases_exit_2() -> None:
    dead = ["--database-url", "postgresql://u:secret@127.0.0.1:1/x"]
    bad_format, *unreachable = ocrflow_each(
        ["query", "SELECT 1", "--format", "xml", *dead], ["query", "SELECT 1", *dead],
        ["search", "x", *dead], ["db", "current", *dead], ["db", "upgrade", *dead],
    )  # fmt: skip
    assert bad_format.returncode == 2 and "'xml' is not one of" in bad_format.stderr
    for done in unreachable:
        error = one_error_line(done)
        assert error.startswith("error: cannot reach postgresql+psycopg://u:***@127.0.0.1:1/x")


def test_db_exit_codes_follow_the_schema(database_url: str) -> None:
    create_engine(database_url).connect().close()  # an existing, empty database
    url = ["--database-url", database_url]
    current, search = ocrflow_each(["db", "current", *url], ["search", "invoice", *url])
    assert "has no ocrflow schema: run `ocrflow db upgrade`" in one_error_line(current)
    assert "has no ocrflow schema: run `ocrflow db upgrade`" in one_error_line(search)

    migrate.upgrade(database_url, FIRST_REVISION)
    current, check, bad_revision = ocrflow_each(
        ["db", "current", *url], ["db", "check", *url], ["db", "upgrade", "nope", *url]
    )
    assert current.returncode == 1 and f"at {FIRST_REVISION}" in current.stdout
    assert check.returncode == 1 and "schema is behind" in check.stderr
    assert bad_revision.returncode == 2 and "nope" in bad_revision.stderr
