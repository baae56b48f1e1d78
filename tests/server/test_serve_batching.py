"""Micro-batching: concurrent requests in one worker share estimator calls, with per-row results."""

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import requests


def metric(url: str, name: str) -> float:
    text = requests.get(url + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if re.match(rf"{name}(\{{.*\}})? ", line))


def test_concurrent_requests_share_model_calls(forest_server, models):
    url = forest_server.url
    estimator = models["estimators"]["forest"]
    rows = models["forest_X"][:240]
    calls_before = metric(url, "mlmodel_model_calls_total")
    rows_before = metric(url, "mlmodel_predicted_rows_total")

    def worker(chunk):
        with requests.Session() as session:
            return [session.post(url + "/predict", json={"features": row.tolist()}).json() for row in chunk]

    with ThreadPoolExecutor(12) as pool:
        answers = [a for part in pool.map(worker, np.array_split(rows, 12)) for a in part]

    calls = metric(url, "mlmodel_model_calls_total") - calls_before
    assert metric(url, "mlmodel_predicted_rows_total") - rows_before == len(rows)
    assert calls < len(rows), f"{calls} estimator calls for {len(rows)} concurrent requests: nothing was batched"
    assert metric(url, "mlmodel_batch_requests_sum") > metric(url, "mlmodel_batch_requests_count")

    expected = estimator.predict(rows)
    expected_confidence = estimator.predict_proba(rows).max(axis=1)
    assert [a["prediction"] for a in answers] == expected.tolist()
    assert np.array_equal([a["confidence"] for a in answers], expected_confidence)


def test_forest_fast_kernel_is_in_use(forest_server):
    assert 'fast_path="forest-classifier-compiled"' in requests.get(forest_server.url + "/metrics").text
