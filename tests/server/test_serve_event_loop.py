"""The eventloop stack's own choices (serving/loop_worker.py): a fast model is called on the worker's event loop,
the requests that arrive together sharing its calls; a slow one from request threads, where concurrent requests share its calls; a client that
does not read its answers costs only its own connection; a large answer reaches a slow reader whole."""

import json
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from .serve_harness import dump
from .slow_estimator import SteadyClassifier
from .test_serve_batching import metric

ROW = b'{"features": [5.1, 3.5, 1.4, 0.2]}'


def http_request(method: str, path: str, body: bytes = b"") -> bytes:
    head = b"%s %s HTTP/1.1\r\nHost: x\r\n" % (method.encode(), path.encode())
    if method == "POST":
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return head + b"\r\n" + body


def predict_request(body: bytes = ROW) -> bytes:
    return http_request("POST", "/predict", body)


def predictions(url: str, body: bytes | str, count: int) -> list[int]:
    """`count` predictions, one request after another on one kept-alive connection."""
    with requests.Session() as session:
        return [session.post(url + "/predict", data=body, timeout=30).json()["prediction"] for _ in range(count)]


SETOSA, VERSICOLOR, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [5.9, 3.0, 4.2, 1.5], [6.7, 3.0, 5.2, 2.3]


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, dict]]:
    """`count` answers in a row from one connection (one buffered reader: http.client's would each read ahead)."""
    answers = []
    with sock.makefile("rb") as reader:
        for _ in range(count):
            status = int(reader.readline().split()[1])
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answers.append((status, json.loads(reader.read(length))))
    return answers


def test_requests_that_arrive_together_share_a_call_on_the_loop_and_each_gets_its_own_answer(server_factory, models):
    """Pipelined requests that arrive in one read are answered in one turn of the loop: every prediction route's
    rows go into one model call, every answer is that request's own, in order, refusals and other routes
    included."""
    server = server_factory(models["iris"], "--name", "iris", "--http-server", "eventloop")
    log = server.log()
    assert "Requests run in each worker's event loop (requests that arrive together share calls)" in log, log[-3000:]
    assert re.search(r'"one_row_call_seconds":0\.000\d+', log), log[-3000:]
    calls_before = metric(server.url, "mlmodel_model_calls_total")
    rows_before = metric(server.url, "mlmodel_predicted_rows_total")
    v2_body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": VERSICOLOR}]}
    pipelined = [
        http_request("POST", "/predict", json.dumps({"features": VIRGINICA}).encode()),
        http_request("POST", "/predict", json.dumps({"features": [1.0, 2.0]}).encode()),  # refused: 2 features
        http_request("GET", "/health"),
        http_request("POST", "/v1/models/iris:predict", json.dumps({"instances": [VERSICOLOR, SETOSA]}).encode()),
        http_request("POST", "/v2/models/iris/infer", json.dumps(v2_body).encode()),
        http_request("POST", "/predict", json.dumps({"features": SETOSA}).encode()),
        http_request("POST", "/predict", b'{"features": [5.1,'),  # refused: malformed JSON
        http_request("POST", "/predict", json.dumps({"features": [VERSICOLOR, VIRGINICA]}).encode()),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"".join(pipelined))
        answers = read_responses(sock, len(pipelined))
    statuses = [status for status, _ in answers]
    assert statuses == [200, 400, 200, 200, 200, 200, 400, 200], answers
    bodies = [body for _, body in answers]
    assert bodies[0]["prediction"] == 2 and bodies[5]["prediction"] == 0
    assert "expected 4 features, got 2" in bodies[1]["error"]
    assert bodies[2] == {"status": "healthy"}
    assert bodies[3] == {"predictions": [1, 0]}
    assert bodies[4]["outputs"][0]["data"] == [1]
    assert bodies[7]["prediction"] == [1, 2]
    probabilities = models["estimators"]["iris"].predict_proba([VIRGINICA, SETOSA, VERSICOLOR, VIRGINICA])
    assert [bodies[0]["confidence"], bodies[5]["confidence"], *bodies[7]["confidence"]] == pytest.approx(
        probabilities.max(axis=1).tolist(), abs=1e-12
    )
    assert metric(server.url, "mlmodel_model_calls_total") - calls_before == 1
    assert metric(server.url, "mlmodel_predicted_rows_total") - rows_before == 7


def test_concurrent_clients_of_a_fast_model_each_get_their_own_rows_answers(server_factory, models, iris):
    """Requests from many connections, each with its own row, answered together where they arrive together."""
    server = server_factory(models["iris"], "--name", "iris", "--http-server", "eventloop")
    estimator = models["estimators"]["iris"]
    rows = iris[0][::3]
    requests_before = metric(server.url, "mlmodel_batch_requests_sum")

    def client(chunk) -> list[tuple[int, float]]:
        with requests.Session() as session:
            answers = [session.post(server.url + "/predict", json={"features": row.tolist()}).json() for row in chunk]
        return [(answer["prediction"], answer["confidence"]) for answer in answers]

    with ThreadPoolExecutor(8) as pool:
        answers = [a for part in pool.map(client, np.array_split(rows, 8)) for a in part]
    assert [prediction for prediction, _ in answers] == estimator.predict(rows).tolist()
    assert [confidence for _, confidence in answers] == pytest.approx(
        estimator.predict_proba(rows).max(axis=1).tolist(), abs=1e-12
    )
    assert metric(server.url, "mlmodel_batch_requests_sum") - requests_before == len(rows)


def test_a_slow_model_is_served_from_threads_and_concurrent_requests_share_its_calls(server_factory, tmp_path):
    model = dump(SteadyClassifier(seconds=0.02), tmp_path / "steady", "model.joblib")
    server = server_factory(model, "--name", "steady", "--http-server", "eventloop", "--threads", "8")
    assert "Requests run in 8 threads per worker (micro-batching)" in server.log(), server.log()[-3000:]
    calls_before = metric(server.url, "mlmodel_model_calls_total")
    body = json.dumps({"features": [1.0, 2.0]})

    def client(count: int) -> list[int]:
        return predictions(server.url, body, count)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = [a for part in pool.map(client, [5] * 8) for a in part]
    assert answers == [0] * 40
    calls = metric(server.url, "mlmodel_model_calls_total") - calls_before
    assert calls < 40, f"{calls} calls of 20 ms for 40 concurrent requests: nothing was shared"
    # and a health check is answered while the model is busy: the loop itself never waits for a model call
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(client, 5)
        time.sleep(0.03)
        health_started = time.monotonic()
        assert requests.get(server.url + "/health", timeout=10).status_code == 200
        assert time.monotonic() - health_started < 0.5
        assert busy.result() == [0] * 5
    assert time.monotonic() - started < 30


def test_a_client_that_does_not_read_its_answers_holds_only_its_connection(server_factory, models):
    """Pipelined requests whose answers the client never reads: the worker stops reading from that client when
    its answers back up, and keeps serving everyone else."""
    server = server_factory(models["iris"], "--name", "iris", "--http-server", "eventloop")
    greedy = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        greedy.setblocking(False)
        sent = 0
        for _ in range(20000):  # until the server stops reading: its answers fill both socket buffers
            try:
                sent += greedy.send(predict_request() * 50)
            except BlockingIOError:
                break
        assert sent > 0
        for _ in range(20):
            answer = requests.post(server.url + "/predict", data=ROW, timeout=5)
            assert answer.status_code == 200 and answer.json()["prediction"] == 0
    finally:
        greedy.close()
    assert requests.get(server.url + "/health", timeout=5).status_code == 200


def test_a_large_answer_reaches_a_slow_reader_whole(server_factory, models):
    server = server_factory(models["iris"], "--name", "iris", "--http-server", "eventloop")
    rows = [[5.1, 3.5, 1.4, 0.2]] * 20000
    body = json.dumps({"instances": rows}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(predict_request(body))
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(1024)
            time.sleep(0.001)
        head, _, rest = received.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
        while len(rest) < length:
            chunk = sock.recv(8192)
            assert chunk, "the server closed before the whole answer"
            rest += chunk
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(rest)["prediction"] == [0] * 20000
