"""What ocrflow knows about Prefect's internals, in one place (checked against Prefect 3.9).

Two workarounds, each for a behaviour of the engine that the public API does not cover:

* :class:`TaskRecords`: Prefect keeps, for the whole flow run, a link from every task result
  to its state (``FlowRunContext.run_results``, for the UI's dependency edges) and the cancel
  event of every submitted task (``ThreadPoolTaskRunner._cancel_events``), and drops neither:
  about 9 KB per task, so memory grew with the pages of a long run (bench/bench_scale.py).
* :func:`detection_result`: the engine takes a tag's concurrency slot (``gpu``) from the API
  before the task body runs and outside the task's retries, so a busy or restarting server
  fails that step, not the detection. Losing the pages for it would be wrong.

If a Prefect upgrade changes these internals, this is the module to revisit; both degrade to
doing nothing (no records found) or to Prefect's own error (no slot), never to wrong results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture

__all__ = ["SLOT_RETRY_DELAYS_S", "TaskRecords", "detection_result"]

T = TypeVar("T")

# Waits before resubmitting a detection whose `gpu` concurrency slot the API could not grant.
SLOT_RETRY_DELAYS_S = (5.0, 20.0, 60.0)


class TaskRecords:
    """Forgets the flow run's records of finished tasks, so memory does not grow per batch.

    Made when the page stream starts; records already there (discovery) stay for the edges of
    later tasks. :meth:`forget_finished` drops every record made since, except those of
    tasks still running: call it when no task submitted since is in flight.
    """

    def __init__(self) -> None:
        ctx = FlowRunContext.get()
        tables = (ctx.run_results, getattr(ctx.task_runner, "_cancel_events", None)) if ctx else ()
        self._tables: list[dict[Any, Any]] = [t for t in tables if isinstance(t, dict)]
        self._before = [dict(t) for t in self._tables]

    def forget_finished(self) -> None:
        """Drop the records made since this object was, all of whose tasks have finished."""
        for table, before in zip(self._tables, self._before, strict=True):
            for key, value in list(table.items()):
                if before.get(key) is not value:
                    table.pop(key, None)


def detection_result(
    future: PrefectFuture[T],
    resubmit: Callable[[], PrefectFuture[T]],
    delays: Sequence[float] = SLOT_RETRY_DELAYS_S,
    sleep: Callable[[float], None] = time.sleep,
    warn: Callable[[str], None] | None = None,
) -> T:
    """The task's result, resubmitted while Prefect cannot grant its concurrency slot.

    A busy or restarting server (HTTP 5xx beyond the client's own retries; seen with four
    workers on one SQLite-backed server) fails the slot step: wait and submit again, then
    give up with Prefect's error.
    """
    for delay in delays:
        try:
            return future.result()
        except ConcurrencySlotAcquisitionError as exc:
            (warn or get_run_logger().warning)(f"{exc}; detecting again in {delay:g} s")
            sleep(delay)
            future = resubmit()
    return future.result()
