"""The request pipeline: the steps every request takes, written once, whichever route answers it (a Flask route,
app.py and protocols/, or a lean route, lean_routes.py) and whichever HTTP server runs the app (serving/).

    start      the request id (the client's X-Request-ID when it is a sane one) and the start time
    admit      the size limit (`refuse_oversized`), the API key (`require_api_key`), the whole body (`read_body`)
    json_body  the content type (`check_content_type`) and the decoded body (`decode_json`); V2 inference
               takes the same two steps in `protocols.v2.read_inference`, binary tensors allowed
               ... then the route answers, or a step refuses the request with an ApiError ...
    refusal    what a failure is answered with: the ApiError itself, or a logged internal error, written
               as `errors.error_body` (the one JSON error shape, which the HTTP servers' own refusals share)
    account    metrics and the access log line

The steps work on the WSGI environ, not on Flask's request, so that the lean routes run them without Flask;
the request's own state (its id, start time and body) is kept in the environ under the `mlmodel.` keys.
"""

import itertools
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from werkzeug.http import parse_options_header
from werkzeug.sansio.utils import get_content_length

from mlmodel_server import auth, metrics
from mlmodel_server.errors import (
    ApiError,
    BodyTimeout,
    BodyTooLarge,
    InternalError,
    InvalidInput,
    MalformedBody,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger("mlmodel_server.app")
access_log = logging.getLogger("mlmodel_server.access")

Environ = dict[str, Any]

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
JSON_MIMETYPE = "application/json"
BINARY_MIMETYPE = "application/octet-stream"
REQUEST_ID_KEY = "mlmodel.request_id"
STARTED_KEY = "mlmodel.started"
BODY_KEY = "mlmodel.body"  # the whole body, once `read_body` has read it
# A body somewhat over the limit is read and dropped so the client gets its 413 instead of a reset
# connection; a body far over it is not worth reading.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
# Routes that probes and scrapers call every few seconds: never in the access log.
UNLOGGED_ROUTES = frozenset({"/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"})


def request_id_from(header: str | None) -> str:
    if header and VALID_REQUEST_ID.fullmatch(header):
        return header
    return f"{_request_id_prefix}{next(_request_numbers):016x}"


# Generated request ids: 32 hex digits, a random prefix per process and a counter. uuid4 reads the system's
# random source on every request, and that system call gives up the GIL in the middle of the request path:
# under load the thread then waits for the GIL behind the others (130 µs per call in a profile at concurrency 64).
_request_id_prefix: str
_request_numbers: "itertools.count[int]"


def _new_request_ids() -> None:
    global _request_id_prefix, _request_numbers
    _request_id_prefix, _request_numbers = os.urandom(8).hex(), itertools.count()


_new_request_ids()
os.register_at_fork(after_in_child=_new_request_ids)  # each worker its own prefix


class EnvironHeaders:
    """The request headers `auth.is_authorized` reads, straight from the environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: Environ):
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


def content_length(environ: Environ) -> int | None:
    """The declared length as werkzeug's `Request.content_length` reads it: None for no header or a chunked
    body, 0 for a value that is not a number."""
    declared = environ.get("CONTENT_LENGTH")
    if declared is not None and declared.isascii() and declared.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ:
        return int(declared)
    return get_content_length(declared, environ.get("HTTP_TRANSFER_ENCODING"))


def mimetype_of(environ: Environ) -> str:
    """The Content-Type without its parameters, lowercased (werkzeug's `Request.mimetype`)."""
    return parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == JSON_MIMETYPE or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def drain_body(environ: Environ, declared: int) -> None:
    stream = environ.get("wsgi.input")
    if stream is None or declared > MAX_DRAIN_BYTES:
        return
    remaining = declared
    while remaining > 0:
        try:
            chunk = stream.read(min(remaining, 1 << 16))
        except Exception:  # the rest did not arrive (too slow, connection broken): the connection closes anyway
            return
        if not chunk:
            return
        remaining -= len(chunk)


def refuse_oversized(environ: Environ, declared: int | None, limit: int) -> None:
    if declared is not None and declared > limit:
        drain_body(environ, declared)
        raise BodyTooLarge(f"request body of {declared} bytes exceeds the limit of {limit}")


def require_api_key(environ: Environ, api_key: bytes) -> None:
    if not auth.is_authorized(EnvironHeaders(environ), api_key):
        raise Unauthorized("missing or wrong API key: send X-API-Key or Authorization: Bearer")


def read_body(environ: Environ, declared: int | None, limit: int) -> bytes:
    """The whole body, at most `limit` bytes; read once, then kept in the environ.

    It is read before any route runs, so a body that does not arrive as its headers declare is the client's
    error on every route: broken chunked encoding (the server's reader raises), a body that ends before its
    Content-Length (the stream just ends early), or one too slow to arrive. A declared length over the limit
    was already refused; chunked bodies declare none.
    """
    body = environ.get(BODY_KEY)
    if body is not None:
        return body
    try:
        if declared is not None:
            body = environ["wsgi.input"].read(declared)
        elif "HTTP_TRANSFER_ENCODING" in environ:
            body = environ["wsgi.input"].read(limit + 1)
        else:
            body = b""
    except TimeoutError:
        raise BodyTimeout("the request body did not arrive in time") from None
    except Exception as error:  # whatever the server's reader raises on a body framed unlike its headers say
        raise MalformedBody(f"malformed request body ({type(error).__name__}: {str(error)[:200]})") from None
    if declared is not None and len(body) != declared:
        raise MalformedBody(f"the request body ended after {len(body)} of the {declared} bytes of its Content-Length")
    if len(body) > limit:
        raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
    environ[BODY_KEY] = body
    return body


def check_content_type(environ: Environ, allow_binary: bool = False) -> None:
    """No Content-Type is read as JSON (several clients, tritonclient among them, send none)."""
    if environ.get("CONTENT_TYPE") == JSON_MIMETYPE:  # what nearly every request sends, without parsing it
        return
    mimetype = mimetype_of(environ)
    if not mimetype or is_json_mimetype(mimetype):
        return
    if allow_binary and mimetype == BINARY_MIMETYPE:
        return
    accepted = JSON_MIMETYPE + (f" or {BINARY_MIMETYPE}" if allow_binary else "")
    raise UnsupportedMediaType(f"unsupported content type {mimetype!r}: send {accepted}")


def decode_json(body: bytes | memoryview, decode: Callable[[Any], Any] = orjson.loads) -> Any:
    try:
        return decode(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"malformed JSON: {error}") from None


def refusal(failure: Exception, request_id: str) -> ApiError:
    """What a request that failed is answered with: its ApiError, or an internal error (logged)."""
    if isinstance(failure, ApiError):
        return failure
    log.error("Failed request", exc_info=failure, extra={"request_id": request_id})
    return InternalError(f"internal error ({type(failure).__name__}); request id {request_id}")


def refusal_headers(error: ApiError) -> list[tuple[str, str]]:
    headers = list(error.headers)
    if error.close_connection:  # an unread rest of the body would be taken for the next request
        headers.append(("Connection", "close"))
    return headers


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


class Pipeline:
    """The steps with the app's settings: its size limit, API key, JSON decoder and access log."""

    def __init__(
        self,
        max_request_bytes: int,
        api_key: bytes | None,
        access_log: bool,
        access_log_sample_percent: int,
        decode: Callable[[bytes], Any] = orjson.loads,
    ):
        self.max_request_bytes = max_request_bytes
        self.api_key = api_key
        self.decode = decode  # orjson.loads, or compiled_json's decoder for numeric rows
        self._access_log = access_log
        self._sampler = AccessLogSampler(access_log_sample_percent)

    def start(self, environ: Environ) -> str:
        """The request's id; a request handed on from a lean route to Flask keeps its id and start time."""
        request_id = environ.get(REQUEST_ID_KEY)
        if request_id is None:
            request_id = environ[REQUEST_ID_KEY] = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
            environ[STARTED_KEY] = time.perf_counter()
        return request_id

    def admit(self, environ: Environ, path: str) -> bytes:
        declared = content_length(environ)
        refuse_oversized(environ, declared, self.max_request_bytes)
        if self.api_key is not None and path not in auth.OPEN_PATHS:
            require_api_key(environ, self.api_key)
        return read_body(environ, declared, self.max_request_bytes)

    def json_body(self, environ: Environ) -> Any:
        """The admitted body of a JSON-only route, decoded."""
        check_content_type(environ)
        return decode_json(environ[BODY_KEY], self.decode)

    def account(self, environ: Environ, route: str, path: str, status: int) -> None:
        """Metrics and the access log line of an answered request (`route`: the route's template, or a
        fixed placeholder when none matched)."""
        started = environ.get(STARTED_KEY)
        seconds = time.perf_counter() - started if started is not None else 0.0
        method = environ.get("REQUEST_METHOD", "")
        metrics.observe_request(route, method, status, seconds)
        if self._access_log and self._sampler.wanted(route, status):
            access_log.info(
                "Handled request",
                extra={
                    "request_id": environ.get(REQUEST_ID_KEY),
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_seconds": round(seconds, 6),
                },
            )
