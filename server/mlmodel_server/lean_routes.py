"""A WSGI fast path for the hot inference routes: `POST /predict`, `POST /v1/models/NAME:predict` and JSON
`POST /v2/models/NAME[/versions/VERSION]/infer` (binary tensors go through Flask).

Flask's request context, routing, hooks and Response object cost more per request than the model call of
a micro-batch shared by a few requests. For the plain, successful case of these routes this module does
the same work directly on the WSGI environ: same request id, auth, parsing, validation, prediction, response
body and headers, metrics and access log line as the Flask routes (it calls their own `reply` functions).

Anything else is handed to Flask unchanged, so every error keeps exactly one implementation: an unusual
request (other path or method, no or oversized Content-Length, a content type that is not JSON, a wrong API
key) is passed on before its body is read, and a request that fails after its body was read is replayed into
Flask with the body restored, which answers it (and logs and counts it) as it always did.
"""

import io
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from mlmodel_server import auth
from mlmodel_server.http_io import JSON_MIMETYPE, is_json_mimetype
from mlmodel_server.predictor import Predictor
from mlmodel_server.protocols import classic, v1, v2

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Reply = Callable[[Any, Predictor], dict[str, Any]]
# (route template, method, path, status, seconds, request id): the app's metrics and access log line
Account = Callable[[str, str, str, int, float, str], None]

OK = "200 OK"


class EnvironHeaders:
    """The request headers `auth.is_authorized` reads, straight from the environ."""

    __slots__ = ("environ",)

    def __init__(self, environ: dict[str, Any]):
        self.environ = environ

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"), default)


class FastRoutes:
    def __init__(
        self,
        flask_wsgi_app: WsgiApp,
        predictor: Predictor,
        max_request_bytes: int,
        api_key: bytes | None,
        request_id_from: Callable[[str | None], str],
        account: Account,
        decode: Callable[[bytes], Any] = orjson.loads,
    ):
        self._flask = flask_wsgi_app
        self._decode = decode  # orjson.loads, or compiled_json's decoder for numeric rows
        self._predictor = predictor
        self._max_request_bytes = max_request_bytes
        self._api_key = api_key
        self._request_id_from = request_id_from
        self._account = account
        # PATH_INFO is the URL path decoded as latin-1 (PEP 3333); a name outside ASCII must match in that form.
        name, version = predictor.identity.name, predictor.identity.version
        paths: list[tuple[str, str, Reply]] = [
            ("/predict", "/predict", classic.reply),
            (f"/v1/models/{name}:predict", "/v1/models/<name>:predict", v1.reply),
            (f"/v2/models/{name}/infer", "/v2/models/<name>/infer", v2.json_reply),
        ]
        if version:
            paths.append(
                (
                    f"/v2/models/{name}/versions/{version}/infer",
                    "/v2/models/<name>/versions/<version>/infer",
                    v2.json_reply,
                )
            )
        # PATH_INFO → (route template for metrics, path as logged, reply)
        self._routes: dict[str, tuple[str, str, Reply]] = {
            path.encode().decode("latin-1"): (template, path, reply) for path, template, reply in paths
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        route = self._routes.get(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        if route is None or not self._plain(environ):
            return self._flask(environ, start_response)
        started = time.perf_counter()
        length = int(environ["CONTENT_LENGTH"])
        try:
            body = environ["wsgi.input"].read(length) if length else b""
        except Exception:  # the body did not arrive (too slow, connection broken): Flask's reader says so
            return self._flask(environ, start_response)
        try:
            if len(body) != length:
                raise EOFError  # the connection ended before the body did: not a request to serve
            payload = orjson.dumps(route[2](self._decode(body), self._predictor))
        except Exception:
            # Errors are Flask's to answer: replay the request with its body.
            environ["wsgi.input"] = io.BytesIO(body)
            return self._flask(environ, start_response)
        request_id = self._request_id_from(environ.get("HTTP_X_REQUEST_ID"))
        start_response(
            OK, [("Content-Type", JSON_MIMETYPE), ("Content-Length", str(len(payload))), ("X-Request-ID", request_id)]
        )
        self._account(route[0], "POST", route[1], 200, time.perf_counter() - started, request_id)
        return [payload]

    def _plain(self, environ: dict[str, Any]) -> bool:
        """A request the fast path may answer: a declared length within the limit, a JSON (or no) content
        type, and the API key when one is required."""
        declared = environ.get("CONTENT_LENGTH")
        if not declared or not (declared.isascii() and declared.isdigit()) or int(declared) > self._max_request_bytes:
            return False
        if "HTTP_TRANSFER_ENCODING" in environ:
            return False
        content_type = environ.get("CONTENT_TYPE")
        if content_type:
            mimetype = content_type.partition(";")[0].strip().lower()
            if mimetype and not is_json_mimetype(mimetype):
                return False
        return not (self._api_key is not None and not auth.is_authorized(EnvironHeaders(environ), self._api_key))
