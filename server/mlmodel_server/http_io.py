"""Request bodies in, JSON responses out: the only place that touches orjson and Flask's request."""

from typing import Any

import orjson
from flask import Request, Response, current_app

from mlmodel_server.errors import BodyTimeout, BodyTooLarge, InvalidInput, MalformedBody, UnsupportedMediaType

JSON_MIMETYPE = "application/json"
BINARY_MIMETYPE = "application/octet-stream"
# The environ key the whole body is kept under once `read_body` has read it.
BODY_KEY = "mlmodel.body"


def is_json_mimetype(mimetype: str) -> bool:
    return mimetype == JSON_MIMETYPE or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def check_content_type(request: Request, allow_binary: bool = False) -> None:
    """No Content-Type is read as JSON (several clients, tritonclient among them, send none)."""
    mimetype = request.mimetype
    if not mimetype or is_json_mimetype(mimetype):
        return
    if allow_binary and mimetype == BINARY_MIMETYPE:
        return
    accepted = "application/json" + (" or application/octet-stream" if allow_binary else "")
    raise UnsupportedMediaType(f"unsupported content type {mimetype!r}: send {accepted}")


def parse_json(body: bytes | memoryview) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"malformed JSON: {error}") from None


def has_body(request: Request) -> bool:
    return request.content_length is not None or "Transfer-Encoding" in request.headers


def read_body(request: Request) -> bytes:
    """The whole body, at most MAX_CONTENT_LENGTH bytes; read once, then kept in the environ.

    The app reads it before any route runs (app.py), so a body that does not arrive as its headers declare is
    the client's error on every route: broken chunked encoding (the server's reader raises), a body that
    ends before its Content-Length (the stream just ends early), or one too slow to arrive. A declared
    length over the limit was already refused; chunked bodies declare none.
    """
    if BODY_KEY in request.environ:
        return request.environ[BODY_KEY]
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    declared = request.content_length
    stream = request.environ["wsgi.input"]
    try:
        body = stream.read(declared if declared is not None else limit + 1) if has_body(request) else b""
    except TimeoutError:
        raise BodyTimeout("the request body did not arrive in time") from None
    except Exception as error:  # whatever the server's reader raises on a body framed unlike its headers say
        raise MalformedBody(f"malformed request body ({type(error).__name__}: {str(error)[:200]})") from None
    if declared is not None and len(body) != declared:
        raise MalformedBody(f"the request body ended after {len(body)} of the {declared} bytes of its Content-Length")
    if len(body) > limit:
        raise BodyTooLarge(f"request body exceeds the limit of {limit} bytes")
    request.environ[BODY_KEY] = body
    return body


def read_json(request: Request) -> Any:
    check_content_type(request)
    return parse_json(read_body(request))


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status=status, headers=headers, mimetype=JSON_MIMETYPE)
