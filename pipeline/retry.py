"""Database calls retried with backoff: connections drop and servers restart mid-run.

Every write ocrflow makes is idempotent (upserts; one result per page and parameter hash), so
repeating a call whose outcome is unknown can never double a row. Only database errors are
retried: a bug fails at once instead of three backoffs later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DBAPIError

from db.errors import DatabaseUnavailableError

__all__ = ["DB_RETRY_DELAYS_S", "RETRIED", "retrying"]

P = ParamSpec("P")
R = TypeVar("R")

DB_RETRY_DELAYS_S: tuple[float, ...] = (1.0, 5.0, 15.0)
# A restart shows as an unavailable database (our own error) or as a driver error mid-call.
RETRIED: tuple[type[BaseException], ...] = (DatabaseUnavailableError, DBAPIError)

logger = logging.getLogger("ocrflow.pipeline")


def retrying(
    call: Callable[P, R],
    *args: P.args,
    **kwargs: P.kwargs,
) -> R:
    """``call(*args, **kwargs)``, again after each of :data:`DB_RETRY_DELAYS_S` on a database
    error; the last attempt's error propagates."""
    return _retrying(call, DB_RETRY_DELAYS_S, time.sleep, *args, **kwargs)


def _retrying(
    call: Callable[..., R],
    delays: Sequence[float],
    sleep: Callable[[float], None],
    *args: object,
    **kwargs: object,
) -> R:
    for delay in delays:
        try:
            return call(*args, **kwargs)
        except RETRIED as exc:
            name = getattr(call, "__name__", "database call")
            logger.warning("%s failed (%s); retrying in %g s", name, _first_line(exc), delay)
            sleep(delay)
    return call(*args, **kwargs)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
