"""Pure functions: input validation, the V2 codec, settings, the API key check, the micro-batcher."""

import json
import re
import struct
import threading
import time

import numpy as np
import pytest

from mlmodel_server import auth
from mlmodel_server.batching import MicroBatcher
from mlmodel_server.errors import InvalidInput
from mlmodel_server.inputs import rows_to_matrix
from mlmodel_server.protocols.v2_codec import NUMPY_TYPES, decode_request, encode_output
from mlmodel_server.settings import parse_settings
from mlmodel_server.signature import ModelSignature

FOUR = ModelSignature(
    n_features=4, feature_names=("a", "b", "c", "d"), classes=(0, 1), has_proba=True, estimator_type="Test"
)


def test_rows_single_batch_and_named():
    matrix, single = rows_to_matrix([1, 2, 3, 4], FOUR, "features")
    assert single and matrix.shape == (1, 4) and matrix.dtype == np.float64
    matrix, single = rows_to_matrix([[1, 2, 3, 4], [5, 6, 7, 8.5]], FOUR, "features")
    assert not single and matrix.shape == (2, 4)
    matrix, single = rows_to_matrix({"d": 4, "c": 3, "b": 2, "a": 1}, FOUR, "features")
    assert single and matrix.tolist() == [[1, 2, 3, 4]]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([1, 2, 3], "expected 4 features, got 3"),
        ([[1, 2, 3, 4], [1, 2, 3]], "same number"),
        ([1, 2, "3", 4], "number"),
        ([True, False, True, False], "number"),
        ([1, 2, 3, 10**400], "number"),
        ([[[1, 2, 3, 4]]], "2 dimensions"),
        ({"a": 1}, "missing features b, c, d"),
        ({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}, "unknown features e"),
        ([{"a": 1, "b": 2, "c": 3, "d": 4}, [1, 2, 3, 4]], "not an object"),
        ("1,2,3,4", "expected a non-empty list"),
        (None, "expected a non-empty list"),
    ],
)
def test_rows_rejected_with_a_reason(value, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        rows_to_matrix(value, FOUR, "features")


def test_non_finite_values_rejected():
    with pytest.raises(InvalidInput, match="finite"):
        rows_to_matrix([1.0, float("nan"), 3.0, 4.0], FOUR, "features")


@pytest.mark.parametrize("datatype", [d for d in NUMPY_TYPES if d != "BYTES"])
def test_codec_binary_round_trip(datatype):
    array = (np.arange(6).reshape(2, 3) % 2 == 1) if datatype == "BOOL" else np.arange(6).reshape(2, 3)
    array = array.astype(NUMPY_TYPES[datatype])
    output, blob = encode_output("t", array, binary=True)
    assert output["datatype"] == datatype and output["shape"] == [2, 3]
    header = {"inputs": [{"name": "t", "datatype": datatype, "shape": [2, 3], "parameters": output["parameters"]}]}
    decoded = decode_request(header, memoryview(blob)).inputs[0]
    assert decoded.data.dtype == array.dtype and np.array_equal(decoded.data, array)


def test_codec_bytes_binary_and_json():
    array = np.array([b"setosa", b"", b"virginica"], dtype=object)
    output, blob = encode_output("labels", array, binary=True)
    assert blob == struct.pack("<I", 6) + b"setosa" + struct.pack("<I", 0) + struct.pack("<I", 9) + b"virginica"
    header = {"inputs": [{"name": "l", "datatype": "BYTES", "shape": [3], "parameters": output["parameters"]}]}
    assert decode_request(header, memoryview(blob)).inputs[0].data.tolist() == array.tolist()
    as_json, none = encode_output("labels", np.array(["a", "b"]), binary=False)
    assert none is None and as_json == {"name": "labels", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}


def test_codec_request_fields():
    header = {
        "id": "x",
        "parameters": {"binary_data_output": True},
        "inputs": [{"name": "a", "datatype": "FP32", "shape": [1, 2], "data": [[1, 2]]}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": False}}],
    }
    request = decode_request(header, memoryview(b""))
    assert request.id == "x" and request.inputs[0].data.dtype == np.float32
    assert [(o.name, o.binary) for o in request.outputs] == [("predict", True), ("predict_proba", False)]


@pytest.mark.parametrize(
    ("header", "binary", "fragment"),
    [
        (
            {"inputs": [{"name": "a", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 4}}]},
            b"\0" * 4,
            "2 FP32 elements",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}}]},
            b"\0" * 8,
            "no input claims",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "BOOL", "shape": [1], "parameters": {"binary_data_size": 1}}]},
            b"\x07",
            "0 or 1",
        ),
        (
            {"inputs": [{"name": "a", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 4}}]},
            struct.pack("<I", 9),
            "truncated",
        ),
        ({"inputs": [{"name": "a", "datatype": "UINT8", "shape": [1], "data": [-1]}]}, b"", "out of range"),
        ({"inputs": [{"name": "a", "datatype": "BOOL", "shape": [1], "data": [1]}]}, b"", "true or false"),
        ({"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": ["x"]}]}, b"", "numbers"),
        (
            {"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], "data": [1]}], "outputs": "predict"},
            b"",
            "outputs",
        ),
        ({"inputs": "nope"}, b"", "non-empty list"),
    ],
)
def test_codec_rejects(header, binary, fragment):
    with pytest.raises(InvalidInput, match=fragment):
        decode_request(header, memoryview(binary))


def test_settings_flags_win_over_env_twins():
    env = {
        "MLMODEL_NAME": "from-env",
        "MLMODEL_WORKERS": "3",
        "MLMODEL_ALLOW_UNVERIFIED": "yes",
        "MLMODEL_SKOPS_TRUSTED_TYPES": "a.B, c.D",
        "MLMODEL_SKLEARN_VERSION_POLICY": "ERROR",
    }
    settings = parse_settings(["--workers", "2"], env)
    assert settings.name == "from-env" and settings.workers == 2 and settings.allow_unverified
    assert settings.skops_trusted_types == ("a.B", "c.D") and settings.sklearn_version_policy == "error"
    defaults = parse_settings(["--name", "m"], {})
    assert (defaults.model_path, defaults.port, defaults.threads, defaults.allow_unverified) == (
        "/models",
        8080,
        16,
        False,
    )
    assert defaults.access_log is False  # opt-in: a log write per request is a large part of a request's cost
    assert parse_settings(["--name", "m", "--access-log"], {}).access_log is True
    assert parse_settings(["--name", "m"], {"MLMODEL_ACCESS_LOG": "true"}).access_log is True
    assert defaults.access_log_sample_percent == 100
    assert parse_settings(["--name", "m"], {"MLMODEL_ACCESS_LOG_SAMPLE_PERCENT": "10"}).access_log_sample_percent == 10
    for out_of_range in ("0", "101", "ten"):
        with pytest.raises(SystemExit):
            parse_settings(["--name", "m", "--access-log-sample-percent", out_of_range], {})
    assert defaults.compiled_kernels is True  # the compiled tree walk: 1-4 MiB and no JIT
    assert parse_settings(["--name", "m"], {"MLMODEL_COMPILED_KERNELS": "false"}).compiled_kernels is False
    assert parse_settings(["--name", "m", "--compiled-kernels", "false"], {}).compiled_kernels is False
    assert defaults.http_server == "eventloop"
    assert parse_settings(["--name", "m"], {"MLMODEL_HTTP_SERVER": "granian"}).http_server == "granian"
    assert (
        parse_settings(["--name", "m", "--http-server", "GRANIAN"], {"MLMODEL_HTTP_SERVER": "gunicorn"}).http_server
        == "granian"
    )
    with pytest.raises(SystemExit):
        parse_settings([], {})
    with pytest.raises(SystemExit):
        parse_settings(["--name", "m", "--workers", "0"], {})
    with pytest.raises(SystemExit):
        parse_settings(["--name", "m", "--http-server", "uvicorn"], {})


def test_api_key_headers():
    key = b"k3y"
    assert auth.is_authorized({"X-API-Key": "k3y"}, key)
    assert auth.is_authorized({"Authorization": "Bearer k3y"}, key)
    assert auth.is_authorized({"Authorization": "bearer  k3y "}, key)
    assert not auth.is_authorized({"Authorization": "Basic k3y"}, key)
    assert not auth.is_authorized({"X-API-Key": "k3"}, key)
    assert not auth.is_authorized({}, key)
    assert auth.load_api_key(None, {"MLMODEL_API_KEY": " env "}) == b"env"
    assert auth.load_api_key(None, {}) is None


def test_batcher_coalesces_waiting_requests_and_isolates_failures():
    calls = []
    release = threading.Event()

    def run(rows, want_proba):
        calls.append(len(rows))
        if len(calls) == 1:
            release.wait(5)  # hold the first call so the others queue up behind it
        if (rows < 0).any():
            raise ValueError("negative")
        return rows[:, 0] * 2, None

    batcher = MicroBatcher(run, max_rows=64)
    results = {}

    def submit(i):
        try:
            results[i] = batcher.submit(np.array([[float(i)]]) if i != 7 else np.array([[-1.0]]), False).predictions
        except ValueError as error:
            results[i] = error

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    threads[0].start()
    while not calls:
        pass
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(5)
    assert isinstance(results[7], ValueError)
    assert all(results[i].tolist() == [2.0 * i] for i in range(10) if i != 7)
    assert calls[0] == 1 and calls[1] == 9  # nine waiting requests went in one call (which failed)
    assert len(calls) == 2 + 9  # ... and were then retried one by one


def test_openapi_describes_every_route():
    from sklearn.dummy import DummyClassifier

    from mlmodel_server.app import AppOptions, create_app
    from mlmodel_server.openapi import openapi_document
    from mlmodel_server.predictor import ModelIdentity, Predictor

    estimator = DummyClassifier().fit([[0.0, 1.0], [1.0, 0.0]], [0, 1])
    predictor = Predictor(estimator, ModelIdentity("m", "", "", "joblib"))
    app = create_app(predictor, AppOptions())
    paths = openapi_document("m", api_key=True, signature=predictor.signature)["paths"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in paths.get(path, {}), f"{method} {path} is not in /openapi.json"


@pytest.fixture(scope="module", params=["orjson", "compiled-json"])
def lean_and_flask(request):
    """One in-process app: the exact inference paths take the lean routes (lean_routes.py), `/predict/` reaches
    the Flask route. Both decode rows with orjson, or with compiled_json.py when a compiled forest serves."""
    import orjson
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    from mlmodel_server.app import AppOptions, create_app
    from mlmodel_server.lean_routes import LeanRoutes
    from mlmodel_server.predictor import ModelIdentity, Predictor

    X, y = load_iris(return_X_y=True)
    compiled = request.param == "compiled-json"
    estimator = (RandomForestClassifier(20, random_state=0) if compiled else LogisticRegression(max_iter=500)).fit(X, y)
    predictor = Predictor(estimator, ModelIdentity("m", "", "", "joblib"), compiled_kernels=compiled)
    app = create_app(predictor, AppOptions(api_key=b"k3y"))
    assert isinstance(app.wsgi_app, LeanRoutes)
    assert (app.wsgi_app._pipeline.decode is not orjson.loads) == compiled
    return app


@pytest.mark.parametrize(
    "body",
    [
        b'{"features": [5.1, 3.5, 1.4, 0.2]}',
        b'{"features": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}',
        b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}',
        b'{"instances": [5.1, 3.5, 1.4, 0.2]}',
        b'{"features": [1, 2]}',
        b'{"features": [[1, 2, 3, 4], [1, 2]]}',
        b'{"instances": [[1, 2, 3, 4, 5]]}',
        b'{"features": [1, 2, "x", 4]}',
        b'{"features": [-0, 0.30000000000000004, 1e23, 9007199254740993]}',
        b"{nope",
        b"",
        b"[]",
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", None, "text/plain"])
@pytest.mark.parametrize("path", ["/predict", "/v1/models/m:predict"])
def test_lean_route_answers_like_the_flask_route(lean_and_flask, body, content_type, path):
    client = lean_and_flask.test_client()
    headers = {"X-API-Key": "k3y", "X-Request-ID": "req-1"}
    if content_type:
        headers["Content-Type"] = content_type
    lean = client.post(path, data=body, headers=headers)
    slow = client.post(path + "/", data=body, headers=headers)  # strict_slashes=False: the same Flask route
    assert (
        lean.status_code,
        lean.get_json(silent=True),
        lean.headers.get("Content-Type"),
        lean.headers["X-Request-ID"],
    ) == (slow.status_code, slow.get_json(silent=True), slow.headers.get("Content-Type"), slow.headers["X-Request-ID"])
    assert lean.headers.get("Content-Length") == str(len(lean.data))


V2_ROW = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [V2_ROW]},
        {
            "id": "r1",
            "inputs": [V2_ROW | {"shape": [2, 4], "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
        {
            "inputs": [V2_ROW | {"datatype": "FP32"}],
            "outputs": [{"name": "predict_proba", "parameters": {"binary_data": True}}],
        },
        {"inputs": [V2_ROW], "parameters": {"binary_data_output": True}},
        {"inputs": [V2_ROW | {"shape": [1, 3], "data": [1, 2, 3]}]},
        {"inputs": [V2_ROW], "outputs": [{"name": "nope"}]},
        {"inputs": []},
        [],
        "text",
    ],
)
def test_v2_lean_route_answers_like_the_flask_route(lean_and_flask, body):
    client = lean_and_flask.test_client()
    headers = {"X-API-Key": "k3y", "X-Request-ID": "req-2"}
    lean = client.post("/v2/models/m/infer", json=body, headers=headers)
    slow = client.post("/v2/models/m/infer/", json=body, headers=headers)  # strict_slashes=False: the Flask route
    assert (lean.status_code, lean.data, lean.headers.get("Content-Type"), lean.headers["X-Request-ID"]) == (
        slow.status_code,
        slow.data,
        slow.headers.get("Content-Type"),
        slow.headers["X-Request-ID"],
    )
    if lean.headers.get("Content-Type") == "application/json":
        assert lean.headers.get("Content-Length") == str(len(lean.data))


def test_v2_json_takes_the_lean_route_and_binary_outputs_the_flask_route(lean_and_flask):
    routes = lean_and_flask.wsgi_app
    flask_app, replayed = routes._flask, []

    def recording(environ, start_response):
        replayed.append(environ["PATH_INFO"])
        return flask_app(environ, start_response)

    routes._flask = recording
    try:
        client = lean_and_flask.test_client()
        headers = {"X-API-Key": "k3y"}
        assert client.post("/v2/models/m/infer", json={"inputs": [V2_ROW]}, headers=headers).status_code == 200
        assert replayed == []
        binary = {"inputs": [V2_ROW], "parameters": {"binary_data_output": True}}
        answer = client.post("/v2/models/m/infer", json=binary, headers=headers)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/octet-stream"
        assert replayed == ["/v2/models/m/infer"]
        # refusals are the lean route's own: the same pipeline steps, no second pass through Flask
        assert client.post("/v2/models/m/infer", json={"inputs": [V2_ROW]}).status_code == 401
        assert client.post("/v2/models/m/infer", data=b"{", headers=headers).status_code == 400
        assert (
            client.post("/v2/models/m/infer", data=b"{}", headers=headers | {"Content-Type": "text/csv"}).status_code
            == 415
        )
        assert replayed == ["/v2/models/m/infer"]
    finally:
        routes._flask = flask_app


def test_lean_routes_keep_auth_and_v1(lean_and_flask):
    client = lean_and_flask.test_client()
    row = {"instances": [[5.1, 3.5, 1.4, 0.2]]}
    assert client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).status_code == 401
    assert client.post("/predict", json=row, headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.post("/v1/models/m:predict", json=row, headers={"Authorization": "Bearer k3y"})
    assert answer.status_code == 200 and answer.get_json() == {"predictions": [0]}
    assert len(answer.headers["X-Request-ID"]) == 32  # generated
    assert client.post("/v1/models/other:predict", json=row, headers={"X-API-Key": "k3y"}).status_code == 404


def test_batcher_runs_a_full_batch_request_in_its_own_thread():
    seen = []

    def run(rows, want_proba):
        seen.append((threading.current_thread().name, len(rows)))
        if (rows < 0).any():
            raise ValueError("negative")
        return rows[:, 0] * 2, (rows if want_proba else None)

    reported = []
    batcher = MicroBatcher(run, max_rows=4, on_batch=lambda requests, rows: reported.append((requests, rows)))
    result = batcher.submit(np.ones((4, 1)), True)
    assert result.predictions.tolist() == [2.0] * 4 and result.probabilities.shape == (4, 1)
    assert seen == [(threading.current_thread().name, 4)] and reported == [(1, 4)]
    with pytest.raises(ValueError):
        batcher.submit(-np.ones((5, 1)), False)
    assert reported == [(1, 4)]  # a failed call is not counted
    assert batcher.submit(np.ones((1, 1)), False).predictions.tolist() == [2.0]
    assert seen[-1] == ("mlmodel-batcher", 1)


def test_fifo_lock_is_granted_in_arrival_order():
    from mlmodel_server.batching import FifoLock

    lock, order = FifoLock(), []

    def take(index):
        with lock:
            order.append(index)

    lock.__enter__()
    threads = []
    for index in range(6):
        thread = threading.Thread(target=take, args=(index,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(lock._waiters) < index + 1 and time.monotonic() < deadline:  # queued before the next one starts
            time.sleep(0.001)
    lock.__exit__(None, None, None)
    with lock:  # the thread that just let go queues behind the six instead of barging back in
        order.append("again")
    for thread in threads:
        thread.join(5)
    assert order == [0, 1, 2, 3, 4, 5, "again"]


def _child_request_id(pipe) -> None:
    from mlmodel_server.pipeline import request_id_from

    pipe.send(request_id_from(None))


def test_generated_request_ids_are_unique_within_and_across_forked_workers():
    import multiprocessing

    from mlmodel_server.pipeline import request_id_from

    ours = [request_id_from(None) for _ in range(1000)]
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_child_request_id, args=(sender,))
    child.start()
    theirs = receiver.recv()
    child.join(10)
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in [*ours, theirs])
    assert len(set(ours)) == 1000
    assert theirs[:16] != ours[0][:16]  # a forked worker draws its own prefix
    assert request_id_from("client-id-1") == "client-id-1" and request_id_from("bad id!") != "bad id!"


def test_access_log_sampler_keeps_every_error_an_even_share_of_successes_and_no_probe():
    from mlmodel_server.pipeline import UNLOGGED_ROUTES, AccessLogSampler

    tenth = AccessLogSampler(10)
    assert [tenth.wanted("/predict", 200) for _ in range(30)].count(True) == 3
    assert all(tenth.wanted("/predict", status) for status in (400, 404, 413, 500, 503))
    everything = AccessLogSampler(100)
    assert all(everything.wanted("/v2/models/<name>/infer", 200) for _ in range(5))
    for route in UNLOGGED_ROUTES:
        assert not everything.wanted(route, 200) and not everything.wanted(route, 503)


def test_batcher_runs_requests_that_arrived_together_in_shared_calls_of_at_most_max_rows():
    calls = []

    def run(rows, want_proba):
        calls.append((len(rows), want_proba))
        if (rows < 0).any():
            raise ValueError("negative")
        return rows[:, 0] * 2, (rows if want_proba else None)

    reported = []
    batcher = MicroBatcher(run, max_rows=4, on_batch=lambda requests, rows: reported.append((requests, rows)))
    requests = [
        (np.full((1, 1), 1.0), False),
        (np.full((2, 1), 2.0), True),
        (np.full((1, 1), 3.0), False),  # 4 rows so far: one call
        (np.full((5, 1), 4.0), False),  # over max_rows: a call of its own
        (np.full((1, 1), -1.0), False),  # fails the shared call: then each alone
        (np.full((1, 1), 5.0), False),
    ]
    outcomes = batcher.run_together(requests)
    assert [outcome.predictions.tolist() for outcome in outcomes[:4]] == [[2.0], [4.0, 4.0], [6.0], [8.0] * 5]
    assert outcomes[1].probabilities.tolist() == [[2.0], [2.0]] and outcomes[0].probabilities is None
    assert isinstance(outcomes[4], ValueError) and outcomes[5].predictions.tolist() == [10.0]
    assert calls == [(4, True), (5, False), (2, False), (1, False), (1, False)]
    assert reported == [(3, 4), (1, 5), (1, 1)]  # failed calls are not counted


def test_requests_answered_together_get_what_each_gets_alone(lean_and_flask):
    """LeanRoutes.call_together, as the event-loop worker calls it: every answer byte for byte the one the same
    request gets alone, refusals, hand-ons to Flask and other routes included, with one shared model call."""
    from werkzeug.test import EnvironBuilder

    routes = lean_and_flask.wsgi_app
    bodies = [
        ("/predict", {"features": [5.1, 3.5, 1.4, 0.2]}),
        ("/predict", {"features": [[6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]}),
        ("/predict", {"features": [1, 2]}),
        ("/v1/models/m:predict", {"instances": [[5.9, 3.0, 4.2, 1.5]]}),
        ("/v2/models/m/infer", {"inputs": [V2_ROW], "outputs": [{"name": "predict_proba"}]}),
        ("/v2/models/m/infer", {"inputs": [V2_ROW], "parameters": {"binary_data_output": True}}),
        ("/v2/models/other/infer", {"inputs": [V2_ROW]}),
        ("/health", None),
    ]

    def environ(index):
        path, body = bodies[index]
        headers = {"X-API-Key": "k3y", "X-Request-ID": f"req-{index}"}
        method = "GET" if body is None else "POST"
        return EnvironBuilder(path=path, method=method, json=body, headers=headers).get_environ()

    def answer(call):
        started = []
        body = b"".join(call(lambda status, headers, exc_info=None: started.append((status, headers))))
        return started[0][0], started[0][1], body

    alone = [answer(lambda start, index=index: routes(environ(index), start)) for index in range(len(bodies))]
    answers: list = [[] for _ in bodies]
    starts = [
        (lambda status, headers, exc_info=None, index=index: answers[index].append((status, headers)))
        for index in range(len(bodies))
    ]
    predictor = routes._predictor
    shared_calls = []
    model_call = predictor._batcher._run
    predictor._batcher._run = lambda rows, want_proba: shared_calls.append(len(rows)) or model_call(rows, want_proba)
    try:
        results = routes.call_together([(environ(index), starts[index]) for index in range(len(bodies))])
    finally:
        predictor._batcher._run = model_call
    together = [(answers[i][0][0], answers[i][0][1], b"".join(result)) for i, result in enumerate(results)]
    statuses = ["200 OK", "200 OK", "400 BAD REQUEST", "200 OK", "200 OK", "200 OK", "404 NOT FOUND", "200 OK"]
    assert [status for status, _, _ in together] == statuses

    def comparable(answers):
        """A linear model's scores come from BLAS, whose sums may differ in the last bit with the number of rows
        in the call (the micro-batcher's calls too): floats are compared to 12 decimals, all else exactly."""
        compared = []
        for status, headers, body in answers:
            assert dict(headers)["Content-Length"] == str(len(body))
            kept = sorted((name, value) for name, value in headers if name != "Content-Length")
            if dict(headers)["Content-Type"] == "application/json":
                body = json.loads(body, parse_float=lambda text: round(float(text), 12))
            compared.append((status, kept, body))
        return compared

    assert comparable(together) == comparable(alone)
    # the binary V2 request is Flask's, with a call of its own; the four others' rows (1 + 2 + 1 + 1) share one
    assert shared_calls == [1, 5]
