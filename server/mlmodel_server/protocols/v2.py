"""Open Inference Protocol (V2) REST: health, server and model metadata, and infer (JSON and binary)."""

from typing import Any

import numpy as np
import orjson
from flask import Blueprint, Response, request

from mlmodel_contract.artifacts import LIGHTGBM, MLFLOW, ONNX, XGBOOST
from mlmodel_server import __version__
from mlmodel_server.batching import BatchResult
from mlmodel_server.errors import InvalidInput, NotFound
from mlmodel_server.frames import METADATA_DATATYPES, tensors_to_frame
from mlmodel_server.http_io import json_response, served_model
from mlmodel_server.inputs import check_width, name_mismatch, numeric_matrix
from mlmodel_server.pipeline import BINARY_MIMETYPE, BODY_KEY, JSON_MIMETYPE, check_content_type, decode_json
from mlmodel_server.predictor import ModelIdentity, PlannedPrediction, Predictor
from mlmodel_server.protocols.v2_codec import InferenceRequest, Tensor, decode_request, encode_output
from mlmodel_server.signature import ModelSignature

blueprint = Blueprint("v2", __name__)

HEADER_LENGTH = "Inference-Header-Content-Length"
HEADER_LENGTH_KEY = "HTTP_" + HEADER_LENGTH.upper().replace("-", "_")  # its name in the WSGI environ
EXTENSIONS = ["binary_tensor_data"]
INPUT_NAME = "input-0"


def model_named(name: str, version: str | None) -> Predictor:
    model = served_model()
    if name != model.identity.name:
        raise NotFound(f"unknown model {name!r}; this server serves {model.identity.name!r}")
    if version is not None and version != model.identity.version:
        served = model.identity.version or "no version"
        raise NotFound(f"unknown version {version!r} of model {name!r}; this server serves {served}")
    return model


# The library that runs the model; a pickled XGBoost or LightGBM wrapper is a scikit-learn estimator like any other.
PLATFORMS = {XGBOOST: "xgboost", LIGHTGBM: "lightgbm", ONNX: "onnxruntime_onnx", MLFLOW: "mlflow"}


def metadata(model: Predictor) -> dict[str, Any]:
    signature = model.signature
    outputs = [{"name": "predict", "datatype": label_datatype(model), "shape": [-1]}]
    if signature.has_proba and signature.classes is not None:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(signature.classes)]})
    body: dict[str, Any] = {
        "name": model.identity.name,
        "versions": [model.identity.version] if model.identity.version else [],
        "platform": PLATFORMS.get(model.identity.format, "sklearn"),
        "inputs": input_metadata(signature),
        "outputs": outputs,
    }
    parameters = {"feature_names": ",".join(signature.feature_names)} if signature.feature_names else {}
    parameters.update(version_parameters(model.identity))
    if parameters:
        body["parameters"] = parameters
    return body


def version_parameters(identity: ModelIdentity) -> dict[str, str]:
    """One scalar per library (V2 parameters are scalars): `recorded_version.<library>` (what the artifact records),
    `runtime_version.<library>` (what this image runs), and `version_mismatches`, the libraries whose difference
    matters (fetch/versions.py has the rules)."""
    parameters = {f"recorded_version.{library}": value for library, value in sorted(identity.recorded_versions.items())}
    parameters.update({f"runtime_version.{library}": v for library, v in sorted(identity.runtime_versions.items())})
    if identity.version_mismatches:
        parameters["version_mismatches"] = ",".join(identity.version_mismatches)
    return parameters


def input_metadata(signature: ModelSignature) -> list[dict[str, Any]]:
    """One [N, F] FP64 input, or, for a model of typed columns, one [N] input per column in its datatype."""
    if signature.takes_frame and signature.columns is not None:
        return [
            {"name": column.name, "datatype": METADATA_DATATYPES[column.kind], "shape": [-1]}
            for column in signature.columns
        ]
    width = signature.n_features if signature.n_features is not None else -1
    return [{"name": INPUT_NAME, "datatype": "FP64", "shape": [-1, width]}]


def label_datatype(model: Predictor) -> str:
    classes = model.signature.classes
    if classes is None:
        return "FP64"
    if all(isinstance(c, bool) for c in classes):
        return "BOOL"
    if all(isinstance(c, int) for c in classes):
        return "INT64"
    if all(isinstance(c, (int, float)) for c in classes):
        return "FP64"
    return "BYTES"


def as_numeric(tensor: Tensor) -> np.ndarray:
    if tensor.datatype == "BYTES":
        raise InvalidInput(f"input {tensor.name!r}: this model takes numeric tensors, not BYTES")
    if tensor.datatype == "BOOL":
        return tensor.data.astype(np.float64)
    return tensor.data


def model_rows(inputs: list[Tensor], model: Predictor) -> np.ndarray:
    """One [N, F] (or [F]) tensor, or one [N] column tensor per feature (the `pd` convention); a model of typed
    columns takes only the latter, each column in its own datatype (frames.py)."""
    signature = model.signature
    if signature.takes_frame:
        by_name = {tensor.name: (tensor.datatype, tensor.data) for tensor in inputs}
        if len(by_name) != len(inputs):
            raise InvalidInput("input names must be unique")
        return tensors_to_frame(by_name, signature)
    names = signature.feature_names or ()
    if len(inputs) == 1 and inputs[0].name not in names:
        data = as_numeric(inputs[0])
        if data.ndim == 1:
            data = data.reshape(1, -1)
        if data.ndim != 2:
            raise InvalidInput(f"input {inputs[0].name!r}: expected shape [N, F] or [F], got {list(data.shape)}")
        return check_width(numeric_matrix(data, f"input {inputs[0].name!r}"), signature)
    columns = column_inputs(inputs, signature.feature_names)
    lengths = {len(column) for column in columns}
    if len(lengths) != 1:
        raise InvalidInput("column inputs must all have the same number of rows")
    return check_width(numeric_matrix(np.column_stack(columns), "inputs"), signature)


def column_inputs(inputs: list[Tensor], feature_names: tuple[str, ...] | None) -> list[np.ndarray]:
    by_name = {tensor.name: tensor for tensor in inputs}
    if len(by_name) != len(inputs):
        raise InvalidInput("input names must be unique")
    if feature_names is None:
        raise InvalidInput("this model was fitted without feature names: send one input of shape [N, F]")
    mismatch = name_mismatch(feature_names, by_name, "feature inputs", "inputs")
    if mismatch is not None:
        raise InvalidInput(mismatch)
    columns = []
    for name in feature_names:
        data = as_numeric(by_name[name])
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if data.ndim != 1:
            raise InvalidInput(f"input {name!r}: a feature column must have shape [N] or [N, 1]")
        columns.append(data)
    return columns


def requested_outputs(inference: InferenceRequest, model: Predictor) -> list[tuple[str, bool]]:
    offered = model.signature.outputs
    if inference.outputs is None:
        return [("predict", inference.binary_outputs)]
    if not inference.outputs:
        raise InvalidInput("outputs, when given, must name at least one output")
    for output in inference.outputs:
        if output.name not in offered:
            raise InvalidInput(f"unknown output {output.name!r}; this model offers {', '.join(offered)}")
    return [(output.name, output.binary) for output in inference.outputs]


def read_inference(environ: dict[str, Any]) -> InferenceRequest:
    """The admitted body as an inference request, JSON or with binary tensors: for the route and its lean
    route (lean_routes.py)."""
    check_content_type(environ, allow_binary=True)
    body = environ[BODY_KEY]
    header_length = environ.get(HEADER_LENGTH_KEY)
    if header_length is None:
        return decode_request(decode_json(body), memoryview(b""))
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidInput(f"{HEADER_LENGTH} must be an integer") from None
    if not 0 < length <= len(body):
        raise InvalidInput(f"{HEADER_LENGTH} {length} is outside the body of {len(body)} bytes")
    view = memoryview(body)
    return decode_request(decode_json(view[:length]), view[length:])


class BinaryOutputWanted(Exception):
    """A JSON request that asks for binary outputs: the Flask route answers it, not the JSON-only lean route."""


def output_rows(model: Predictor, inference: InferenceRequest, outputs: list[tuple[str, bool]]) -> tuple[Any, bool]:
    """The model's input rows, and whether the outputs asked for need probabilities."""
    return model_rows(inference.inputs, model), any(name == "predict_proba" for name, _ in outputs)


def output_arrays(result: BatchResult) -> dict[str, np.ndarray]:
    arrays = {"predict": np.asarray(result.predictions)}
    if result.probabilities is not None:
        arrays["predict_proba"] = result.probabilities
    return arrays


def response_body(model: Predictor, inference: InferenceRequest, encoded: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"model_name": model.identity.name, "outputs": encoded}
    if model.identity.version:
        body["model_version"] = model.identity.version
    if inference.id is not None:
        body["id"] = inference.id
    return body


def json_plan(inference: InferenceRequest, model: Predictor) -> PlannedPrediction:
    """An inference request that wants no binary outputs up to its model call, for the lean route
    (lean_routes.py)."""
    outputs = requested_outputs(inference, model)
    if any(binary for _, binary in outputs):
        raise BinaryOutputWanted()

    def answer(result: BatchResult) -> dict[str, Any]:
        arrays = output_arrays(result)
        return response_body(model, inference, [encode_output(name, arrays[name], False)[0] for name, _ in outputs])

    return PlannedPrediction(*output_rows(model, inference, outputs), answer)


def infer_response(
    model: Predictor, inference: InferenceRequest, arrays: dict[str, np.ndarray], outputs: list[tuple[str, bool]]
) -> Response:
    encoded = []
    blobs = []
    for name, binary in outputs:
        output, blob = encode_output(name, arrays[name], binary)
        encoded.append(output)
        if blob is not None:
            blobs.append(blob)
    header = orjson.dumps(response_body(model, inference, encoded))
    if not blobs:
        return Response(header, mimetype=JSON_MIMETYPE)
    response = Response(b"".join([header, *blobs]), mimetype=BINARY_MIMETYPE)
    response.headers[HEADER_LENGTH] = str(len(header))
    return response


@blueprint.get("/v2")
def server_metadata():
    return json_response({"name": "mlmodel-server", "version": __version__, "extensions": EXTENSIONS})


@blueprint.get("/v2/health/live")
def server_live():
    return json_response({"live": True})


@blueprint.get("/v2/health/ready")
def server_ready():
    return json_response({"ready": True})  # the server listens only once the model is loaded


@blueprint.get("/v2/models")
def list_models():
    return json_response({"models": [served_model().identity.name]})


@blueprint.get("/v2/models/<name>")
@blueprint.get("/v2/models/<name>/versions/<version>")
def model_metadata(name: str, version: str | None = None):
    return json_response(metadata(model_named(name, version)))


@blueprint.get("/v2/models/<name>/ready")
@blueprint.get("/v2/models/<name>/versions/<version>/ready")
def model_ready(name: str, version: str | None = None):
    return json_response({"name": model_named(name, version).identity.name, "ready": True})


@blueprint.post("/v2/models/<name>/infer")
@blueprint.post("/v2/models/<name>/versions/<version>/infer")
def infer(name: str, version: str | None = None):
    model = model_named(name, version)
    inference = read_inference(request.environ)
    outputs = requested_outputs(inference, model)
    rows, want_proba = output_rows(model, inference, outputs)
    return infer_response(model, inference, output_arrays(model.predict(rows, want_proba)), outputs)
