"""Interoperability with a real Open Inference Protocol client: tritonclient.http, JSON and binary."""

import numpy as np
import pytest
import tritonclient.http as triton

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])


@pytest.fixture
def client(iris_server):
    client = triton.InferenceServerClient(f"127.0.0.1:{iris_server.port}")
    yield client
    client.close()


def test_health_and_metadata(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and client.is_model_ready("iris", "v3")
    assert not client.is_model_ready("other")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data"]
    assert client.get_model_metadata("iris")["inputs"][0]["shape"] == [-1, 4]


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_infer(client, models, binary_in, binary_out, datatype):
    data = ROWS.astype(np.float32 if datatype == "FP32" else np.float64)
    tensor = triton.InferInput("input-0", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary_in)
    outputs = [
        triton.InferRequestedOutput("predict", binary_data=binary_out),
        triton.InferRequestedOutput("predict_proba", binary_data=binary_out),
    ]
    result = client.infer("iris", [tensor], outputs=outputs, request_id="triton-1")
    estimator = models["estimators"]["iris"]
    assert result.as_numpy("predict").tolist() == estimator.predict(data).tolist()
    assert np.allclose(result.as_numpy("predict_proba"), estimator.predict_proba(data))
    assert result.get_response()["id"] == "triton-1"


def test_infer_without_outputs_gets_binary_predict(client, models):
    tensor = triton.InferInput("input-0", [3, 4], "INT64")
    tensor.set_data_from_numpy(ROWS.round().astype(np.int64))  # binary by default
    result = client.infer("iris", [tensor])  # the client then asks for binary_data_output
    assert result.get_output("predict")["parameters"]["binary_data_size"] == 3 * 8
    assert result.as_numpy("predict").tolist() == models["estimators"]["iris"].predict(ROWS.round()).tolist()


def test_string_labels_as_binary_bytes(named_server):
    client = triton.InferenceServerClient(f"127.0.0.1:{named_server.port}")
    try:
        tensor = triton.InferInput("input-0", [2, 4], "FP64")
        tensor.set_data_from_numpy(ROWS[:2])
        result = client.infer("named", [tensor], outputs=[triton.InferRequestedOutput("predict", binary_data=True)])
        assert result.as_numpy("predict").tolist() == [b"setosa", b"virginica"]
    finally:
        client.close()


def test_errors_surface_as_exceptions(client):
    tensor = triton.InferInput("input-0", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.ones((1, 3)))
    with pytest.raises(triton.InferenceServerException, match="expected 4 features, got 3"):
        client.infer("iris", [tensor])
