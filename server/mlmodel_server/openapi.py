"""The OpenAPI 3 description of every route, served at /openapi.json."""

import copy
from typing import Any

from mlmodel_server import __version__
from mlmodel_server.frames import METADATA_DATATYPES, TENSOR_DATATYPES
from mlmodel_server.signature import Column, ColumnKind, ModelSignature

ERROR = {"$ref": "#/components/schemas/Error"}
NUMBER_ROW = {"type": "array", "items": {"type": "number"}, "minItems": 1}
NAMED_ROW = {"type": "object", "additionalProperties": {"type": "number"}, "description": "feature name → value"}
ROWS = {"type": "array", "items": {"oneOf": [NUMBER_ROW, NAMED_ROW]}, "minItems": 1}
PARAMETERS = {
    "type": "object",
    "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
}
DATATYPES = [
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "request_id": {"type": "string"}},
    },
    "ClassicRequest": {
        "type": "object",
        "description": "`features`: one row (list of numbers or object keyed by feature name) or a list of rows; "
        "`instances`: a list of rows.",
        "properties": {"features": {"oneOf": [NUMBER_ROW, NAMED_ROW, ROWS]}, "instances": ROWS},
    },
    "ClassicResponse": {
        "type": "object",
        "required": ["prediction", "status"],
        "properties": {
            "prediction": {"description": "a label (one row) or a list of labels"},
            "confidence": {"description": "the highest class probability, or a list of them (classifiers only)"},
            "status": {"type": "string", "enum": ["success"]},
        },
    },
    "V1Request": {"type": "object", "required": ["instances"], "properties": {"instances": ROWS}},
    "V1Response": {"type": "object", "required": ["predictions"], "properties": {"predictions": {"type": "array"}}},
    "V1ModelStatus": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "Models": {"type": "object", "properties": {"models": {"type": "array", "items": {"type": "string"}}}},
    "Tensor": {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": DATATYPES},
            "parameters": PARAMETERS,
            "data": {"type": "array"},
        },
    },
    "InferenceRequest": {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "parameters": PARAMETERS,
            "inputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}, "minItems": 1},
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": ["predict", "predict_proba"]},
                        "parameters": PARAMETERS,
                    },
                },
            },
        },
    },
    "InferenceResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "outputs": {"type": "array", "items": {"$ref": "#/components/schemas/Tensor"}},
        },
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array"},
            "outputs": {"type": "array"},
        },
    },
    "Status": {"type": "object"},
}


JSON_TYPES: dict[ColumnKind, str] = {"number": "number", "integer": "integer", "boolean": "boolean", "string": "string"}


def column_schema(column: Column) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[column.kind]}
    if column.categories is not None:
        schema["enum"] = list(column.categories)
    return schema


def model_schemas(signature: ModelSignature) -> dict[str, Any]:
    """SCHEMAS with what this model takes and gives: its named columns and their kinds (a model of typed
    columns), and its classes (a classifier)."""
    schemas = copy.deepcopy(SCHEMAS)
    if signature.classes is not None:
        label = {"enum": list(signature.classes), "description": "one of the model's classes"}
        schemas["ClassicResponse"]["properties"]["prediction"]["oneOf"] = [label, {"type": "array", "items": label}]
        schemas["V1Response"]["properties"]["predictions"]["items"] = label
    if signature.takes_frame and signature.columns is not None:
        columns = signature.columns
        row = {
            "type": "object",
            "description": "column name → value; every column, none null (a list of values in this order is taken too)",
            "properties": {column.name: column_schema(column) for column in columns},
            "required": [column.name for column in columns],
            "additionalProperties": False,
        }
        rows = {"type": "array", "items": row, "minItems": 1}
        schemas["ClassicRequest"]["description"] = "`features`: one row or a list of rows; `instances`: a list of rows."
        schemas["ClassicRequest"]["properties"] = {"features": {"oneOf": [row, rows]}, "instances": rows}
        schemas["V1Request"]["properties"] = {"instances": rows}
        schemas["ColumnInput"] = {
            "type": "object",
            "description": "one input per column, shape [N] or [N, 1]: "
            + ", ".join(f"{c.name} {METADATA_DATATYPES[c.kind]}" for c in columns),
            "required": ["name", "shape", "datatype"],
            "properties": {
                "name": {"type": "string", "enum": [column.name for column in columns]},
                "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
                "datatype": {
                    "type": "string",
                    "enum": sorted(set().union(*(TENSOR_DATATYPES[column.kind] for column in columns))),
                },
                "parameters": PARAMETERS,
                "data": {"type": "array"},
            },
        }
        schemas["InferenceRequest"]["properties"]["inputs"]["items"] = {"$ref": "#/components/schemas/ColumnInput"}
    return schemas


def json_body(schema_name: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}},
    }


def responses(ok_schema: str, *errors: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "200": {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ok_schema}"}}},
        }
    }
    for status in errors:
        result[str(status)] = {"description": "error", "content": {"application/json": {"schema": ERROR}}}
    return result


def path_parameter(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def operation(
    summary: str,
    ok: str,
    errors: tuple[int, ...],
    body: str | None = None,
    parameters: tuple[str, ...] = (),
    secured: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": responses(ok, *errors)}
    if body:
        op["requestBody"] = json_body(body)
    if parameters:
        op["parameters"] = [path_parameter(p) for p in parameters]
    if not secured:
        op["security"] = []
    return op


def openapi_document(model_name: str, api_key: bool, signature: ModelSignature) -> dict[str, Any]:
    infer_errors = (400, 401, 404, 413, 415)
    model_errors = (401, 404)
    paths: dict[str, Any] = {
        "/health": {"get": operation("Liveness", "Status", (), secured=False)},
        "/ready": {
            "get": operation("Readiness: the server listens once the model is loaded", "Status", (), secured=False)
        },
        "/predict": {"post": operation("Classic prediction", "ClassicResponse", infer_errors, "ClassicRequest")},
        "/v1/models": {"get": operation("KServe V1: models served", "Models", (401,))},
        "/v1/models/{name}": {
            "get": operation("KServe V1: model status", "V1ModelStatus", model_errors, parameters=("name",))
        },
        "/v1/models/{name}:predict": {
            "post": operation("KServe V1: predict", "V1Response", infer_errors, "V1Request", ("name",)),
        },
        "/v2": {"get": operation("V2: server metadata", "Status", (401,))},
        "/v2/health/live": {"get": operation("V2: server live", "Status", (), secured=False)},
        "/v2/health/ready": {"get": operation("V2: server ready", "Status", (), secured=False)},
        "/v2/models": {"get": operation("Models served", "Models", (401,))},
    }
    for prefix, parameters in (
        ("/v2/models/{name}", ("name",)),
        ("/v2/models/{name}/versions/{version}", ("name", "version")),
    ):
        paths[prefix] = {"get": operation("V2: model metadata", "ModelMetadata", model_errors, parameters=parameters)}
        paths[prefix + "/ready"] = {"get": operation("V2: model ready", "Status", model_errors, parameters=parameters)}
        paths[prefix + "/infer"] = {
            "post": operation(
                "V2: inference (JSON; the binary tensor extension is accepted too)",
                "InferenceResponse",
                infer_errors,
                "InferenceRequest",
                parameters,
            ),
        }
    document: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": f"mlmodel-server: {model_name}",
            "version": __version__,
            "description": "Classic /predict, KServe V1 and Open Inference Protocol V2 for one scikit-learn model.",
        },
        "paths": paths,
        "components": {"schemas": model_schemas(signature)},
    }
    if api_key:
        document["components"]["securitySchemes"] = {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        document["security"] = [{"apiKey": []}, {"bearer": []}]
    paths["/metrics"] = {
        "get": {
            "summary": "Prometheus metrics",
            "security": [],
            "responses": {
                "200": {
                    "description": "text exposition format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    }
    paths["/openapi.json"] = {
        "get": {
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object"}}}}
            },
        }
    }
    return document
