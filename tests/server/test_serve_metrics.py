"""/metrics in gunicorn multiprocess mode: the counts of every worker, dead ones included, add up."""

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


def sample(metrics_text: str, metric_name: str, **labels: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != metric_name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def worker_pids(server) -> set[int]:
    pids = set()
    for entry in server.log_entries():
        if entry.get("logger") == "mlmodel_server.access" and entry.get("path") == "/predict":
            pids.add(entry["pid"])
    return pids


@pytest.fixture(scope="module")
def three_workers(server_factory, models):
    return server_factory(models["iris"], "--name", "iris", "--workers", "3", "--threads", "2", "--access-log")


def fire(url: str, count: int) -> list[int]:
    def one(_):  # a new connection per request, so the kernel spreads them over the workers
        return requests.post(url + "/predict", json=ROW, headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(12) as pool:
        return list(pool.map(one, range(count)))


def test_counts_add_up_across_workers(three_workers):
    url = three_workers.url
    statuses = fire(url, 150)
    assert statuses == [200] * 150
    bad = [requests.post(url + "/predict", json={"features": [1]}).status_code for _ in range(5)]
    assert bad == [400] * 5
    assert len(worker_pids(three_workers)) >= 2, "the requests should have reached several workers"
    text = requests.get(url + "/metrics").text
    assert sample(text, "mlmodel_http_requests_total", route="/predict", method="POST", status="200") == 150
    assert sample(text, "mlmodel_http_requests_total", route="/predict", status="400") == 5
    assert sample(text, "mlmodel_http_request_duration_seconds_count", route="/predict") == 155
    assert sample(text, "mlmodel_predicted_rows_total") == 150
    assert sample(text, "mlmodel_model_calls_total") <= 150
    assert sample(text, "mlmodel_model_info", name="iris", format="joblib") == 1
    assert sample(text, "mlmodel_model_load_duration_seconds") > 0

    # A worker that dies takes nothing with it: its counts stay, its replacement adds to them.
    victim = next(iter(worker_pids(three_workers)))
    os.kill(victim, signal.SIGKILL)
    time.sleep(1.0)
    assert fire(url, 30) == [200] * 30
    text = requests.get(url + "/metrics").text
    assert sample(text, "mlmodel_http_requests_total", route="/predict", method="POST", status="200") == 180


def test_metric_names_follow_conventions(three_workers):
    text = requests.get(three_workers.url + "/metrics").text
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names >= {
        "mlmodel_http_requests_total",
        "mlmodel_http_request_duration_seconds",
        "mlmodel_predicted_rows_total",
        "mlmodel_model_calls_total",
        "mlmodel_batch_rows",
        "mlmodel_model_load_duration_seconds",
        "mlmodel_model_info",
    }
    assert all(name.startswith("mlmodel_") for name in names)
