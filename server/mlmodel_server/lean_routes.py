"""Lean routes: the hot inference routes answered on the WSGI environ, in front of Flask: `POST /predict`,
`POST /v1/models/NAME:predict` and `POST /v2/models/NAME[/versions/VERSION]/infer`.

Flask's request context, routing, hooks and Response object cost more per request than the model call of
a micro-batch shared by a few requests. A lean route takes the same steps as the Flask route of its path:
the request pipeline (pipeline.py: request id, size limit, API key, body, content type, decoding, error
answer, metrics and access log line) and the route's own reading and reply functions (protocols/), so it
answers every request to its path, refusals included, as the Flask route does.

Everything else is Flask's: other paths and methods, and V2 requests that ask for binary outputs (handed on
with their admitted body, their request id and start time, which the Flask hooks then keep).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from werkzeug.http import HTTP_STATUS_CODES

from mlmodel_server.errors import error_body
from mlmodel_server.pipeline import JSON_MIMETYPE, REQUEST_ID_HEADER, Environ, Pipeline, refusal, refusal_headers
from mlmodel_server.predictor import Predictor
from mlmodel_server.protocols import classic, v1, v2

WsgiApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

OK = "200 OK"


@dataclass(frozen=True)
class LeanRoute:
    template: str  # the Flask route's rule: the route label of the metrics
    path: str  # as logged
    read: Callable[[Environ], Any]  # the admitted body, decoded
    reply: Callable[[Any, Predictor], dict[str, Any]]


class LeanRoutes:
    def __init__(self, flask_wsgi_app: WsgiApp, predictor: Predictor, pipeline: Pipeline):
        self._flask = flask_wsgi_app
        self._predictor = predictor
        self._pipeline = pipeline
        name, version = predictor.identity.name, predictor.identity.version
        routes = [
            LeanRoute("/predict", "/predict", pipeline.json_body, classic.reply),
            LeanRoute("/v1/models/<name>:predict", f"/v1/models/{name}:predict", pipeline.json_body, v1.reply),
            LeanRoute("/v2/models/<name>/infer", f"/v2/models/{name}/infer", v2.read_inference, v2.json_reply),
        ]
        if version:
            routes.append(
                LeanRoute(
                    "/v2/models/<name>/versions/<version>/infer",
                    f"/v2/models/{name}/versions/{version}/infer",
                    v2.read_inference,
                    v2.json_reply,
                )
            )
        # PATH_INFO is the URL path decoded as latin-1 (PEP 3333); a name outside ASCII must match in that form.
        self._routes = {route.path.encode().decode("latin-1"): route for route in routes}

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self._routes.get(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        if route is None:
            return self._flask(environ, start_response)
        pipeline = self._pipeline
        request_id = pipeline.start(environ)
        try:
            pipeline.admit(environ, route.path)
            payload = orjson.dumps(route.reply(route.read(environ), self._predictor))
            status, status_line, extra_headers = 200, OK, []
        except v2.BinaryOutputWanted:
            return self._flask(environ, start_response)
        except Exception as failure:
            error = refusal(failure, request_id)
            payload = error_body(error.message, request_id)
            status, status_line = (
                error.status,
                f"{error.status} {HTTP_STATUS_CODES[error.status].upper()}",
            )  # as werkzeug writes it
            extra_headers = refusal_headers(error)
        start_response(
            status_line,
            [
                ("Content-Type", JSON_MIMETYPE),
                ("Content-Length", str(len(payload))),
                (REQUEST_ID_HEADER, request_id),
                *extra_headers,
            ],
        )
        pipeline.account(environ, route.template, route.path, status)
        return [payload]
