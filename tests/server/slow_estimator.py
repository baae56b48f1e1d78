"""A classifier whose predict sleeps: lets the shutdown test hold a request in flight. The server imports
it when unpickling (as `server.slow_estimator`), so the harness puts tests/ on the server's PYTHONPATH."""

import time

import numpy as np


class SlowClassifier:
    def __init__(self, seconds: float):
        self.seconds = seconds
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])

    def predict(self, X):
        if len(X) and float(X[0][0]) < 0:  # a negative first feature asks for the slow path
            time.sleep(self.seconds)
        return np.zeros(len(X), dtype=np.int64)


class SteadyClassifier:
    """Every call takes `seconds`, whatever its rows: a model slow enough that concurrent requests should share
    its calls (the eventloop stack serves it from request threads)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])

    def predict(self, X):
        time.sleep(self.seconds)
        return np.zeros(len(X), dtype=np.int64)
