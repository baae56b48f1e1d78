"""Small helpers shared by the tests against the local cluster."""

from __future__ import annotations

import json
import time

import pytest


def wait_for(predicate, timeout: float = 60, interval: float = 0.25, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last value: {last!r})")


def get_json(kubectl, *args: str) -> dict | None:
    result = kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(f"kubectl get {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout)


# The image the tests' operator puts in its pods (the local cluster's pods never pull it).
OPERATOR_TEST_IMAGE = "example.invalid/mlmodel-server:test"
