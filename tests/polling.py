"""Waiting for a condition in tests: one `wait_for` for every folder (pytest's pythonpath has tests/)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], timeout: float = 60, what: str = "condition", interval: float = 0.25) -> T:
    """The first truthy value `predicate` returns; fails the test with the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")
