"""Micro-batching: concurrent requests in one worker share estimator calls, with per-row results."""

import re
from concurrent.futures import ThreadPoolExecutor

import lightgbm
import numpy as np
import requests
from sklearn.datasets import make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import serve_harness
from .serve_harness import dump


def metric(url: str, name: str) -> float:
    text = requests.get(url + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if re.match(rf"{name}(\{{.*\}})? ", line))


def test_concurrent_requests_share_model_calls(server_factory, models):
    """On the thread stacks, any model's calls are shared through the micro-batcher; eventloop calls a model
    this fast on its loop, and shares calls among the requests that arrive together (test_serve_event_loop.py)."""
    stack = "gunicorn" if serve_harness.HTTP_SERVER == "eventloop" else serve_harness.HTTP_SERVER
    server = server_factory(models["forest"], "--name", "forest", "--threads", "16", "--http-server", stack)
    url = server.url
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


def test_concurrent_requests_to_a_lightgbm_pipeline_get_the_librarys_answers_from_the_compiled_walk(
    server_factory, tmp_path
):
    """The default server walks a pipeline ending in LightGBM with the compiled walk, from many request threads at
    once (ctypes releases the GIL for each walk), and every row gets what the pipeline itself predicts."""
    X, y = make_classification(n_samples=400, n_features=12, n_informative=6, n_classes=3, random_state=0)
    estimator = make_pipeline(StandardScaler(), lightgbm.LGBMClassifier(n_estimators=40, verbose=-1)).fit(X, y)
    server = server_factory(dump(estimator, tmp_path / "lgb", "model.joblib"), "--name", "lgb", "--threads", "16")
    assert 'fast_path="lightgbm-classifier-compiled"' in requests.get(server.url + "/metrics").text
    rows = np.random.default_rng(2).normal(scale=2, size=(240, 12))

    def worker(chunk):
        with requests.Session() as session:
            return [session.post(server.url + "/predict", json={"features": row.tolist()}).json() for row in chunk]

    with ThreadPoolExecutor(12) as pool:
        answers = [a for part in pool.map(worker, np.array_split(rows, 12)) for a in part]
    assert [a["prediction"] for a in answers] == estimator.predict(rows).tolist()
    assert np.array_equal([a["confidence"] for a in answers], estimator.predict_proba(rows).max(axis=1))
