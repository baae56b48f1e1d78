"""Lean routes: the hot inference routes answered on the WSGI environ, in front of Flask: `POST /predict`,
`POST /v1/models/NAME:predict` and `POST /v2/models/NAME[/versions/VERSION]/infer`.

Flask's request context, routing, hooks and Response object cost more per request than the model call of
a micro-batch shared by a few requests. A lean route takes the same steps as the Flask route of its path:
the request pipeline (pipeline.py: request id, size limit, API key, body, content type, decoding, error
answer, metrics and access log line) and the route's own reading and planning functions (protocols/), so
it answers every request to its path, refusals included, as the Flask route does.

A server that holds several whole requests at once (the event-loop worker, after one `select()`) hands them
over together (`call_together`): their rows then share the model's calls, as the micro-batcher's threads
would share them, without a thread per request.

Everything else is Flask's: other paths and methods, and V2 requests that ask for binary outputs (handed on
with their admitted body, their request id and start time, which the Flask hooks then keep).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from werkzeug.http import HTTP_STATUS_CODES

from mlmodel_server.batching import BatchResult
from mlmodel_server.errors import error_body
from mlmodel_server.pipeline import JSON_MIMETYPE, REQUEST_ID_HEADER, Environ, Pipeline, refusal, refusal_headers
from mlmodel_server.predictor import PlannedPrediction, Predictor
from mlmodel_server.protocols import classic, v1, v2

WsgiApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

OK = "200 OK"


@dataclass(frozen=True)
class LeanRoute:
    template: str  # the Flask route's rule: the route label of the metrics
    path: str  # as logged
    read: Callable[[Environ], Any]  # the admitted body, decoded
    plan: Callable[[Any, Predictor], PlannedPrediction]


@dataclass(frozen=True)
class Admitted:
    """A request to a lean route, read up to its model call."""

    environ: Environ
    start_response: Callable[..., Any]
    route: LeanRoute
    request_id: str
    prediction: PlannedPrediction


class LeanRoutes:
    def __init__(self, flask_wsgi_app: WsgiApp, predictor: Predictor, pipeline: Pipeline):
        self._flask = flask_wsgi_app
        self._predictor = predictor
        self._pipeline = pipeline
        name, version = predictor.identity.name, predictor.identity.version
        routes = [
            LeanRoute("/predict", "/predict", pipeline.json_body, classic.plan),
            LeanRoute("/v1/models/<name>:predict", f"/v1/models/{name}:predict", pipeline.json_body, v1.plan),
            LeanRoute("/v2/models/<name>/infer", f"/v2/models/{name}/infer", v2.read_inference, v2.json_plan),
        ]
        if version:
            routes.append(
                LeanRoute(
                    "/v2/models/<name>/versions/<version>/infer",
                    f"/v2/models/{name}/versions/{version}/infer",
                    v2.read_inference,
                    v2.json_plan,
                )
            )
        # PATH_INFO is the URL path decoded as latin-1 (PEP 3333); a name outside ASCII must match in that form.
        self._routes = {route.path.encode().decode("latin-1"): route for route in routes}

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        admitted = self._admit(environ, start_response)
        if not isinstance(admitted, Admitted):
            return admitted
        try:
            outcome: BatchResult | Exception = self._predictor.predict(
                admitted.prediction.rows, admitted.prediction.want_proba
            )
        except Exception as failure:
            outcome = failure
        return self._finish(admitted, outcome)

    def call_together(self, calls: list[tuple[Environ, Callable[..., Any]]]) -> list[Iterable[bytes]]:
        """WSGI calls of requests that arrived together on one thread (the event loop's round), answered in
        order: the model calls of the lean routes' requests are shared (Predictor.predict_together), every
        other request is answered as by `__call__`."""
        admitted = [self._admit(environ, start_response) for environ, start_response in calls]
        planned = [entry for entry in admitted if isinstance(entry, Admitted)]
        outcomes = iter(self._predictor.predict_together([entry.prediction for entry in planned]))
        return [self._finish(entry, next(outcomes)) if isinstance(entry, Admitted) else entry for entry in admitted]

    def _admit(self, environ: Environ, start_response: Callable[..., Any]) -> Admitted | Iterable[bytes]:
        """The request read up to its model call; or its answer, when it needs no call of ours (another route,
        a V2 request handed on to Flask, a refusal)."""
        route = self._route(environ)
        if route is None:
            return self._flask(environ, start_response)
        request_id = self._pipeline.start(environ)
        try:
            self._pipeline.admit(environ, route.path)
            return Admitted(
                environ, start_response, route, request_id, route.plan(route.read(environ), self._predictor)
            )
        except v2.BinaryOutputWanted:
            return self._flask(environ, start_response)
        except Exception as failure:
            return self._refuse(environ, start_response, route, request_id, failure)

    def _finish(self, admitted: Admitted, outcome: BatchResult | Exception) -> Iterable[bytes]:
        context = (admitted.environ, admitted.start_response, admitted.route, admitted.request_id)
        try:
            if isinstance(outcome, Exception):
                raise outcome
            payload = orjson.dumps(admitted.prediction.answer(outcome))
        except Exception as failure:
            return self._refuse(*context, failure)
        return self._respond(*context, payload)

    def _route(self, environ: Environ) -> LeanRoute | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        return self._routes.get(environ.get("PATH_INFO", ""))

    def _respond(
        self,
        environ: Environ,
        start_response: Callable[..., Any],
        route: LeanRoute,
        request_id: str,
        payload: bytes,
        status: int = 200,
        extra_headers: Iterable[tuple[str, str]] = (),
    ) -> Iterable[bytes]:
        # the status line as werkzeug writes it
        status_line = OK if status == 200 else f"{status} {HTTP_STATUS_CODES[status].upper()}"
        start_response(
            status_line,
            [
                ("Content-Type", JSON_MIMETYPE),
                ("Content-Length", str(len(payload))),
                (REQUEST_ID_HEADER, request_id),
                *extra_headers,
            ],
        )
        self._pipeline.account(environ, route.template, route.path, status)
        return [payload]

    def _refuse(
        self,
        environ: Environ,
        start_response: Callable[..., Any],
        route: LeanRoute,
        request_id: str,
        failure: Exception,
    ) -> Iterable[bytes]:
        error = refusal(failure, request_id)
        payload = error_body(error.message, request_id)
        return self._respond(environ, start_response, route, request_id, payload, error.status, refusal_headers(error))
