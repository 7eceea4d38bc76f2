"""In-process progress events, so the CLI can draw a bar while the flow runs in-process.

The flow also keeps a Prefect progress artifact; this is only for a local terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["PageEvent", "emit", "listening"]


@dataclass(frozen=True, slots=True)
class PageEvent:
    """One page finished (or failed): counters for a progress bar."""

    source: str
    page_number: int
    pages_done: int
    pages_total: int
    ok: bool


_listeners: list[Callable[[PageEvent], None]] = []


@contextmanager
def listening(callback: Callable[[PageEvent], None]) -> Iterator[None]:
    """Call ``callback`` for every page event while the block runs."""
    _listeners.append(callback)
    try:
        yield
    finally:
        _listeners.remove(callback)


def emit(event: PageEvent) -> None:
    """Tell every listener; a failing listener never breaks the flow."""
    for callback in list(_listeners):
        try:
            callback(event)
        except Exception:
            continue
