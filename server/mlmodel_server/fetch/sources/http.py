"""`http://` and `https://`: a streamed GET with redirects and an optional `Authorization` header.

Built on `http.client` (no extra dependency) so the socket is at hand: its timeout is reset to the
remaining budget before every read, which makes `--timeout-seconds` a total bound even for a server
that stalls or trickles. The `Authorization` header (env `HTTP_AUTHORIZATION`, else the URL's userinfo
as Basic auth) is dropped when a redirect leaves the origin, e.g. towards a presigned storage URL.
"""

import base64
import http.client
import socket
import ssl
from collections.abc import Generator
from urllib.parse import unquote, urljoin, urlsplit

from mlmodel_contract.pod import HTTP_AUTHORIZATION
from mlmodel_server.fetch.context import CHUNK_SIZE, FetchContext, check_complete
from mlmodel_server.fetch.errors import AccessDenied, FetchError, NotFound, Truncated
from mlmodel_server.fetch.uris import Location

MAX_REDIRECTS = 5
USER_AGENT = "mlmodel-server-fetch"
_REDIRECT_STATUSES = {301, 302, 303, 307, 308}
_RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}


def stream(location: Location, context: FetchContext) -> Generator[bytes, None, None]:
    label = location.redacted
    url = location.uri
    authorization = _authorization(url, context)
    for _ in range(MAX_REDIRECTS + 1):
        connection, sock = _connect(url, context, label)
        try:
            response = _get(connection, url, authorization, context, label)
            if response.status in _REDIRECT_STATUSES and response.getheader("Location"):
                target = urljoin(url, response.getheader("Location"))
                if _origin(target) != _origin(url):
                    authorization = None
                url = target
                continue
            _raise_for_status(response.status, label, authorization is not None)
            yield from _body(response, sock, context, label)
            return
        finally:
            connection.close()
    raise FetchError(f"more than {MAX_REDIRECTS} redirects fetching {label}")


def _authorization(url: str, context: FetchContext) -> str | None:
    if context.env.get(HTTP_AUTHORIZATION):
        return context.env[HTTP_AUTHORIZATION]
    parts = urlsplit(url)
    if parts.username is None:
        return None
    userinfo = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(userinfo.encode()).decode()


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def _connect(url: str, context: FetchContext, label: str) -> tuple[http.client.HTTPConnection, socket.socket]:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError(f"redirected to an unsupported URL while fetching {label}")
    timeout = max(context.deadline.remaining(), 0.001)
    if parts.scheme.lower() == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.connect()
    except TimeoutError:
        raise context.timeout(label) from None
    except ssl.SSLCertVerificationError as error:
        raise FetchError(f"TLS verification failed for {label}: {error.verify_message}") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise FetchError(f"cannot connect to {parts.hostname}: {reason} ({label})", retryable=True) from None
    return connection, connection.sock


def _get(
    connection: http.client.HTTPConnection, url: str, authorization: str | None, context: FetchContext, label: str
) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if authorization:
        headers["Authorization"] = authorization
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers)
        return connection.getresponse()
    except TimeoutError:
        raise context.timeout(label) from None
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"request failed: {type(error).__name__} ({label})", retryable=True) from None


def _raise_for_status(status: int, label: str, sent_authorization: bool) -> None:
    if status == 200:
        return
    if status in (404, 410):
        raise NotFound(f"not found: HTTP {status} from {label}")
    if status in (401, 403):
        credentials = "with" if sent_authorization else "without"
        raise AccessDenied(f"access denied: HTTP {status} from {label} (sent {credentials} an Authorization header)")
    if status in _RETRYABLE_STATUSES:
        raise FetchError(f"HTTP {status} from {label}", retryable=True)
    raise FetchError(f"unexpected HTTP {status} from {label}")


def _body(
    response: http.client.HTTPResponse, sock: socket.socket, context: FetchContext, label: str
) -> Generator[bytes, None, None]:
    announced = _content_length(response)
    context.check_announced_size(announced, label)
    received = 0
    while True:
        context.check_deadline(label)
        sock.settimeout(max(context.deadline.remaining(), 0.001))
        try:
            chunk = response.read1(CHUNK_SIZE)
        except TimeoutError:
            raise context.timeout(label) from None
        except (OSError, http.client.IncompleteRead) as error:
            raise Truncated(
                f"truncated body: connection lost after {received} bytes ({type(error).__name__}) ({label})"
            ) from None
        if not chunk:
            break
        received += len(chunk)
        yield chunk
    check_complete(received, announced, label)


def _content_length(response: http.client.HTTPResponse) -> int | None:
    value = response.getheader("Content-Length")
    return int(value) if value and value.strip().isdigit() else None
