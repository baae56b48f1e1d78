"""The benchmark's model files, request rows, and the in-process floor (bare predict_proba time)."""

from __future__ import annotations

import os
import timeit
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

BATCH_ROWS = 100
SEED = 0


@dataclass(frozen=True)
class BenchModel:
    name: str
    path: Path
    row: list[float]
    batch: list[list[float]]

    @property
    def n_features(self) -> int:
        return len(self.row)


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "iris":
        return load_iris(return_X_y=True)
    if name == "forest":
        return make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=SEED)
    raise ValueError(f"unknown model {name!r} (iris, forest)")


def _estimator(name: str) -> LogisticRegression | RandomForestClassifier:
    if name == "iris":
        return LogisticRegression(max_iter=1000)
    return RandomForestClassifier(n_estimators=100, random_state=SEED)


def build(name: str, workdir: Path) -> BenchModel:
    """Train (or reuse) the model file under workdir/models/<scikit-learn version>/ and pick the rows
    every server is sent: one fixed row and a fixed block of BATCH_ROWS rows."""
    x, y = _data(name)
    path = workdir / "models" / sklearn.__version__ / f"{name}.joblib"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(_estimator(name).fit(x, y), path)
    rows = np.round(x[:BATCH_ROWS], 4).tolist()
    return BenchModel(name=name, path=path, row=rows[0], batch=rows)


def bare_predict_seconds(model: BenchModel, cpu: int, repeat: int = 5) -> dict[str, float]:
    """Best-of-`repeat` seconds per predict_proba call on 1 row and on BATCH_ROWS rows, in this
    process, pinned for the time of the measurement to `cpu` (the one the servers run on)."""
    estimator = joblib.load(model.path)
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        result = {}
        for label, rows in (("1", np.array([model.row])), (str(BATCH_ROWS), np.array(model.batch))):
            timer = timeit.Timer(lambda rows=rows: estimator.predict_proba(rows))
            number, _ = timer.autorange()
            result[label] = min(timer.repeat(repeat=repeat, number=number)) / number
        return result
    finally:
        os.sched_setaffinity(0, previous)
