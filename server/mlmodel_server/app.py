"""The Flask app factory: cross-cutting concerns (request id, auth, size limit, errors, metrics, access
log) live here; the routes live in protocols/ and call only the Predictor."""

import itertools
import logging
import os
import re
import time
from dataclasses import dataclass

import orjson
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from mlmodel_contract import spec_defaults
from mlmodel_server import auth, metrics
from mlmodel_server.compiled_json import rows_decoder
from mlmodel_server.errors import ApiError
from mlmodel_server.fastpath import FastRoutes
from mlmodel_server.http_io import json_response, read_body
from mlmodel_server.openapi import openapi_document
from mlmodel_server.predictor import Predictor
from mlmodel_server.protocols import classic, v1, v2

log = logging.getLogger("mlmodel_server.app")
access_log = logging.getLogger("mlmodel_server.access")

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
UNMATCHED_ROUTE = "<unmatched>"
# A body somewhat over the limit is read and dropped so the client gets its 413 instead of a reset
# connection; a body far over it is not worth reading.
MAX_DRAIN_BYTES = 64 * 1024 * 1024


# Routes that probes and scrapers call every few seconds: never in the access log.
UNLOGGED_ROUTES = frozenset({"/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"})


@dataclass(frozen=True)
class AppOptions:
    max_request_bytes: int = spec_defaults.SERVER["maxRequestBytes"]
    api_key: bytes | None = None
    access_log: bool = False
    access_log_sample_percent: int = spec_defaults.SERVER["accessLogSamplePercent"]


class AccessLogSampler:
    """Which answered requests get an access log line: every client or server error, and an even
    `percent` share of the rest (deterministic, so that 10 % is every tenth request, not a coin toss)."""

    def __init__(self, percent: int):
        self._percent = percent
        self._credit = 0

    def wanted(self, route: str, status: int) -> bool:
        if route in UNLOGGED_ROUTES:
            return False
        if status >= 400 or self._percent >= 100:
            return True
        self._credit += self._percent  # a lost update under a thread race only shifts the share slightly
        if self._credit >= 100:
            self._credit -= 100
            return True
        return False


def request_id_from(header: str | None) -> str:
    if header and VALID_REQUEST_ID.fullmatch(header):
        return header
    return f"{_request_id_prefix}{next(_request_numbers):016x}"


# Generated request ids: 32 hex digits, a random prefix per process and a counter. uuid4 reads the system's
# random source on every request, and that system call gives up the GIL in the middle of the request path:
# under load the thread then waits for the GIL behind the others (130 µs per call in a profile at concurrency 64).
def _new_request_ids() -> None:
    global _request_id_prefix, _request_numbers
    _request_id_prefix, _request_numbers = os.urandom(8).hex(), itertools.count()


_new_request_ids()
os.register_at_fork(after_in_child=_new_request_ids)  # each gunicorn worker its own prefix


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": message, "request_id": getattr(g, "request_id", "")}, status, headers)


def drain_body() -> None:
    stream = request.environ.get("wsgi.input")
    remaining = request.content_length or 0
    if stream is None or remaining > MAX_DRAIN_BYTES:
        return
    while remaining > 0:
        try:
            chunk = stream.read(min(remaining, 1 << 16))
        except Exception:  # the rest did not arrive (too slow, connection broken): the connection closes anyway
            return
        if not chunk:
            return
        remaining -= len(chunk)


def create_app(predictor: Predictor, options: AppOptions) -> Flask:
    app = Flask("mlmodel_server")
    app.config["MAX_CONTENT_LENGTH"] = options.max_request_bytes
    app.extensions["mlmodel.predictor"] = predictor
    app.url_map.strict_slashes = False
    document = openapi_document(predictor.identity.name, options.api_key is not None)

    @app.before_request
    def start_request():
        g.started = time.perf_counter()
        g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
        if request.content_length is not None and request.content_length > options.max_request_bytes:
            drain_body()
            return error_response(
                413,
                f"request body of {request.content_length} bytes exceeds the limit of {options.max_request_bytes}",
                {"Connection": "close"},
            )
        if (
            options.api_key is not None
            and request.path not in auth.OPEN_PATHS
            and not auth.is_authorized(request.headers, options.api_key)
        ):
            return error_response(
                401, "missing or wrong API key: send X-API-Key or Authorization: Bearer", {"WWW-Authenticate": "Bearer"}
            )
        read_body(request)  # a body that does not arrive as declared is refused on every route (http_io.py)
        return None

    sampler = AccessLogSampler(options.access_log_sample_percent)

    def account(route: str, method: str, path: str, status: int, seconds: float, request_id: str | None) -> None:
        """Metrics and the access log line of an answered request, from Flask or the fast path."""
        metrics.observe_request(route, method, status, seconds)
        if options.access_log and sampler.wanted(route, status):
            access_log.info(
                "Handled request",
                extra={
                    "request_id": request_id,
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_seconds": round(seconds, 6),
                },
            )

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        started = g.get("started")
        seconds = time.perf_counter() - started if started is not None else 0.0
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED_ROUTE
        account(route, request.method, request.path, response.status_code, seconds, g.get("request_id"))
        return response

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        if error.status >= 500:
            log.error("Failed request", extra={"request_id": g.get("request_id"), "error": error.message})
        # an unread rest of the body would be taken for the next request on this connection
        headers = {"Connection": "close"} if error.close_connection else None
        return error_response(error.status, error.message, headers)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        headers = {}
        if error.code == 405:
            allowed = error.get_response().headers.get("Allow")
            if allowed:
                headers["Allow"] = allowed
        if error.code == 413:
            headers["Connection"] = "close"
        message = error.description if error.code != 404 else f"no route {request.method} {request.path}"
        return error_response(error.code or 500, message, headers)

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception):
        log.exception("Failed request", extra={"request_id": g.get("request_id")})
        return error_response(500, f"internal error ({type(error).__name__}); request id {g.get('request_id')}")

    @app.get("/health")
    def health():
        return json_response({"status": "healthy"})

    @app.get("/ready")
    def ready():
        if not predictor.ready:
            return error_response(503, "model not loaded")
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
    decode = rows_decoder() if predictor.kernels.compiled else orjson.loads
    app.wsgi_app = FastRoutes(
        app.wsgi_app, predictor, options.max_request_bytes, options.api_key, request_id_from, account, decode
    )
    return app
