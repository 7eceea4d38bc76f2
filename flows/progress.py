"""In-process progress events, so the CLI can draw a bar while the flow runs in-process.

The flow also keeps a Prefect progress artifact; this is only for a local terminal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["DOCUMENT_OUTCOME", "PageEvent", "emit", "hide_document_outcomes", "listening"]

# ``extra`` of the flow's per-document log lines: the CLI's summary already says each outcome,
# so its terminal leaves these out (the Prefect UI and API keep them).
DOCUMENT_OUTCOME = {"ocrflow_document_outcome": True}


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


def _not_a_document_outcome(record: logging.LogRecord) -> bool:
    return not getattr(record, "ocrflow_document_outcome", False)


def hide_document_outcomes() -> None:
    """Keep the per-document log lines off this process's terminal (Prefect's console handlers)."""
    # Prefect's logging config puts its console handler on the root logger.
    for handler in (*logging.getLogger().handlers, *logging.getLogger("prefect").handlers):
        if isinstance(handler, logging.StreamHandler) and not isinstance(
            handler, logging.FileHandler
        ):
            handler.addFilter(_not_a_document_outcome)
