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


class HandOn(Exception):
    """The request is Flask's to answer after all (a V2 request that wants binary outputs)."""


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
        route = self._route(environ)
        if route is None:
            return self._flask(environ, start_response)
        request_id = self._pipeline.start(environ)
        try:
            planned = self._plan(route, environ)
            payload = orjson.dumps(self._predictor.answer(planned))
        except HandOn:
            return self._flask(environ, start_response)
        except Exception as failure:
            return self._refuse(environ, start_response, route, request_id, failure)
        return self._respond(environ, start_response, route, request_id, payload)

    def call_together(self, calls: list[tuple[Environ, Callable[..., Any]]]) -> list[Iterable[bytes]]:
        """WSGI calls of requests that arrived together on one thread (the event loop's round), answered in
        order: the model calls of the lean routes' requests are shared (Predictor.predict_together), every
        other request is answered as by `__call__`."""
        answers: list[Iterable[bytes] | None] = [None] * len(calls)
        planned: list[tuple[int, LeanRoute, str, PlannedPrediction]] = []
        for index, (environ, start_response) in enumerate(calls):
            route = self._route(environ)
            if route is None:
                answers[index] = self._flask(environ, start_response)
                continue
            request_id = self._pipeline.start(environ)
            try:
                planned.append((index, route, request_id, self._plan(route, environ)))
            except HandOn:
                answers[index] = self._flask(environ, start_response)
            except Exception as failure:
                answers[index] = self._refuse(environ, start_response, route, request_id, failure)
        outcomes = self._predictor.predict_together([prediction for _, _, _, prediction in planned])
        for (index, route, request_id, prediction), outcome in zip(planned, outcomes, strict=True):
            environ, start_response = calls[index]
            try:
                if isinstance(outcome, Exception):
                    raise outcome
                payload = orjson.dumps(prediction.answer(outcome))
            except Exception as failure:
                answers[index] = self._refuse(environ, start_response, route, request_id, failure)
                continue
            answers[index] = self._respond(environ, start_response, route, request_id, payload)
        return [answer for answer in answers if answer is not None]

    def _route(self, environ: Environ) -> LeanRoute | None:
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        return self._routes.get(environ.get("PATH_INFO", ""))

    def _plan(self, route: LeanRoute, environ: Environ) -> PlannedPrediction:
        self._pipeline.admit(environ, route.path)
        try:
            return route.plan(route.read(environ), self._predictor)
        except v2.BinaryOutputWanted:
            raise HandOn() from None

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
