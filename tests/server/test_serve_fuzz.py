"""Fuzz every operation in /openapi.json, with data that fits the schema and data that does not: no
request may cause a 5xx. Twice: a numeric model, and a DataFrame pipeline of typed columns (its schema names
them, so the fuzzer sends rows of objects and one V2 input per column).

Operations are driven through hypothesis directly (schemathesis' pytest plugin does not load under
this pytest version); each operation and mode gets a bounded number of examples.
"""

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

EXAMPLES_PER_OPERATION = 15
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@pytest.fixture(scope="module", params=["iris", "mixed"])
def fuzzed_server(request):
    return request.getfixturevalue(f"{request.param}_server")


@pytest.fixture(scope="module")
def operations(fuzzed_server):
    schema = schemathesis.openapi.from_url(fuzzed_server.url + "/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_openapi_lists_every_route(operations):
    labels = {operation.label for operation in operations}
    assert "POST /predict" in labels and "POST /v2/models/{name}/versions/{version}/infer" in labels
    assert len(labels) >= 17


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzzed_server, operations, mode):
    schemas = requests.get(fuzzed_server.url + "/openapi.json", timeout=10).json()["components"]["schemas"]
    failures = []
    calls = []
    with requests.Session() as session:
        for operation in operations:
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception:  # some operations have nothing to make negative (no parameters, no body)
                continue

            @FUZZ_SETTINGS
            @given(case=strategy)
            def run(case):
                response = case.call(base_url=fuzzed_server.url, session=session)
                calls.append((case.operation.label, response.status_code))
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} → {response.status_code}: {response.text[:300]}"
                    )

            try:
                run()
            except Unsatisfiable:  # nothing in this operation can be made invalid
                pass
    assert len(calls) >= 40
    if mode == GenerationMode.POSITIVE and "ColumnInput" in schemas:
        # the described columns are the real ones: rows that fit them are predicted, not refused
        assert ("POST /predict", 200) in calls, calls
    assert not failures, "\n".join(failures[:10])
    assert "Failed request" not in fuzzed_server.log()
