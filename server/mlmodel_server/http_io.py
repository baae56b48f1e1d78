"""What the Flask routes and hooks use of the request pipeline: the admitted body decoded, JSON responses out."""

from typing import Any

import orjson
from flask import Request, Response, current_app, request

from mlmodel_server.errors import error_body
from mlmodel_server.pipeline import JSON_MIMETYPE, REQUEST_ID_KEY, Pipeline
from mlmodel_server.predictor import Predictor

PREDICTOR_KEY = "mlmodel.predictor"
PIPELINE_KEY = "mlmodel.pipeline"


def served_model() -> Predictor:
    return current_app.extensions[PREDICTOR_KEY]


def read_json(http_request: Request) -> Any:
    """The body of a JSON route, admitted by the pipeline before the route ran, decoded."""
    pipeline: Pipeline = current_app.extensions[PIPELINE_KEY]
    return pipeline.json_body(http_request.environ)


def json_response(payload: Any, status: int = 200, headers: Any = None) -> Response:
    return Response(orjson.dumps(payload), status=status, headers=headers, mimetype=JSON_MIMETYPE)


def error_response(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    body = error_body(message, request.environ.get(REQUEST_ID_KEY, ""))
    return Response(body, status=status, headers=headers, mimetype=JSON_MIMETYPE)
