"""What the HTTP layer guarantees on granian, raw bytes on a socket: broken bodies are 400 JSON, never
served as if complete, and clients that send their headers or bodies slowly cost only their own connections."""

import json
import socket
import threading
import time

import pytest
import requests

from mlmodel_server.serving.granian_app import HEADER_READ_TIMEOUT_SECONDS
from mlmodel_server.serving.transport import Gate

HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
BODY = b'{"features": [5.1, 3.5, 1.4, 0.2]}'


@pytest.fixture(scope="module")
def granian_server(server_factory, models):
    return server_factory(models["iris"], "--name", "iris", "--threads", "4", "--http-server", "granian")


def read_to_eof(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """One response, read up to the end of its declared body (the connection may stay open)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in header_lines)
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        assert chunk, "connection closed in the middle of the response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def exchange(port: int, data: bytes, close_write: bool = False) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def json_error(port: int, data: bytes, close_write: bool = False) -> tuple[int, str]:
    status, headers, body = exchange(port, data, close_write)
    assert headers["content-type"] == "application/json", (status, headers, body)
    return status, json.loads(body)["error"]


def test_a_body_shorter_than_its_content_length_is_refused(granian_server):
    status, error = json_error(granian_server.port, HEAD + b"Content-Length: 100\r\n\r\n" + BODY, close_write=True)
    assert status == 400
    assert f"ended after {len(BODY)} of the 100 bytes" in error


def test_a_short_body_that_is_valid_json_by_itself_is_refused_too(granian_server):
    padded = BODY + b"   "  # a complete JSON document, still short of the declared length
    status, error = json_error(granian_server.port, HEAD + b"Content-Length: 60\r\n\r\n" + padded, close_write=True)
    assert status == 400 and "of the 60 bytes" in error


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",  # a chunk size that is not hex
        BODY,  # a plain body declared chunked
        b"5\r\n" + BODY[:5] + b"\r\nzz\r\n",  # a valid first chunk, then garbage
    ],
    ids=["bad-chunk-size", "not-chunked", "garbage-after-chunk"],
)
def test_malformed_chunked_bodies_are_400_json(granian_server, body):
    status, error = json_error(granian_server.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    assert status == 400 and "malformed JSON" in error


def test_a_chunked_body_cut_short_by_eof_is_not_served(granian_server):
    """granian hands the app what arrived; cut inside the JSON document, that is malformed JSON. (Cut after
    a complete document, what arrived is the document the client sent: a request body here is a JSON object,
    and no proper prefix of a JSON object is a complete one.)"""
    with socket.create_connection(("127.0.0.1", granian_server.port), timeout=10) as sock:
        sock.sendall(HEAD + b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + BODY[:20])
        sock.shutdown(socket.SHUT_WR)
        received = read_to_eof(sock)
    assert received == b"" or (received.startswith(b"HTTP/1.1 400 ") and b"malformed JSON" in received), received


def test_a_valid_chunked_body_is_served(granian_server):
    chunked = b"%x\r\n" % len(BODY) + BODY + b"\r\n0\r\n\r\n"
    status, _, body = exchange(granian_server.port, HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + chunked)
    assert status == 200 and json.loads(body)["prediction"] == 0


def test_a_malformed_request_line_is_refused_by_granian_itself(granian_server):
    with socket.create_connection(("127.0.0.1", granian_server.port), timeout=10) as sock:
        sock.sendall(b"GARBAGE\r\n\r\n")
        status, headers, body = read_response(sock)
        assert status == 400 and headers["connection"] == "close" and body == b""
        assert read_to_eof(sock) == b""


def test_slow_headers_cost_only_their_own_connections(granian_server):
    """80 clients that send half a request's headers and wait hold no request thread (there are 4): a valid
    request is answered at once, and the slow connections are closed after the header read timeout."""
    slow = []
    for _ in range(80):
        sock = socket.create_connection(("127.0.0.1", granian_server.port), timeout=30)
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le")
        slow.append(sock)
    try:
        started = time.monotonic()
        response = requests.post(granian_server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=5)
        assert response.status_code == 200 and time.monotonic() - started < 2
        deadline = started + HEADER_READ_TIMEOUT_SECONDS + 10
        for sock in slow:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            assert read_to_eof(sock) == b""  # closed, without an answer
        assert time.monotonic() - started >= HEADER_READ_TIMEOUT_SECONDS - 1
    finally:
        for sock in slow:
            sock.close()


def test_stalled_bodies_cost_only_their_own_connections(granian_server):
    """80 clients that send their headers and part of the body, then wait, hold no request thread (there are
    4): their bodies are read outside the app (serving/transport.py), so a valid request is answered at once;
    the JSON body of a stalled one, once it comes, is still served."""
    head = HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY)
    slow = []
    for _ in range(80):
        sock = socket.create_connection(("127.0.0.1", granian_server.port), timeout=30)
        sock.sendall(head + BODY[:10])
        slow.append(sock)
    try:
        time.sleep(0.5)  # every stalled request has reached the server
        started = time.monotonic()
        response = requests.post(granian_server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}, timeout=5)
        assert response.status_code == 200 and time.monotonic() - started < 2
        slow[0].sendall(BODY[10:])
        status, _, body = read_response(slow[0])
        assert status == 200 and json.loads(body)["prediction"] == 0
    finally:
        for sock in slow:
            sock.close()


def run_through(gate: Gate, places: int, count: int) -> tuple[list[int], int]:
    """`count` threads queue up while the test holds all `places`; then they go through. (order, most inside)"""
    inside, most, order = [0], [0], []
    count_lock = threading.Lock()

    def hold(index):
        with gate:
            with count_lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
                order.append(index)
            time.sleep(0.05)
            with count_lock:
                inside[0] -= 1

    for _ in range(places):
        gate.__enter__()
    threads = []
    for index in range(count):
        thread = threading.Thread(target=hold, args=(index,))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 5
        while len(gate._waiters) < index + 1 and time.monotonic() < deadline:  # queued before the next starts
            time.sleep(0.001)
    for _ in range(places):
        gate.__exit__(None, None, None)
    for thread in threads:
        thread.join(5)
    return order, most[0]


def test_gate_admits_in_arrival_order():
    order, _ = run_through(Gate(1), 1, 6)
    assert order == [0, 1, 2, 3, 4, 5]


def test_gate_admits_at_most_its_limit():
    order, most = run_through(Gate(3), 3, 12)
    assert sorted(order) == list(range(12)) and 2 <= most <= 3  # all three places used, never a fourth
