"""Kept-alive connections (serving/worker.py): a request thread keeps serving its connection while the worker
has no more connections than threads; beyond that the main thread's poller shares the threads out."""

import http.client
import json
import time

import pytest

from mlmodel_server.serving.worker import may_linger

from . import serve_harness

JSON = {"Content-Type": "application/json"}


def exchange(connection: http.client.HTTPConnection, method: str, path: str, body: object | None = None):
    connection.request(method, path, body=None if body is None else json.dumps(body), headers=JSON)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_one_connection_serves_every_kind_of_request_back_to_back(iris_server):
    connection = http.client.HTTPConnection("127.0.0.1", iris_server.port, timeout=10)
    exchange(connection, "GET", "/health")
    socket_before = connection.sock
    for _ in range(50):
        assert exchange(connection, "POST", "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})[1]["prediction"] == 0
        status, body = exchange(connection, "POST", "/predict", {"features": [5.1, 3.5]})
        assert status == 400 and "expected 4 features, got 2" in body["error"]
        # a body the app never reads: gunicorn drains it before the next request
        assert exchange(connection, "POST", "/nowhere", {"features": list(range(1000))})[0] == 404
        status, body = exchange(
            connection,
            "POST",
            "/v2/models/iris/infer",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [5.1, 3.5, 1.4, 0.2]}]},
        )
        assert status == 200 and body["outputs"][0]["data"] == [0]
    assert connection.sock is socket_before, "the server closed the kept-alive connection"
    connection.close()


def test_pipelined_requests_are_answered_in_order(iris_server):
    """The second request arrives with the first: the server holds it in its read buffer, not on the socket."""
    body = json.dumps({"features": [6.7, 3.0, 5.2, 2.3]}).encode()
    request = (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    connection = http.client.HTTPConnection("127.0.0.1", iris_server.port, timeout=10)
    connection.connect()
    connection.sock.sendall(request * 3)
    # One reader for all three: the responses may arrive in one segment, and a reader per response (an
    # HTTPResponse each) would leave the later ones in the first one's buffer.
    reader = connection.sock.makefile("rb")
    for _ in range(3):
        assert reader.readline().startswith(b"HTTP/1.1 200 ")
        headers = dict(line.rstrip(b"\r\n").lower().split(b": ", 1) for line in iter(reader.readline, b"\r\n"))
        assert json.loads(reader.read(int(headers[b"content-length"])))["prediction"] == 2
    reader.close()
    connection.close()


def test_more_connections_than_threads_are_all_served(server_factory, models):
    server = server_factory(models["iris"], "--name", "iris", "--threads", "2")
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10) for _ in range(6)]
    for _ in range(30):
        for connection in connections:
            status, body = exchange(connection, "POST", "/predict", {"instances": [[5.1, 3.5, 1.4, 0.2]] * 3})
            assert status == 200 and body["prediction"] == [0, 0, 0]
    for connection in connections:
        connection.close()


def test_sigterm_with_a_kept_alive_connection_open_exits_promptly(tmp_path, models):
    server = serve_harness.start(tmp_path / "run", models["iris"], "--name", "iris")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    assert exchange(connection, "POST", "/predict", {"features": [5.1, 3.5, 1.4, 0.2]})[0] == 200
    started = time.monotonic()
    assert server.stop(timeout=30) == 0, server.log()
    assert time.monotonic() - started < 10, server.log()
    connection.close()


@pytest.mark.parametrize(
    ("alive", "connections", "threads", "expected"),
    [
        (True, 1, 16, True),
        (True, 16, 16, True),
        (True, 17, 16, False),  # a waiting thread could keep another connection from being served
        (False, 1, 16, False),  # stopping: hand the connection back, gunicorn closes it
    ],
)
def test_may_linger(alive, connections, threads, expected):
    assert may_linger(alive, connections, threads) is expected
