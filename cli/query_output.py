"""Print query and search results for ``ocrflow query``, ``ocrflow search`` and the demo.

Data goes to stdout, messages to stderr. Three formats: ``table`` for people (one line per row,
cells cut with an ellipsis to fit the terminal, columns that do not fit left out and named),
``csv`` (header row, RFC 4180 quoting, NULL as an empty field) and ``json`` (a list of objects,
datetimes in ISO 8601). Without ``--format``: ``table`` on a terminal, ``csv`` in a pipe, as
``psql -A`` and ``sqlite3 -csv`` users expect; ``csv`` rather than ``json`` because it streams
into spreadsheets, ``sort`` and ``COPY``, and a row per line is what shell tools read.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import sys
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from db.search import SearchMatch

__all__ = [
    "OutputFormat",
    "cell",
    "default_format",
    "fit_columns",
    "print_query",
    "print_rows",
    "print_search",
]

ELLIPSIS = "…"
MIN_CELL = 6
"""Narrowest a column is cut to (unless its values are shorter): below that cells say nothing."""
MAX_HEADER_CELL = 15
"""A column may be cut narrower than its header beyond this many characters."""

_err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages: never hard-wrapped


class OutputFormat(StrEnum):
    """How ``ocrflow query`` and ``ocrflow search`` print rows."""

    table = "table"
    csv = "csv"
    json = "json"


def default_format(stream: IO[str] | None = None) -> OutputFormat:
    """``table`` when ``stream`` (stdout) is a terminal, else ``csv``."""
    stream = sys.stdout if stream is None else stream
    return OutputFormat.table if stream.isatty() else OutputFormat.csv


def print_query(
    database_url: str | None,
    sql: str,
    limit: int = 200,
    output_format: OutputFormat = OutputFormat.table,
) -> int:
    """Run ``sql`` read-only and print the rows; return how many were printed.

    Raises:
        db.errors.DatabaseError: the database is missing or unreachable, or refused ``sql``.
    """
    from db.query import run_read_only
    from db.session import open_database
    from db.settings import get_database_url

    engine = open_database(database_url or get_database_url(), check_schema=False, read_only=True)
    try:
        result = run_read_only(engine, sql, limit=limit)
    finally:
        engine.dispose()
    if not result.columns:
        _err.print("[dim]the statement returned no rows[/dim]")
        return 0
    print_rows(result.columns, result.rows, output_format)
    if result.truncated:
        _err.print(f"[dim]first {limit} rows shown: --limit N for more[/dim]")
    return len(result.rows)


def print_search(
    database_url: str | None,
    phrase: str,
    *,
    run_id: int | None = None,
    limit: int = 100,
    output_format: OutputFormat = OutputFormat.table,
) -> int:
    """Print the regions whose text matches ``phrase``; return how many matched.

    With no match, says on stderr whether there was any recognised text to search at all.

    Raises:
        db.errors.DatabaseError: the database is missing, unreachable or without schema.
        ValueError: ``phrase`` has no word in it, or ``limit`` < 1.
    """
    from db.search import has_text, search
    from db.session import open_database
    from db.settings import get_database_url

    engine = open_database(database_url or get_database_url(), read_only=True)
    try:
        matches = search(engine, phrase, run_id=run_id, limit=limit)
        recognised = bool(matches) or has_text(engine, run_id=run_id)
    finally:
        engine.dispose()
    fmt = output_format  # short: used in every branch below
    if not recognised:
        where = "this database" if run_id is None else f"run {run_id}"
        _err.print(f"no recognised text in {where}: runs need --recognize")
        if fmt is not OutputFormat.table:
            print_rows(SEARCH_COLUMNS, [], fmt)
        return 0
    if fmt is OutputFormat.json:
        _write_json([_match_record(m) for m in matches], sys.stdout)
    elif fmt is OutputFormat.csv:
        rows = [
            (m.source_uri, m.page_number, m.run_id, m.region_index, *m.box, m.text,
             m.text_confidence)
            for m in matches
        ]  # fmt: skip
        _write_csv(SEARCH_COLUMNS, rows, sys.stdout)
    else:
        table_rows = [
            (
                Path(m.source_uri).name,
                str(m.page_number),
                ", ".join(f"{v:.0f}" for v in m.box),
                m.text,
                "" if m.text_confidence is None else f"{m.text_confidence:.2f}",
            )
            for m in matches
        ]
        if table_rows:
            headers = ["document", "page", "box", "text", "conf"]
            _print_table(headers, table_rows)
    more = " (--limit reached)" if len(matches) >= limit else ""
    _err.print(f'[dim]"{escape(phrase)}": {len(matches)} match(es){more}[/dim]')
    return len(matches)


SEARCH_COLUMNS = [
    "source_uri", "page_number", "run_id", "region_index",
    "x_min", "y_min", "x_max", "y_max", "text", "text_confidence",
]  # fmt: skip
"""The columns of ``ocrflow search --format csv`` (json has these plus ``polygon``)."""


def _match_record(match: SearchMatch) -> dict[str, Any]:
    x_min, y_min, x_max, y_max = match.box
    return {
        "source_uri": match.source_uri,
        "page_number": match.page_number,
        "run_id": match.run_id,
        "region_index": match.region_index,
        "x_min": x_min,
        "y_min": y_min,
        "x_max": x_max,
        "y_max": y_max,
        "polygon": [list(p) for p in match.polygon],
        "text": match.text,
        "text_confidence": match.text_confidence,
    }


def print_rows(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], output_format: OutputFormat
) -> None:
    """Print ``rows`` to stdout in ``output_format``."""
    if output_format is OutputFormat.json:
        _write_json([dict(zip(columns, row, strict=True)) for row in rows], sys.stdout)
    elif output_format is OutputFormat.csv:
        _write_csv(columns, rows, sys.stdout)
    else:
        _print_table(list(columns), [[cell(v) for v in row] for row in rows])


def _print_table(headers: list[str], rows: Sequence[Sequence[str]]) -> None:
    console = Console(highlight=False)
    widths = fit_columns(headers, rows, console.width)
    table = Table()
    for name, width in zip(headers, widths, strict=False):
        table.add_column(Text(_cut(name, width)), width=width, no_wrap=True, overflow="ellipsis")
    for row in rows:  # Text, not str: "[b]" in a value is data, not rich markup
        table.add_row(*(Text(_cut(v, w)) for v, w in zip(row, widths, strict=False)))
    console.print(table)
    sys.stdout.flush()  # the table before any message about it, when both go to a terminal
    left_out = headers[len(widths) :]
    if left_out:
        names = escape(", ".join(left_out))
        _err.print(
            f"[dim]{len(left_out)} of {len(headers)} columns left out to fit {console.width} "
            f"columns ({names}): select fewer, or use --format csv or json[/dim]"
        )


def fit_columns(headers: Sequence[str], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """Widths for the leading columns that fit in ``width`` terminal columns, one per column.

    Each column needs its widest value, or at least a readable minimum of it; columns are kept
    from the left while their minimums fit, then the spare room goes to the columns that were
    cut, first to show their values whole, then their headers. Columns to the right of the
    last width returned are left out.
    """
    values = [max([0, *(cell_len(r[i]) for r in rows)]) for i in range(len(headers))]
    natural = [max(v, cell_len(h)) for v, h in zip(values, headers, strict=True)]
    floor = [min(n, max(MIN_CELL, min(cell_len(h), MAX_HEADER_CELL))) for n, h in zip(
        natural, headers, strict=True)]  # fmt: skip
    widths: list[int] = []
    used = 1  # the table's left edge; each column adds its width + 2 padding + 1 border
    for minimum in floor:
        if used + minimum + 3 > width and widths:
            break
        widths.append(max(1, min(minimum, width - used - 3)))
        used += widths[-1] + 3
    spare = width - used
    for target in (values, natural):
        while spare > 0:
            short = [i for i, w in enumerate(widths) if w < target[i]]
            for i in short[:spare]:
                widths[i] += 1
            spare -= len(short[:spare])
            if not short:
                break
    return widths


def _cut(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` terminal cells with an ellipsis."""
    text = " ".join(text.splitlines()) if "\n" in text or "\r" in text else text
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(width - 1, 0)) + ELLIPSIS


def cell(value: object) -> str:
    """One value as table text: empty for NULL, floats to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):  # PostgreSQL json columns
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _plain(value: Any) -> Any:
    """A value as CSV/JSON carry it: full precision, datetimes ISO, bytes as hex."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN or infinity
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value


def _write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]], out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([_csv_field(v) for v in row] for row in rows)


def _csv_field(value: Any) -> Any:
    plain = _plain(value)
    if isinstance(plain, dict | list):  # PostgreSQL json columns: as JSON, not Python repr
        return json.dumps(plain, ensure_ascii=False, default=str)
    return plain


def _write_json(records: list[dict[str, Any]], out: IO[str]) -> None:
    plain = [{k: _plain(v) for k, v in record.items()} for record in records]
    out.write(json.dumps(plain, indent=1, ensure_ascii=False, default=str) + "\n")
