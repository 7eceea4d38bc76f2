"""Print query and search results for ``ocrflow query``, ``ocrflow search`` and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["cell", "print_query", "print_search"]


def print_query(database_url: str | None, sql: str, limit: int = 200) -> None:
    """Run ``sql`` read-only and print the rows as a table."""
    from db.query import run_read_only
    from db.session import open_database
    from db.settings import get_database_url

    engine = open_database(database_url or get_database_url(), check_schema=False)
    try:
        columns, rows = run_read_only(engine, sql, limit=limit)
    finally:
        engine.dispose()
    table = Table(title=sql if len(sql) < 80 else None)
    for name in columns:
        table.add_column(name, overflow="fold")  # wrap, never cut values off
    for row in rows:
        table.add_row(*(cell(v) for v in row))
    Console().print(table)


def print_search(database_url: str | None, phrase: str, **kwargs: Any) -> int:
    """Print the regions whose text matches ``phrase``; return how many matched."""
    from db.search import search
    from db.session import open_database
    from db.settings import get_database_url

    engine = open_database(database_url or get_database_url())
    try:
        matches = search(engine, phrase, **kwargs)
    finally:
        engine.dispose()
    table = Table("document", "page", "box (x_min, y_min, x_max, y_max)", "text", "conf",
                  title=f'"{phrase}": {len(matches)} match(es)')  # fmt: skip
    for m in matches:
        box = ", ".join(f"{v:.0f}" for v in m.box)
        conf = "" if m.text_confidence is None else f"{m.text_confidence:.2f}"
        table.add_row(Path(m.source_uri).name, str(m.page_number), box, m.text, conf)
    Console().print(table)
    return len(matches)


def cell(value: object) -> str:
    """One value as table text: empty for NULL, floats to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
