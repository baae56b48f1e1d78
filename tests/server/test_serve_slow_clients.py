"""Slow clients (a slowloris) cost their own connections only: while many connections hold part of a request,
valid requests on other connections are answered at once, and the slow ones get 408 after the header or body
timeout (--header-timeout-seconds, --body-timeout-seconds)."""

import http.client
import json
import re
import socket
import time

import pytest
import requests

from . import serve_harness

ROW = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
SLOW_CONNECTIONS = 90  # more than workers x threads (2 x 4 here, 2 x 16 by default)
TIMEOUT_SECONDS = 3
# Slow clients as they stop: in the request line, in a header, after the headers, in a body.
PARTIAL_REQUESTS = [
    b"POST /predi",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Ty",
    b"GET /health HTTP/1.1\r\nHost: x\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
    % (len(ROW), ROW[:9]),
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\n" + ROW[:5] + b"\r\n",
    b"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 34\r\n\r\n",
]
PARTIAL_IDS = ["request line", "header", "no blank line", "body", "chunked body", "body after 100 Continue"]


@pytest.fixture(scope="module")
def server(server_factory, models):
    return server_factory(
        models["iris"],
        "--name",
        "iris",
        "--workers",
        "2",
        "--threads",
        "4",
        "--header-timeout-seconds",
        str(TIMEOUT_SECONDS),
        "--body-timeout-seconds",
        str(TIMEOUT_SECONDS),
    )


def open_slow_connections(server, count: int) -> list[socket.socket]:
    connections = []
    for index in range(count):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(PARTIAL_REQUESTS[index % len(PARTIAL_REQUESTS)])
        connections.append(sock)
    return connections


def timed_predict(server) -> float:
    started = time.monotonic()
    response = requests.post(
        server.url + "/predict", data=ROW, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200 and response.json()["prediction"] == 0
    return time.monotonic() - started


def test_valid_requests_are_answered_while_slow_clients_hold_connections(server):
    slow = open_slow_connections(server, SLOW_CONNECTIONS)
    try:
        time.sleep(0.5)  # every slow connection has reached a worker
        seconds = [timed_predict(server) for _ in range(20)]
        with requests.Session() as session:  # and on a kept-alive connection
            for _ in range(20):
                assert session.get(server.url + "/health", timeout=30).status_code == 200
        # Starved, a request waits for a slow one's timeout (3 s here, 10 s by default): far beyond this bound.
        assert max(seconds) < TIMEOUT_SECONDS / 2, seconds
        # ... and every slow connection is still open, waiting: it costs nothing but itself.
        assert all(sock.fileno() >= 0 for sock in slow)
    finally:
        for sock in slow:
            sock.close()


def test_large_bodies_that_stall_halfway_hold_no_thread(server):
    """Megabytes sent fast, then nothing: still a slow client, gathered without a thread."""
    declared = 2_000_000
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % declared
    )
    slow = []
    try:
        for _ in range(20):  # more than the 8 threads
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(head + b" " * (declared // 2))
            slow.append(sock)
        seconds = [timed_predict(server) for _ in range(10)]
        assert max(seconds) < TIMEOUT_SECONDS / 2, seconds
        status, body = read_response(slow[0])  # and each gets its 408 in time
        assert status == 408 and "body did not arrive" in body["error"]
    finally:
        for sock in slow:
            sock.close()


def read_response(sock: socket.socket) -> tuple[int, dict]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, json.loads(response.read())


@pytest.mark.parametrize("partial", PARTIAL_REQUESTS, ids=PARTIAL_IDS)
def test_a_request_that_does_not_arrive_in_time_gets_408_and_is_closed(server, partial):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.monotonic()
        sock.sendall(partial)
        status, body = read_response(sock)
        waited = time.monotonic() - started
        assert status == 408 and "did not arrive within 3 seconds" in body["error"]
        assert TIMEOUT_SECONDS - 0.5 < waited < TIMEOUT_SECONDS + 5, waited
        assert sock.recv(1) == b""  # closed


def test_a_trickling_client_is_bounded_by_the_timeout_not_by_its_pace(server):
    """One byte a second never lets a read time out on its own: the deadline counts from the request's start."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.monotonic()
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the server closed the connection
                break
            if time.monotonic() - started > TIMEOUT_SECONDS + 5:
                break
            time.sleep(0.2)
        status, body = read_response(sock)
        assert status == 408, body
        assert time.monotonic() - started < TIMEOUT_SECONDS + 5


def test_an_idle_new_connection_is_closed_after_the_header_timeout(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed without a response: the client never started a request
        assert TIMEOUT_SECONDS - 0.5 < time.monotonic() - started < TIMEOUT_SECONDS + 5


def test_a_body_split_across_packets_is_served(server):
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(
        ROW
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        for part in (head[:10], head[10:], ROW[:5], ROW[5:]):
            sock.sendall(part)
            time.sleep(0.3)
        status, body = read_response(sock)
        assert status == 200 and body["prediction"] == 0


def test_timeouts_have_env_twins(tmp_path, models):
    server = serve_harness.start(
        tmp_path,
        models["iris"],
        "--name",
        "iris",
        env={"MLMODEL_HEADER_TIMEOUT_SECONDS": "1", "MLMODEL_BODY_TIMEOUT_SECONDS": "1"},
    )
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            started = time.monotonic()
            sock.sendall(PARTIAL_REQUESTS[1])
            assert read_response(sock)[0] == 408
            assert time.monotonic() - started < 1 + 3
    finally:
        server.stop()


def test_a_client_that_waits_for_100_continue_gets_it_once_and_is_served(server):
    head = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(ROW)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        expected = b"HTTP/1.1 100 Continue\r\n\r\n"
        interim = b""
        while len(interim) < len(expected):
            interim += sock.recv(len(expected) - len(interim))
        assert interim == expected
        sock.sendall(ROW)
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(4096)
        assert received.startswith(b"HTTP/1.1 200 "), received  # not a second 100 Continue
        head_end = received.index(b"\r\n\r\n") + 4
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", received[:head_end]).group(1))
        body = received[head_end:]
        while len(body) < length:
            body += sock.recv(4096)
        assert json.loads(body)["prediction"] == 0
