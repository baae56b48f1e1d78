"""The server's HTTP-facing tests, run once more on each HTTP stack this run does not use by default.

Every server test runs on `serve_harness.HTTP_SERVER` (the server's default, eventloop, unless
MLMODEL_TEST_HTTP_SERVER names another). This test runs the modules whose outcome depends on the HTTP
stack again, in a pytest of their own per other stack (gunicorn and granian in a default run); the modules listed
in STACK_INDEPENDENT test the app's own logic (units, kernels, decoding, fuzzing the app's schema) and are not
repeated (this module is not either: the child runs never recurse). TRANSPORT_TESTS test a stack's own HTTP
layer and are repeated only on the stacks they are written for: the JSON answers to malformed heads, the 408s of
slow clients and the framing checks are the eventloop and gthread workers' (serving/loop_worker.py, worker.py);
granian answers malformed heads itself and closes slow ones, and test_serve_transport.py (which starts granian
itself, so it runs once) says what it guarantees instead. A new test module is repeated unless it is listed. The whole suite on
another stack, and the HTTP-facing part again on the rest: `MLMODEL_TEST_HTTP_SERVER=gunicorn make test
PYTEST_ARGS=tests/server`.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlmodel_contract.spec_defaults import HTTP_SERVERS

from . import serve_harness

HERE = Path(__file__).resolve().parent
STACK_INDEPENDENT = {
    "test_serve_units.py",
    "test_serve_columns.py",
    "test_serve_kernels.py",
    "test_serve_compiled_json.py",
    "test_serve_fuzz.py",
    "test_serve_loading.py",
    "test_serve_v2_shapes.py",
    "test_serve_request_framing.py",
    "test_mlflow_models_units.py",
    "test_serve_mlflow.py",  # what an MLflow directory loads as (the formats' HTTP answers: test_serve_native_formats)
    Path(__file__).name,
}
# The JSON answers to malformed heads, the 408s of slow clients, the framing checks: our workers' own.
OUR_WORKERS_TRANSPORT = {"test_serve_hostile_http.py", "test_serve_slow_clients.py"}
TRANSPORT_TESTS = {"eventloop": OUR_WORKERS_TRANSPORT, "gunicorn": OUR_WORKERS_TRANSPORT, "granian": set()}
# granian's transport guard: the module starts granian itself, whatever the run's stack, so it runs once.
STARTS_ITS_OWN_STACK = {"test_serve_transport.py"}


def modules_for(stack: str) -> list[Path]:
    skipped = STACK_INDEPENDENT | OUR_WORKERS_TRANSPORT | STARTS_ITS_OWN_STACK
    shared = [path for path in HERE.glob("test_*.py") if path.name not in skipped]
    return sorted(shared + [HERE / name for name in TRANSPORT_TESTS[stack]])


@pytest.mark.parametrize("other", [name for name in HTTP_SERVERS if name != serve_harness.HTTP_SERVER])
def test_http_facing_tests_pass_on_the_other_stacks(other):
    modules = modules_for(other)
    assert len(modules) >= 8, modules
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *map(str, modules)],
        env=os.environ | {serve_harness.TEST_HTTP_SERVER_VARIABLE: other},
        cwd=serve_harness.REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert result.returncode == 0, f"on {other}:\n{result.stdout[-20000:]}\n{result.stderr[-5000:]}"
