"""The Flask app factory: the request pipeline (pipeline.py) runs in its hooks and error handlers, the routes
live in protocols/ and call only the Predictor, and the hot inference routes are served by lean routes
(lean_routes.py) in front of Flask, through the same pipeline."""

from dataclasses import dataclass

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from mlmodel_contract import spec_defaults
from mlmodel_server import metrics
from mlmodel_server.compiled_json import rows_decoder
from mlmodel_server.http_io import PIPELINE_KEY, PREDICTOR_KEY, error_response, json_response
from mlmodel_server.lean_routes import LeanRoutes
from mlmodel_server.openapi import openapi_document
from mlmodel_server.pipeline import REQUEST_ID_HEADER, REQUEST_ID_KEY, Pipeline, refusal, refusal_headers
from mlmodel_server.predictor import Predictor
from mlmodel_server.protocols import classic, v1, v2

UNMATCHED_ROUTE = "<unmatched>"


@dataclass(frozen=True)
class AppOptions:
    max_request_bytes: int = spec_defaults.SERVER["maxRequestBytes"]
    api_key: bytes | None = None
    access_log: bool = False
    access_log_sample_percent: int = spec_defaults.SERVER["accessLogSamplePercent"]


def create_app(predictor: Predictor, options: AppOptions) -> Flask:
    app = Flask("mlmodel_server")
    decode = rows_decoder() if predictor.kernels.compiled else orjson.loads
    pipeline = Pipeline(
        options.max_request_bytes, options.api_key, options.access_log, options.access_log_sample_percent, decode
    )
    app.extensions[PREDICTOR_KEY] = predictor
    app.extensions[PIPELINE_KEY] = pipeline
    app.url_map.strict_slashes = False
    document = openapi_document(predictor.identity.name, options.api_key is not None, predictor.signature)

    @app.before_request
    def admit_request() -> None:
        pipeline.start(request.environ)
        pipeline.admit(request.environ, request.path)

    @app.after_request
    def account_request(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request.environ.get(REQUEST_ID_KEY, "")
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
        pipeline.account(request.environ, route, request.path, response.status_code)
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        """Flask's own refusals (no such route, method not allowed) in the pipeline's JSON shape."""
        headers = []
        if error.code == 405:
            allowed = error.get_response().headers.get("Allow")
            if allowed:
                headers.append(("Allow", allowed))
        message = error.description if error.code != 404 else f"no route {request.method} {request.path}"
        return error_response(error.code or 500, message or "", headers)

    @app.errorhandler(Exception)
    def refuse(failure: Exception) -> Response:
        error = refusal(failure, request.environ.get(REQUEST_ID_KEY, ""))
        return error_response(error.status, error.message, refusal_headers(error))

    @app.get("/health")
    def health():
        return json_response({"status": "healthy"})

    @app.get("/ready")
    def ready():
        # the server listens only once the model is loaded (serving/command.py): ready whenever it answers
        return json_response({"status": "ready", "model": predictor.identity.name})

    @app.get("/metrics")
    def metrics_route():
        body, content_type = metrics.exposition()
        return Response(body, content_type=content_type)

    @app.get("/openapi.json")
    def openapi():
        return json_response(document)

    app.register_blueprint(classic.blueprint)
    app.register_blueprint(v1.blueprint)
    app.register_blueprint(v2.blueprint)
    app.wsgi_app = LeanRoutes(app.wsgi_app, predictor, pipeline)  # type: ignore[method-assign]
    return app
