"""The server's HTTP-facing tests, run once more on the HTTP stack this run does not use by default.

Every server test runs on `serve_harness.HTTP_SERVER` (the server's default, gunicorn, unless
MLMODEL_TEST_HTTP_SERVER names another). This test runs the modules whose outcome depends on the HTTP
stack again, in a pytest of their own, on the other stack (granian in a default run); the modules listed in
STACK_INDEPENDENT test the app's own logic (units, kernels, decoding, fuzzing the app's schema) and are not
repeated (this module is not either: the child run never recurses), nor are those in TRANSPORT_OF_ONE_STACK,
which test one stack's own HTTP layer (gunicorn's worker and framing; granian's transport guard, which starts
granian itself). A new test module is repeated unless it is listed there. The whole suite on granian, and the
HTTP-facing part again on gunicorn: `MLMODEL_TEST_HTTP_SERVER=granian make test PYTEST_ARGS=tests/server`.
"""

import os
import subprocess
import sys
from pathlib import Path

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
# gunicorn's JSON answers to malformed heads, 408s for slow clients and framing checks are its worker's
# (serving/worker.py, request_framing.py); granian answers malformed heads itself and closes slow ones
# (test_serve_transport.py says what it guarantees instead).
TRANSPORT_OF_ONE_STACK = {"test_serve_hostile_http.py", "test_serve_slow_clients.py", "test_serve_transport.py"}


def stack_dependent_modules() -> list[Path]:
    return sorted(
        path for path in HERE.glob("test_*.py") if path.name not in STACK_INDEPENDENT | TRANSPORT_OF_ONE_STACK
    )


def test_http_facing_tests_pass_on_the_other_stack():
    other = next(name for name in HTTP_SERVERS if name != serve_harness.HTTP_SERVER)
    modules = stack_dependent_modules()
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
    assert " passed" in result.stdout.splitlines()[-1], result.stdout[-2000:]
