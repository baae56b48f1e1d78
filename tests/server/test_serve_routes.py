"""Every route over a real socket: the classic contract, KServe V1, V2 JSON, and every error status."""

import numpy as np
import pytest

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


def test_health_and_ready(iris_server, http):
    assert http.get(iris_server.url + "/health").json() == {"status": "healthy"}
    ready = http.get(iris_server.url + "/ready")
    assert ready.status_code == 200 and ready.json()["model"] == "iris"


def test_classic_single_row(iris_server, http, models):
    response = http.post(iris_server.url + "/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.json()
    expected_proba = models["estimators"]["iris"].predict_proba([SETOSA])[0]
    assert body == {"prediction": 0, "confidence": pytest.approx(expected_proba.max()), "status": "success"}


def test_classic_batches(iris_server, http, models):
    rows = [SETOSA, VIRGINICA]
    expected = models["estimators"]["iris"].predict(rows).tolist()
    for payload in ({"features": rows}, {"instances": rows}):
        body = http.post(iris_server.url + "/predict", json=payload).json()
        assert body["prediction"] == expected
        assert len(body["confidence"]) == 2 and body["status"] == "success"


def test_pipeline_skops_model(server_factory, models, http, iris):
    server = server_factory(
        models["skops"], "--name", "pipe", "--skops-trusted-types", "sklearn.linear_model._logistic.LogisticRegression"
    )
    X, _ = iris
    body = http.post(server.url + "/predict", json={"instances": X[:10].tolist()}).json()
    assert body["prediction"] == models["estimators"]["pipeline"].predict(X[:10]).tolist()


def test_regressor_has_no_confidence(regressor_server, http, models):
    row = models["reg_X"][0].tolist()
    body = http.post(regressor_server.url + "/predict", json={"features": row}).json()
    assert body["prediction"] == pytest.approx(models["estimators"]["regressor"].predict([row])[0])
    assert "confidence" not in body
    v2 = {
        "inputs": [{"name": "x", "shape": [1, 5], "datatype": "FP64", "data": row}],
        "outputs": [{"name": "predict_proba"}],
    }
    error = http.post(regressor_server.url + "/v2/models/reg/infer", json=v2)
    assert error.status_code == 400 and "predict_proba" in error.json()["error"]


def test_named_features_in_any_order(named_server, http):
    row = {"petal_width": 0.2, "sepal_length": 5.1, "petal_length": 1.4, "sepal_width": 3.5}
    body = http.post(named_server.url + "/predict", json={"features": row}).json()
    assert body["prediction"] == "setosa"
    batch = http.post(named_server.url + "/predict", json={"instances": [row, row]}).json()
    assert batch["prediction"] == ["setosa", "setosa"]
    missing = http.post(named_server.url + "/predict", json={"features": {"sepal_length": 1.0}})
    assert missing.status_code == 400 and "missing features" in missing.json()["error"]
    assert "petal_width" in missing.json()["error"]


def test_named_features_v2_columns(named_server, http):
    inputs = [
        {"name": name, "shape": [2], "datatype": "FP32", "data": [value, value]}
        for name, value in zip(["sepal_length", "sepal_width", "petal_length", "petal_width"], SETOSA, strict=True)
    ]
    body = http.post(
        named_server.url + "/v2/models/named/infer", json={"inputs": inputs, "parameters": {"content_type": "pd"}}
    ).json()
    assert body["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["setosa", "setosa"]}


def test_v1(iris_server, http, models):
    assert http.get(iris_server.url + "/v1/models").json() == {"models": ["iris"]}
    assert http.get(iris_server.url + "/v1/models/iris").json() == {"name": "iris", "ready": True}
    body = http.post(iris_server.url + "/v1/models/iris:predict", json={"instances": [SETOSA, VIRGINICA]}).json()
    assert body == {"predictions": models["estimators"]["iris"].predict([SETOSA, VIRGINICA]).tolist()}
    assert http.get(iris_server.url + "/v1/models/other").status_code == 404
    assert http.post(iris_server.url + "/v1/models/other:predict", json={"instances": [SETOSA]}).status_code == 404


def test_v2_metadata_and_health(iris_server, http):
    url = iris_server.url
    assert http.get(url + "/v2").json()["extensions"] == ["binary_tensor_data"]
    assert http.get(url + "/v2/health/live").status_code == 200
    assert http.get(url + "/v2/health/ready").status_code == 200
    metadata = http.get(url + "/v2/models/iris").json()
    assert metadata["versions"] == ["v3"] and metadata["platform"] == "sklearn"
    assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "predict_proba"]
    assert http.get(url + "/v2/models/iris/versions/v3").json() == metadata
    assert http.get(url + "/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert http.get(url + "/v2/models/iris/versions/v3/ready").status_code == 200
    assert http.get(url + "/v2/models/iris/versions/v4/ready").status_code == 404
    assert http.get(url + "/v2/models/nope").status_code == 404


@pytest.mark.parametrize(
    "datatype", ["FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16"]
)
def test_v2_infer_numeric_datatypes(iris_server, http, models, datatype):
    rows = [[5, 3, 1, 0], [7, 3, 5, 2]]
    payload = {
        "id": "req-1",
        "inputs": [{"name": "x", "shape": [2, 4], "datatype": datatype, "data": [v for row in rows for v in row]}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    response = http.post(iris_server.url + "/v2/models/iris/versions/v3/infer", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "iris" and body["model_version"] == "v3" and body["id"] == "req-1"
    predict, proba = body["outputs"]
    estimator = models["estimators"]["iris"]
    assert predict == {"name": "predict", "datatype": "INT64", "shape": [2], "data": estimator.predict(rows).tolist()}
    assert proba["shape"] == [2, 3] and proba["datatype"] == "FP64"
    assert np.allclose(np.reshape(proba["data"], (2, 3)), estimator.predict_proba(rows))


def test_v2_bool_and_bytes_inputs(iris_server, http):
    as_bool = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BOOL", "data": [True, False, True, True]}]}
    assert http.post(iris_server.url + "/v2/models/iris/infer", json=as_bool).status_code == 200
    as_bytes = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["a", "b", "c", "d"]}]}
    response = http.post(iris_server.url + "/v2/models/iris/infer", json=as_bytes)
    assert response.status_code == 400 and "BYTES" in response.json()["error"]


def test_v2_default_output_and_nested_data(iris_server, http):
    payload = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [SETOSA, VIRGINICA]}]}
    body = http.post(iris_server.url + "/v2/models/iris/infer", json=payload).json()
    assert [o["name"] for o in body["outputs"]] == ["predict"]
    assert body["outputs"][0]["data"] == [0, 2]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"features": [5.1, 3.5, 1.4]}, "expected 4 features, got 3"),
        ({"features": [[5.1, 3.5, 1.4, 0.2], [1, 2]]}, "same number of values"),
        ({"features": ["a", "b", "c", "d"]}, "must be a number"),
        ({"features": [1, 2, None, 4]}, "must be a number"),
        ({"features": [1, 2, 3, {"x": 1}]}, "must be a number"),
        ({"features": []}, "non-empty"),
        ({"features": [[[1, 2, 3, 4]]]}, "2 dimensions"),
        ({"feature": [1, 2, 3, 4]}, '"features"'),
        ([1, 2, 3, 4], "JSON object"),
        ({"features": {"a": 1}}, "without feature names"),
        ({"instances": [[1, 2, 3, 4]] * 100_001}, "at most 100000 rows"),
    ],
)
def test_classic_bad_input_is_400_naming_the_problem(iris_server, http, payload, fragment):
    response = http.post(iris_server.url + "/predict", json=payload)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"features": [NaN, 1, 2, 3]}',
        b'{"features": [Infinity, 1, 2, 3]}',
        b'{"features": [1e999, 1, 2, 3]}',
        b"[" * 5000 + b"]" * 5000,
        b"\xff\xfe",
        b"",
    ],
)
def test_malformed_json_is_400(iris_server, http, body):
    response = http.post(iris_server.url + "/predict", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "error" in response.json() and response.json()["request_id"]


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"inputs": []}, "non-empty"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}]}, "datatype"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3]}]}, "4 elements"),
        ({"inputs": [{"name": "x", "shape": [1, -4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "non-negative"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}, "expected 4 features"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT8", "data": [1, 2, 3, 400]}]}, "out of range"),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "INT32", "data": [1.5, 2, 3, 4]}]}, "integers"),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                "outputs": [{"name": "transform"}],
            },
            "unknown output",
        ),
        (
            {
                "inputs": [
                    {
                        "name": "x",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "data": [1, 2, 3, 4],
                        "parameters": {"binary_data_size": 16},
                    }
                ]
            },
            "past the end",
        ),
        ({"inputs": [{"name": "x", "shape": [100000, 100000], "datatype": "FP32", "data": []}]}, "at most"),
    ],
)
def test_v2_bad_input_is_400(iris_server, http, payload, fragment):
    response = http.post(iris_server.url + "/v2/models/iris/infer", json=payload)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_binary_input_with_nan_is_400(iris_server, http):
    import orjson

    raw = np.array([[np.nan, 1, 2, 3]], dtype="<f4").tobytes()
    header = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}]}
    )
    response = http.post(
        iris_server.url + "/v2/models/iris/infer",
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400 and "finite" in response.json()["error"]


def test_status_codes_404_405_415(iris_server, http):
    missing = http.get(iris_server.url + "/nope")
    assert missing.status_code == 404 and "no route" in missing.json()["error"]
    wrong_method = http.get(iris_server.url + "/predict")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    assert wrong_method.json()["error"]
    wrong_type = http.post(iris_server.url + "/predict", data="features=1", headers={"Content-Type": "text/plain"})
    assert wrong_type.status_code == 415 and "application/json" in wrong_type.json()["error"]
    form = http.post(iris_server.url + "/v1/models/iris:predict", data={"instances": "1"})
    assert form.status_code == 415


def test_request_id_is_honoured_or_generated(iris_server, http):
    echoed = http.post(iris_server.url + "/predict", json={"features": [1]}, headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["X-Request-ID"] == "abc-123" and echoed.json()["request_id"] == "abc-123"
    generated = http.get(iris_server.url + "/health")
    assert len(generated.headers["X-Request-ID"]) == 32
    hostile = http.get(iris_server.url + "/health", headers={"X-Request-ID": 'a"b{}' * 10})
    assert hostile.headers["X-Request-ID"] != 'a"b{}' * 10
    assert '"request_id":"abc-123"' in iris_server.log()


def test_logs_are_json_lines(iris_server):
    parsed = iris_server.log_entries()
    assert any(line.get("message") == "Loaded model" for line in parsed)


def loaded_entry(server) -> dict:
    [loaded] = [line for line in server.log_entries() if line.get("message") == "Loaded model"]
    return loaded


def test_native_thread_pools_run_one_thread_unless_the_pod_says_otherwise(iris_server, server_factory, models):
    # numpy's OpenBLAS and scikit-learn's OpenMP, as threadpoolctl sees them in the server after loading
    assert loaded_entry(iris_server)["native_threads"].keys() >= {"openblas", "openmp"}
    assert set(loaded_entry(iris_server)["native_threads"].values()) == {1}
    tuned = server_factory(models["iris"], "--name", "iris", env={"OMP_NUM_THREADS": "2"})
    assert loaded_entry(tuned)["native_threads"]["openmp"] == 2


def test_input_the_estimator_itself_refuses_is_400(server_factory, tmp_path_factory, iris, http):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from .serve_harness import dump

    X, y = iris
    pipeline = make_pipeline(OneHotEncoder(handle_unknown="error"), LogisticRegression(max_iter=500))
    directory = dump(pipeline.fit(X.round(), y), tmp_path_factory.mktemp("onehot"), "model.joblib")
    server = server_factory(directory, "--name", "onehot")
    response = http.post(server.url + "/predict", json={"features": [100, 3, 1, 0]})  # an unseen category
    assert response.status_code == 400 and "the model rejected the input" in response.json()["error"]
    assert http.post(server.url + "/predict", json={"features": [5, 3, 1, 0]}).status_code == 200
