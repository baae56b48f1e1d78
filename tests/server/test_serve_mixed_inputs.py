"""A DataFrame pipeline with string, number, integer and boolean columns, served by the real `serve`:
rows as objects through /predict and V1, one input per column through V2 (JSON, and binary with tritonclient),
predictions equal to the pipeline's own on the DataFrame, and every bad input a 400 naming what is wrong."""

import threading

import numpy as np
import pytest
import tritonclient.http as triton

from .conftest import MIXED_ROWS, mixed_frame, mixed_rows

COLUMNS = list(MIXED_ROWS[0])
DATATYPES = {"color": "BYTES", "size": "FP64", "count": "INT64", "member": "BOOL"}


@pytest.fixture(scope="module")
def pipeline(models):
    return models["estimators"]["mixed"]


@pytest.fixture(scope="module")
def expected(pipeline):
    frame = mixed_frame(MIXED_ROWS)
    return pipeline.predict(frame).tolist(), pipeline.predict_proba(frame)


def column_inputs(rows: list[dict], shape_of=lambda n: [n]) -> list[dict]:
    return [
        {"name": name, "datatype": DATATYPES[name], "shape": shape_of(len(rows)), "data": [row[name] for row in rows]}
        for name in COLUMNS
    ]


def test_metadata_lists_each_column_with_its_datatype(http, mixed_server):
    metadata = http.get(mixed_server.url + "/v2/models/mixed").json()
    assert metadata["inputs"] == [{"name": name, "datatype": DATATYPES[name], "shape": [-1]} for name in COLUMNS]
    assert metadata["outputs"][0] == {"name": "predict", "datatype": "BYTES", "shape": [-1]}


def test_openapi_describes_the_columns_and_classes(http, mixed_server):
    schemas = http.get(mixed_server.url + "/openapi.json").json()["components"]["schemas"]
    row = schemas["V1Request"]["properties"]["instances"]["items"]
    assert row["properties"] == {
        "color": {"type": "string", "enum": ["blue", "green", "red"]},  # its encoder refuses others
        "size": {"type": "number"},
        "count": {"type": "integer"},
        "member": {"type": "boolean"},
    }
    assert row["required"] == COLUMNS and row["additionalProperties"] is False
    assert schemas["V1Response"]["properties"]["predictions"]["items"]["enum"] == ["high", "low", "mid"]
    assert schemas["ColumnInput"]["properties"]["name"]["enum"] == COLUMNS


def test_predict_rows_as_objects(http, mixed_server, expected):
    labels, probabilities = expected
    body = http.post(mixed_server.url + "/predict", json={"instances": MIXED_ROWS}).json()
    assert body["prediction"] == labels
    assert body["confidence"] == probabilities.max(axis=1).tolist()
    single = http.post(mixed_server.url + "/predict", json={"features": MIXED_ROWS[1]}).json()
    assert single["prediction"] == labels[1]
    positional = [[row[name] for name in COLUMNS] for row in MIXED_ROWS]
    assert http.post(mixed_server.url + "/predict", json={"features": positional}).json()["prediction"] == labels


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_v1_instances_as_objects(http, mixed_server, expected, key):
    response = http.post(mixed_server.url + "/v1/models/mixed:predict", json={key: MIXED_ROWS})
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected[0]}


@pytest.mark.parametrize("shape_of", [lambda n: [n], lambda n: [n, 1]], ids=["n", "n-1"])
def test_v2_json_one_input_per_column(http, mixed_server, expected, shape_of):
    request = {
        "inputs": column_inputs(MIXED_ROWS, shape_of),
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    }
    response = http.post(mixed_server.url + "/v2/models/mixed/infer", json=request)
    assert response.status_code == 200, response.text
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    assert outputs["predict"]["data"] == expected[0]
    assert np.array_equal(np.array(outputs["predict_proba"]["data"]).reshape(3, 3), expected[1])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_tritonclient_column_inputs_with_bytes(mixed_server, expected, binary):
    client = triton.InferenceServerClient(f"127.0.0.1:{mixed_server.port}")
    try:
        arrays = {
            "color": np.array([row["color"].encode() for row in MIXED_ROWS], dtype=object),
            "size": np.array([row["size"] for row in MIXED_ROWS], dtype=np.float64),
            "count": np.array([row["count"] for row in MIXED_ROWS], dtype=np.int64),
            "member": np.array([row["member"] for row in MIXED_ROWS], dtype=np.bool_),
        }
        inputs = []
        for name in COLUMNS:
            tensor = triton.InferInput(name, [len(MIXED_ROWS)], DATATYPES[name])
            tensor.set_data_from_numpy(arrays[name], binary_data=binary)
            inputs.append(tensor)
        outputs = [
            triton.InferRequestedOutput("predict", binary_data=binary),
            triton.InferRequestedOutput("predict_proba", binary_data=binary),
        ]
        result = client.infer("mixed", inputs, outputs=outputs)
        labels = [label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predict")]
        assert labels == expected[0]
        assert np.array_equal(result.as_numpy("predict_proba"), expected[1])
        assert [i["name"] for i in client.get_model_metadata("mixed")["inputs"]] == COLUMNS
    finally:
        client.close()


def test_concurrent_requests_share_batches_and_get_their_own_rows(mixed_server, pipeline):
    import requests

    batches = [mixed_rows(3, seed=100 + i) for i in range(24)]
    results: dict[int, list] = {}

    def send(index: int) -> None:
        with requests.Session() as session:
            response = session.post(mixed_server.url + "/predict", json={"instances": batches[index]})
            results[index] = response.json()["prediction"]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, rows in enumerate(batches):
        assert results[index] == pipeline.predict(mixed_frame(rows)).tolist()


ROW = MIXED_ROWS[0]
BAD_ROWS = [
    ({**ROW, "color": 3}, "row 0, column 'color': expected a string, got a number"),
    ({**ROW, "size": "big"}, "row 0, column 'size': expected a number, got a string"),
    ({**ROW, "size": True}, "row 0, column 'size': expected a number, got a boolean"),
    ({**ROW, "count": 1.5}, "row 0, column 'count': expected an integer, got 1.5"),
    ({**ROW, "member": "yes"}, "row 0, column 'member': expected true or false, got a string"),
    ({**ROW, "member": None}, "row 0, column 'member': expected true or false, null is not allowed"),
    ({k: v for k, v in ROW.items() if k != "size"}, "row 0: missing columns size"),
    ({**ROW, "colour": "red"}, "row 0: unknown columns colour"),
    ([ROW["color"], ROW["size"]], "row 0: expected 4 values (columns color, size, count, member), got 2"),
    ({**ROW, "color": "purple"}, "the model rejected the input: Found unknown categories ['purple']"),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS)
@pytest.mark.parametrize("route", ["/predict", "/v1/models/mixed:predict"])
def test_bad_rows_are_refused_by_name(http, mixed_server, route, row, message):
    rows = [MIXED_ROWS[1], row] if "rejected" not in message else [row]
    response = http.post(mixed_server.url + route, json={"instances": rows})
    assert response.status_code == 400, response.text
    expected = message.replace("row 0", "row 1") if "rejected" not in message else message
    assert expected in response.json()["error"]


def v2_inputs_with(name: str, **changes) -> list[dict]:
    inputs = column_inputs(MIXED_ROWS)
    for tensor in inputs:
        if tensor["name"] == name:
            tensor.update(changes)
    return inputs


BAD_TENSORS = [
    (v2_inputs_with("color", datatype="FP64", data=[1.0, 2.0, 3.0]), "column 'color' takes BYTES data"),
    (v2_inputs_with("member", datatype="INT64", data=[1, 0, 1]), "column 'member' takes BOOL data"),
    (v2_inputs_with("count", datatype="FP64", data=[1.0, 2.0, 3.0]), "column 'count' takes INT64 data"),
    (v2_inputs_with("size", shape=[1, 3]), "input 'size': a column input must have shape [N] or [N, 1]"),
    (v2_inputs_with("size", shape=[2], data=[1.0, 2.0]), "column inputs must all have the same number of rows"),
    (column_inputs(MIXED_ROWS)[:3], "missing column inputs member"),
    ([*column_inputs(MIXED_ROWS), {**column_inputs(MIXED_ROWS)[0], "name": "x"}], "unknown inputs x"),
    ([{"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": [1, 2, 3, 4]}], "one input per column"),
]


@pytest.mark.parametrize(("inputs", "message"), BAD_TENSORS)
def test_bad_v2_inputs_are_refused_by_name(http, mixed_server, inputs, message):
    response = http.post(mixed_server.url + "/v2/models/mixed/infer", json={"inputs": inputs})
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_binary_bytes_that_are_not_utf8_are_refused(http, mixed_server):
    header_inputs = column_inputs(MIXED_ROWS)
    raw = b"".join(len(b).to_bytes(4, "little") + b for b in (b"red", b"\xff\xfe", b"blue"))
    header_inputs[0] = {
        "name": "color",
        "datatype": "BYTES",
        "shape": [3],
        "parameters": {"binary_data_size": len(raw)},
    }
    import orjson

    header = orjson.dumps({"inputs": header_inputs})
    response = http.post(
        mixed_server.url + "/v2/models/mixed/infer",
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 400, response.text
    assert "input 'color': row 1: BYTES element is not UTF-8 text" in response.json()["error"]
    assert "Failed request" not in mixed_server.log()


ONNX_TYPES = {"color": "BYTES", "size": "FP32", "count": "INT64", "member": "INT64"}  # skl2onnx takes no BOOL input


@pytest.fixture(scope="module")
def onnx_graph(pipeline, tmp_path_factory):
    """skl2onnx's conversion of the pipeline: one [batch, 1] input per column."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    types = {"BYTES": StringTensorType, "FP32": FloatTensorType, "INT64": Int64TensorType}
    graph = convert_sklearn(pipeline, initial_types=[(n, types[t]([None, 1])) for n, t in ONNX_TYPES.items()])
    path = tmp_path_factory.mktemp("onnx-columns") / "model.onnx"
    path.write_bytes(graph.SerializeToString())
    return path


@pytest.fixture(scope="module")
def onnx_server(server_factory, onnx_graph):
    from .serve_harness import write_manifest

    return server_factory(write_manifest(onnx_graph), "--name", "columns")


def onnxruntime_own(path, rows: list[dict]) -> tuple[list, np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    dtypes = {"BYTES": object, "FP32": np.float32, "INT64": np.int64}
    feeds = {n: np.array([r[n] for r in rows], dtype=dtypes[t]).reshape(-1, 1) for n, t in ONNX_TYPES.items()}
    labels, probabilities = session.run(None, feeds)
    return labels.tolist(), np.array([list(row.values()) for row in probabilities])


def test_onnx_graph_with_one_input_per_column(http, onnx_server, onnx_graph, pipeline):
    rows = [{**row, "member": int(row["member"])} for row in MIXED_ROWS]
    labels, probabilities = onnxruntime_own(onnx_graph, rows)
    assert labels == pipeline.predict(mixed_frame(MIXED_ROWS)).tolist()
    metadata = http.get(onnx_server.url + "/v2/models/columns").json()
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (n, "BYTES" if n == "color" else ("FP64" if n == "size" else "INT64")) for n in COLUMNS
    ]
    body = http.post(onnx_server.url + "/predict", json={"instances": rows}).json()
    assert body["prediction"] == labels
    assert np.allclose(body["confidence"], probabilities.max(axis=1))

    client = triton.InferenceServerClient(f"127.0.0.1:{onnx_server.port}")
    try:
        inputs = []
        for name, datatype in ONNX_TYPES.items():
            values = [row[name] for row in rows]
            array = np.array([v.encode() for v in values], dtype=object) if datatype == "BYTES" else np.array(values)
            tensor = triton.InferInput(name, [len(rows), 1], "FP64" if datatype == "FP32" else datatype)
            tensor.set_data_from_numpy(
                array.reshape(-1, 1) if datatype != "FP32" else array.reshape(-1, 1).astype(np.float64)
            )
            inputs.append(tensor)
        outputs = [triton.InferRequestedOutput("predict"), triton.InferRequestedOutput("predict_proba")]
        result = client.infer("columns", inputs, outputs=outputs)
        assert [label.decode() for label in result.as_numpy("predict")] == labels
        assert np.array_equal(result.as_numpy("predict_proba"), probabilities.astype(np.float32))
    finally:
        client.close()

    refused = http.post(onnx_server.url + "/predict", json={"features": {**rows[0], "color": "purple"}})
    assert refused.status_code == 400 and "the model rejected the input" in refused.json()["error"], refused.text
    assert "Failed request" not in onnx_server.log()
