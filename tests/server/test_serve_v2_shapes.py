"""Every field of a V2 inference request, given a value of every JSON type (or left out), over a real socket:
the answer is a 200 or a 4xx JSON error naming the problem, never a 5xx; JSON and binary-extension bodies alike."""

import copy
import json

import numpy as np
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = {
    "id": "r1",
    "parameters": {"binary_data_output": False},
    "inputs": [
        {
            "name": "x",
            "datatype": "FP64",
            "shape": [1, 4],
            "data": [5.1, 3.5, 1.4, 0.2],
            "parameters": {"content_type": "np"},
        }
    ],
    "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
}
# Every place in the request a client fills in: a key path into VALID.
FIELDS = [
    ("id",),
    ("parameters",),
    ("parameters", "binary_data_output"),
    ("inputs",),
    ("inputs", 0),
    ("inputs", 0, "name"),
    ("inputs", 0, "datatype"),
    ("inputs", 0, "shape"),
    ("inputs", 0, "shape", 0),
    ("inputs", 0, "data"),
    ("inputs", 0, "data", 0),
    ("inputs", 0, "parameters"),
    ("inputs", 0, "parameters", "binary_data_size"),
    ("outputs",),
    ("outputs", 0),
    ("outputs", 0, "name"),
    ("outputs", 0, "parameters"),
    ("outputs", 0, "parameters", "binary_data"),
]
MISSING = object()
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["FP64", "BYTES", "BOOL", "INT8", "predict", "predict_proba", "x", ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.sampled_from(["name", "data", "shape"]), inner, max_size=4)
    ),
    max_leaves=12,
)
FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)


def replaced(path: tuple, value) -> dict:
    request = copy.deepcopy(VALID)
    parent = request
    for key in path[:-1]:
        parent = parent[key]
    if value is MISSING:
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return request


def as_binary(request: dict) -> tuple[bytes, dict[str, str]]:
    """The same request with its first input's data in the binary tensor extension."""
    header = copy.deepcopy(request)
    first = header.get("inputs")[0] if isinstance(header.get("inputs"), list) and header["inputs"] else None
    raw = b""
    if isinstance(first, dict) and "data" in first:
        data = first.pop("data")
        try:
            raw = np.asarray(data, dtype="<f8").tobytes()
        except (TypeError, ValueError, OverflowError):
            raw = json.dumps(data).encode()  # whatever it was, now bytes the header must describe
        parameters = first.get("parameters")
        if isinstance(parameters, dict) and "binary_data_size" not in parameters:
            parameters["binary_data_size"] = len(raw)
    encoded = json.dumps(header).encode()
    return encoded + raw, {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(encoded)),
    }


def check(response: requests.Response, what: str) -> None:
    assert response.status_code < 500, f"{what} → {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        assert response.headers["Content-Type"] == "application/json", what
        assert response.json()["error"], what


@pytest.fixture(scope="module")
def session():
    with requests.Session() as http:
        yield http


def test_the_unchanged_request_is_served(iris_server, session):
    response = session.post(iris_server.url + "/v2/models/iris/infer", json=VALID)
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == [0]
    body, headers = as_binary(VALID)
    assert session.post(iris_server.url + "/v2/models/iris/infer", data=body, headers=headers).status_code == 200


@pytest.mark.parametrize("path", FIELDS, ids=lambda path: ".".join(map(str, path)))
def test_every_field_with_every_json_type(iris_server, session, path):
    url = iris_server.url + "/v2/models/iris/infer"
    statuses = []

    @FUZZ
    @given(value=json_values | st.just(MISSING))
    def run(value):
        request = replaced(path, value)
        what = f"{'.'.join(map(str, path))} = {'<missing>' if value is MISSING else json.dumps(value)}"
        response = session.post(url, data=json.dumps(request), headers={"Content-Type": "application/json"})
        check(response, what)
        statuses.append(response.status_code)
        body, headers = as_binary(request)
        check(session.post(url, data=body, headers=headers), what + " (binary)")

    run()
    assert len(statuses) == FUZZ.max_examples and any(status >= 400 for status in statuses)


@pytest.mark.parametrize(
    "field,value",
    [("datatype", ["FP64"]), ("datatype", {"a": 1}), ("name", ["x"]), ("shape", {"0": 1}), ("parameters", [1])],
)
def test_a_tensor_field_of_the_wrong_type_is_named(iris_server, session, field, value):
    request = replaced(("inputs", 0, field), value)
    response = session.post(iris_server.url + "/v2/models/iris/infer", json=request)
    assert response.status_code == 400 and field in response.json()["error"], response.text
