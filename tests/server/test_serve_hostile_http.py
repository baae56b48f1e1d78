"""Hostile HTTP over a raw socket: whatever the framing, the server answers a 4xx JSON error (never a 5xx, never
an HTML page), serves nothing it did not fully receive, keeps its metric labels to fixed sets, and stays up."""

import http.client
import itertools
import json
import re
import socket
import string

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import serve_harness
from .test_serve_metrics import sample

ROW = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
GET_PATHS = [
    "/health",
    "/ready",
    "/metrics",
    "/openapi.json",
    "/v1/models",
    "/v1/models/iris",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models",
    "/v2/models/iris",
    "/v2/models/iris/ready",
    "/v2/models/iris/versions/v3",
    "/nowhere",
]
POST_PATHS = ["/predict", "/v1/models/iris:predict", "/v2/models/iris/infer", "/v2/models/iris/versions/v3/infer"]
ROUTES = [("GET", path) for path in GET_PATHS] + [("POST", path) for path in POST_PATHS]

# Bodies declared `Transfer-Encoding: chunked` that are not valid chunked encoding; the connection is half-closed
# after each, so a truncated one ends in EOF rather than in a wait.
BROKEN_CHUNKED = {
    "bad chunk size": b"zz\r\n{}\r\n0\r\n\r\n",
    "negative chunk size": b"-2\r\n{}\r\n0\r\n\r\n",
    "chunk size with no line end": b"4",
    "truncated chunk": b"40\r\n" + ROW[:10],
    "chunk without its CRLF": b"2\r\n{}XX0\r\n\r\n",
    "plain body declared chunked": ROW,
    "no last chunk": b"2\r\n{}\r\n",
    "last chunk without trailer end": b"0\r\n",
    "bad chunk extension": b"2;=\r\n{}\r\n0\r\n\r\n",
    "bare LF in trailers": b"0\r\nX-Trailer: 1\n\r\n",
}

# llhttp (the eventloop stack's parser) accepts an empty chunk-extension name and ignores it, as it ignores every
# chunk extension; gunicorn's parser refuses it.
ACCEPTED_BY = {"bad chunk extension": {"eventloop"}}


def request_bytes(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def exchange(server, raw: bytes, half_close: bool = True, timeout: float = 15) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (then end the sending side, as a client that is done writing) and read one response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()


def assert_json_error(status: int, headers: dict[str, str], body: bytes, expected: int | tuple[int, ...] = 400) -> str:
    assert status in (expected if isinstance(expected, tuple) else (expected,)), (status, body[:300])
    assert headers["content-type"] == "application/json", body[:300]
    return json.loads(body)["error"]


@pytest.fixture(scope="module")
def server(server_factory, models):
    return server_factory(models["iris"], "--name", "iris", "--version", "v3")


@pytest.mark.parametrize("name", list(BROKEN_CHUNKED))
@pytest.mark.parametrize("method,path", ROUTES)
def test_broken_chunked_body_is_400_json_on_every_route(server, method, path, name):
    raw = request_bytes(
        method, path, {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}, BROKEN_CHUNKED[name]
    )
    status, headers, body = exchange(server, raw)
    if serve_harness.HTTP_SERVER in ACCEPTED_BY.get(name, ()):
        # served as the chunks it decodes to, `{}`: a GET answers as without a body, a POST gets the app's 4xx
        if method == "GET":
            assert status == requests.get(server.url + path, timeout=10).status_code, (status, body[:300])
        else:
            assert 400 <= status < 500 and json.loads(body)["error"], (status, body[:300])
        return
    assert "malformed request body" in assert_json_error(status, headers, body)


def test_valid_chunked_body_is_still_served(server):
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (ROW[:7], ROW[7:])) + b"0\r\n\r\n"
    raw = request_bytes(
        "POST", "/predict", {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}, chunked
    )
    status, _, body = exchange(server, raw)
    assert status == 200 and json.loads(body)["prediction"] == 0


@pytest.mark.parametrize("method,path", ROUTES)
def test_body_shorter_than_its_content_length_is_refused(server, method, path):
    """Even a prefix that happens to be a complete JSON document: the client said more was coming."""
    raw = request_bytes(method, path, {"Content-Length": str(len(ROW) + 10), "Content-Type": "application/json"}, ROW)
    status, headers, body = exchange(server, raw)
    message = assert_json_error(status, headers, body)
    assert f"ended after {len(ROW)} of the {len(ROW) + 10} bytes" in message


def test_whole_body_then_eof_is_served(server):
    raw = request_bytes("POST", "/predict", {"Content-Length": str(len(ROW)), "Content-Type": "application/json"}, ROW)
    status, _, body = exchange(server, raw)
    assert status == 200 and json.loads(body)["prediction"] == 0


MALFORMED_HEADS = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "no HTTP version": b"GET /health\r\n\r\n",
    "bad HTTP version": b"GET /health HTTP/9.x\r\nHost: x\r\n\r\n",
    "space in the target": b"GET /hea lth HTTP/1.1\r\nHost: x\r\n\r\n",
    "lowercase method": b"get /health HTTP/1.1\r\nHost: x\r\n\r\n",
    "header without colon": b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "space before colon": b"GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
    "bad header name": b"GET /health HTTP/1.1\r\nHo(st: x\r\n\r\n",
    "control character in a value": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "obsolete line folding": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
    "non-numeric Content-Length": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
    "negative Content-Length": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "two Content-Lengths": b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "Content-Length and chunked": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "unknown transfer coding": b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n{}",
    "transfer coding not ending in chunked": b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    "chunked twice": b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "chunked HTTP/1.0": b"POST /predict HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "unknown expectation": b"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n{}",
    "request line too long": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "header too long": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
    "too many headers": b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
    "bare LF line ends": b"GET /health HTTP/1.1\nHost: x\n\n",
    "binary noise": bytes(range(256)) + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", list(MALFORMED_HEADS))
def test_malformed_request_line_or_headers_get_a_json_4xx(server, name):
    status, headers, body = exchange(server, MALFORMED_HEADS[name])
    assert 400 <= status < 500, (status, body[:300])
    assert headers["content-type"] == "application/json", body[:300]
    assert json.loads(body)["error"]


def methods(count: int) -> list[str]:
    return [
        "".join(letters) for letters in itertools.islice(itertools.product(string.ascii_uppercase, repeat=5), count)
    ]


def series(metrics_text: str, name: str) -> set[tuple[str, ...]]:
    found = set()
    for line in metrics_text.splitlines():
        if line.startswith(name + "{"):
            found.add(tuple(sorted(line[len(name) + 1 : line.index("}")].split(","))))
    return found


def test_invented_methods_and_unknown_paths_do_not_add_metric_series(server_factory, models):
    server = server_factory(models["iris"], "--name", "iris")
    with requests.Session() as http:
        for method in methods(3):  # each label set that can appear, once
            http.request(method, server.url + "/predict")
            http.request(method, server.url + "/nowhere")
        http.get(server.url + "/nowhere-at-all")
        before = series(http.get(server.url + "/metrics").text, "mlmodel_http_requests_total")
        for index, method in enumerate(methods(60)):
            assert http.request(method, server.url + "/predict").status_code == 405
            assert http.request(method, f"{server.url}/unknown/{index}").status_code in (404, 405)
            assert http.get(f"{server.url}/unknown-{index}?q={index}").status_code == 404
        text = http.get(server.url + "/metrics").text
    after = series(text, "mlmodel_http_requests_total")
    assert after - before <= {('method="GET"', 'route="/metrics"', 'status="200"')}, sorted(after - before)
    methods_seen = {label for labels in after for label in labels if label.startswith("method=")}
    assert methods_seen <= {'method="GET"', 'method="POST"', 'method="other"'}, methods_seen
    assert sample(text, "mlmodel_http_requests_total", method="other") == 2 * 63
    routes_seen = {label for labels in after for label in labels if label.startswith("route=")}
    assert len(routes_seen) <= 3, routes_seen  # /predict, /metrics and the one label of unmatched paths


def test_a_refused_request_with_a_broken_body_gets_one_response(server_factory, models):
    """The app answers 401 without reading the body; the broken rest of it costs the connection, nothing more."""
    server = server_factory(models["iris"], "--name", "iris", env={"MLMODEL_API_KEY": "k"})
    raw = request_bytes("POST", "/predict", {"Transfer-Encoding": "chunked"}, BROKEN_CHUNKED["bad chunk size"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 401 and json.loads(response.read())["error"]
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest == b"", rest[:300]


def statuses_until_close(server, raw: bytes, timeout: float = 15) -> list[int]:
    """Send raw bytes, end the sending side, and read every response the server writes until it closes."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        try:
            sock.sendall(raw)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server refused before all was sent, and closed
            pass
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    return [int(match) for match in re.findall(rb"(?:^|\r\n)HTTP/1\.[01] (\d{3}) ", received)]


def framings(method: str, path: str) -> dict[str, bytes]:
    start = f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode()
    json_type = b"Content-Type: application/json\r\n"
    valid = start + json_type + b"Content-Length: %d\r\n\r\n" % len(ROW) + ROW
    cases = {
        "valid": valid,
        "valid twice, pipelined": valid * 2,
        "valid then garbage": valid + b"\x00\x01garbage\r\n\r\n",
        "garbage then valid": b"\x16\x03\x01\x02\x00\x01\x00\r\n\r\n" + valid,
        "short body": start + json_type + b"Content-Length: 999\r\n\r\n" + ROW,
        "long body": start + json_type + b"Content-Length: 5\r\n\r\n" + ROW,
        "huge Content-Length": start + b"Content-Length: 99999999999999999999999\r\n\r\n" + ROW,
        "Content-Length with sign": start + b"Content-Length: +5\r\n\r\n{}   ",
        "Content-Length list": start + b"Content-Length: 2, 2\r\n\r\n{}",
        "HTTP/1.0 no length": f"{method} {path} HTTP/1.0\r\n\r\n".encode() + ROW,
        "absolute URI": f"{method} http://x{path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "asterisk target": f"{method} * HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "no Host": f"{method} {path} HTTP/1.1\r\n\r\n".encode(),
        "two Hosts": start + b"Host: y\r\n\r\n",
        "Expect 100-continue": start
        + json_type
        + b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(ROW)
        + ROW,
        "Expect 100-continue, no body": start + b"Expect: 100-continue\r\nContent-Length: 10\r\n\r\n",
        "chunked with trailers": start
        + json_type
        + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\nX-T: 1\r\n\r\n" % (len(ROW), ROW),
        "huge chunk size": start + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
        "binary V2 header length wrong": start + b"Content-Type: application/octet-stream\r\n"
        b"Inference-Header-Content-Length: 99999\r\nContent-Length: %d\r\n\r\n" % len(ROW) + ROW,
        "NUL in path": f"{method} {path}\x00x HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "percent-encoded junk": f"{method} {path}%ff%00%zz HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        "non-UTF-8 header": start + b"X-Request-ID: \xff\xfe\r\nX-API-Key: \xc3\x28\r\n\r\n",
        "very long X-Request-ID": start + b"X-Request-ID: " + b"r" * 8000 + b"\r\n\r\n",
    }
    cases.update(
        {
            f"chunked: {name}": start + b"Transfer-Encoding: chunked\r\n\r\n" + body
            for name, body in BROKEN_CHUNKED.items()
        }
    )
    cases.update({f"head: {name}": raw for name, raw in MALFORMED_HEADS.items()})
    return cases


@pytest.mark.parametrize(
    "method,path",
    [*ROUTES, ("PUT", "/predict"), ("DELETE", "/v2/models/iris"), ("OPTIONS", "/predict"), ("HEAD", "/health")],
)
def test_no_framing_gets_a_5xx_on_any_route(server, method, path):
    failures = {}
    for name, raw in framings(method, path).items():
        statuses = statuses_until_close(server, raw)
        if not statuses or any(status >= 500 for status in statuses):
            failures[name] = statuses
    assert not failures, failures
    assert requests.get(server.url + "/health", timeout=10).status_code == 200
    assert server.process.poll() is None
    assert "Traceback" not in server.log(), server.log()[-3000:]


@settings(max_examples=300, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_requests_never_get_a_5xx(server, data):
    """Random byte edits of valid requests: whatever arrives, no answer is a 5xx and the server stays up."""
    method, path = data.draw(st.sampled_from([*ROUTES, ("POST", "/v2/models/iris/versions/v3/infer")]))
    raw = bytearray(framings(method, path)[data.draw(st.sampled_from(["valid", "chunked with trailers"]))])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw)))
        edit = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        byte = data.draw(st.sampled_from([0, 9, 10, 13, 32, 44, 58, 59, 127, 255]) | st.integers(0, 255))
        if edit == "delete" and position < len(raw):
            del raw[position]
        elif edit == "insert":
            raw.insert(position, byte)
        elif position < len(raw):
            raw[position] = byte
    statuses = statuses_until_close(server, bytes(raw))
    assert all(status < 500 for status in statuses), (bytes(raw), statuses)
    assert server.process.poll() is None
