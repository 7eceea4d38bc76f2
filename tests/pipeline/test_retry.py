"""Database calls are retried on database errors only, with the last error kept."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from db.errors import DatabaseUnavailableError
from pipeline.retry import _retrying


def test_a_blip_is_retried_until_the_call_lands() -> None:
    errors = [DatabaseUnavailableError("restarting"), OperationalError("x", {}, Exception("y"))]
    slept: list[float] = []

    def flaky() -> str:
        if errors:
            raise errors.pop(0)
        return "stored"

    assert _retrying(flaky, (1.0, 5.0, 15.0), slept.append) == "stored"
    assert slept == [1.0, 5.0]


def test_the_last_error_propagates_after_the_delays() -> None:
    slept: list[float] = []

    def down() -> None:
        raise DatabaseUnavailableError("down for good")

    with pytest.raises(DatabaseUnavailableError, match="down for good"):
        _retrying(down, (1.0, 5.0), slept.append)
    assert slept == [1.0, 5.0]


def test_a_bug_is_not_retried() -> None:
    slept: list[float] = []

    def bug() -> None:
        raise KeyError("page_id")

    with pytest.raises(KeyError):
        _retrying(bug, (1.0, 5.0), slept.append)
    assert slept == []
