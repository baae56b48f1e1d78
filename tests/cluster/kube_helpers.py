"""Small helpers shared by the tests against the local cluster."""

from __future__ import annotations

import json

from polling import wait_for  # noqa: F401 (re-exported for this folder's tests)


def get_json(kubectl, *args: str) -> dict | None:
    result = kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(f"kubectl get {' '.join(args)}: {result.stderr}")
    return json.loads(result.stdout)


# The image the tests' operator puts in its pods (the local cluster's pods never pull it).
OPERATOR_TEST_IMAGE = "example.invalid/mlmodel-server:test"
