"""Request bodies in, JSON responses out: the only place that touches orjson and Flask's request."""

from typing import Any

import orjson
from flask import Request, Response, current_app

from mlmodel_server.errors import ApiError, InvalidInput, UnsupportedMediaType

JSON_MIMETYPE = "application/json"
BINARY_MIMETYPE = "application/octet-stream"


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


def read_body(request: Request) -> bytes:
    """The body, at most MAX_CONTENT_LENGTH bytes. A declared larger length was already refused before the
    route ran; this also covers chunked bodies, which declare none."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None:
        return request.get_data(cache=False)
    body = request.environ["wsgi.input"].read(limit + 1)
    if len(body) > limit:
        raise ApiError(f"request body exceeds the limit of {limit} bytes", status=413)
    return body


def read_json(request: Request) -> Any:
    check_content_type(request)
    return parse_json(read_body(request))


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status=status, headers=headers, mimetype=JSON_MIMETYPE)
