"""A detection whose ``gpu`` concurrency slot the Prefect API could not grant is resubmitted.

Seen for real in ``tests/faults/test_concurrency.py`` on a slow 2-core machine: four workers
on one SQLite-backed Prefect server, a 503 past the client's retries, and a page recorded as
failed although nothing was wrong with it. The futures here are stand-ins for Prefect's (the
retry policy is ours; the integration tests run the real thing).
"""

from __future__ import annotations

from typing import Any

import pytest
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

from flows.prefect_internals import SLOT_RETRY_DELAYS_S, detection_result


class _Future:
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def result(self) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def _slot_error() -> ConcurrencySlotAcquisitionError:
    return ConcurrencySlotAcquisitionError(
        "Unable to acquire concurrency slots on ['tag:gpu']: 503 Service Unavailable"
    )


def test_resubmits_until_the_slot_is_granted() -> None:
    queue = [_Future(_slot_error()), _Future(["page"])]
    slept: list[float] = []
    warnings: list[str] = []
    result = detection_result(
        _Future(_slot_error()), lambda: queue.pop(0), sleep=slept.append, warn=warnings.append
    )
    assert result == ["page"]
    assert slept == list(SLOT_RETRY_DELAYS_S[:2]) and not queue
    assert len(warnings) == 2 and "503 Service Unavailable" in warnings[0]
    assert f"detecting again in {SLOT_RETRY_DELAYS_S[0]:g} s" in warnings[0]


def test_gives_up_after_the_last_delay() -> None:
    resubmitted: list[_Future] = []

    def resubmit() -> _Future:
        resubmitted.append(_Future(_slot_error()))
        return resubmitted[-1]

    with pytest.raises(ConcurrencySlotAcquisitionError, match="tag:gpu"):
        detection_result(
            _Future(_slot_error()), resubmit, delays=(1.0, 2.0), sleep=lambda _: None,
            warn=lambda _: None,
        )  # fmt: skip
    assert len(resubmitted) == 2


def test_a_failed_detection_is_not_retried() -> None:
    def resubmit() -> _Future:
        raise AssertionError("a real detection error must not be resubmitted")

    with pytest.raises(ValueError, match="4-channel"):
        detection_result(
            _Future(ValueError("page 0: 4-channel input")), resubmit, sleep=lambda _: None
        )
