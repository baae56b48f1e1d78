"""What the HTTP layer must refuse that granian hands the app as if it were fine (granian 2.8, measured).

granian's WSGI body turns a body error into the end of the body: a body shorter than its Content-Length
followed by EOF, or a chunked body whose framing breaks, reaches the app as the bytes that did arrive.
This middleware reads a declared-length body in full before the app runs and refuses a short one with the
app's usual JSON error. A chunked body carries no length to compare against: framing broken before a whole
JSON document arrived leaves the app a truncated or empty body, which it refuses as malformed JSON (400).
"""

import io
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from mlmodel_server.app import REQUEST_ID_HEADER, request_id_from
from mlmodel_server.http_io import JSON_MIMETYPE

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

BAD_REQUEST = "400 Bad Request"


class TransportGuard:
    def __init__(self, app: WsgiApp, max_request_bytes: int):
        self._app = app
        self._max_request_bytes = max_request_bytes

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        declared = environ.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and "HTTP_TRANSFER_ENCODING" not in environ:
            length = int(declared)
            # a body over the limit is the app's to refuse (413), without reading it all first
            if 0 < length <= self._max_request_bytes:
                body = environ["wsgi.input"].read(length)
                if len(body) < length:
                    return short_body(environ, start_response, len(body), length)
                environ["wsgi.input"] = io.BytesIO(body)
        return self._app(environ, start_response)


def short_body(environ: dict[str, Any], start_response: Callable[..., Any], got: int, declared: int) -> list[bytes]:
    request_id = request_id_from(environ.get("HTTP_X_REQUEST_ID"))
    message = f"request body ended after {got} of the {declared} bytes its Content-Length declares"
    payload = orjson.dumps({"error": message, "request_id": request_id})
    start_response(BAD_REQUEST, [("Content-Type", JSON_MIMETYPE), ("Content-Length", str(len(payload))),
                                 (REQUEST_ID_HEADER, request_id), ("Connection", "close")])
    return [payload]
