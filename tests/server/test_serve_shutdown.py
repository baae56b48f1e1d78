"""SIGTERM: gunicorn stops accepting, lets the in-flight request finish, and exits 0."""

import threading
import time

import requests

from . import serve_harness


def test_in_flight_request_completes_after_sigterm(tmp_path, models):
    server = serve_harness.start(tmp_path / "run", models["slow"], "--name", "slow", "--graceful-timeout-seconds", "20")
    outcome = {}

    def slow_call():
        response = requests.post(server.url + "/predict", json={"features": [-1, 0]}, timeout=30)
        outcome["status"], outcome["body"] = response.status_code, response.json()

    caller = threading.Thread(target=slow_call)
    caller.start()
    time.sleep(1.0)  # the request is now inside the 3-second predict
    started = time.monotonic()
    code = server.stop(timeout=30)
    caller.join(30)
    assert outcome.get("status") == 200, server.log()
    assert outcome["body"]["prediction"] == 0
    assert code == 0
    assert time.monotonic() - started < 15
