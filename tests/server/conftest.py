"""Fixtures for the serve role: tiny models fitted at test time, and real servers on 127.0.0.1."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import serve_harness
from .serve_harness import dump
from .slow_estimator import SlowClassifier

IRIS_FEATURE_NAMES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
IRIS_LABELS = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="session")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def models(tmp_path_factory, iris) -> dict[str, Path]:
    """Model directories as `fetch` leaves them (model file + model.json), plus the estimators."""
    root = tmp_path_factory.mktemp("models")
    X, y = iris
    forest_X, forest_y = make_classification(n_samples=600, n_features=20, n_informative=8, n_classes=3, random_state=0)
    reg_X, reg_y = make_regression(n_samples=200, n_features=5, random_state=0)
    named = LogisticRegression(max_iter=1000).fit(X, IRIS_LABELS[y])
    # Fitted on an array, then given the attribute fitting on a DataFrame sets (sklearn stores the column names
    # in feature_names_in_, which is all the server reads of a numeric model).
    named.feature_names_in_ = np.array(IRIS_FEATURE_NAMES, dtype=object)
    estimators = {
        "iris": LogisticRegression(max_iter=1000).fit(X, y),
        "forest": RandomForestClassifier(n_estimators=50, random_state=0).fit(forest_X, forest_y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y),
        "regressor": Ridge().fit(reg_X, reg_y),
        "named": named,
        "slow": SlowClassifier(seconds=3.0),
    }
    estimators["mixed"] = mixed_pipeline()
    paths = {name: dump(estimator, root / name, "model.joblib") for name, estimator in estimators.items()}
    paths["skops"] = dump(estimators["pipeline"], root / "skops", "model.skops")
    return {"root": root, "estimators": estimators, "forest_X": forest_X, "reg_X": reg_X, **paths}


def mixed_frame(rows: list[dict]):
    """Rows as the DataFrame a user fits on: string, float, integer and boolean columns."""
    import pandas as pd

    return pd.DataFrame(rows, columns=list(MIXED_ROWS[0]))


def mixed_rows(count: int, seed: int) -> list[dict]:
    generator = np.random.default_rng(seed)
    return [
        {
            "color": str(generator.choice(MIXED_COLORS)),
            "size": float(generator.normal()),
            "count": int(generator.integers(0, 4)),
            "member": bool(generator.integers(0, 2)),
        }
        for _ in range(count)
    ]


MIXED_COLORS = ["red", "green", "blue"]
MIXED_ROWS = [
    {"color": "red", "size": 1.25, "count": 2, "member": True},
    {"color": "blue", "size": -0.5, "count": 0, "member": False},
    {"color": "green", "size": 0.1, "count": 3, "member": True},
]


def mixed_pipeline():
    """A DataFrame pipeline with a categorical string column, a number, an integer category and a boolean."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    rows = mixed_rows(300, seed=1)
    labels = np.array(
        ["low" if r["size"] < -0.3 else "high" if r["member"] and r["color"] != "blue" else "mid" for r in rows]
    )
    columns = ColumnTransformer(
        [
            ("color", OneHotEncoder(), ["color"]),  # an unknown color is the model's error: a 400
            ("flags", OneHotEncoder(handle_unknown="ignore"), ["member", "count"]),
            ("size", StandardScaler(), ["size"]),
        ]
    )
    return make_pipeline(columns, LogisticRegression(max_iter=1000)).fit(mixed_frame(rows), labels)


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory) -> Iterator:
    started: list[serve_harness.RunningServer] = []

    def start(model: Path, *args: str, env: dict[str, str] | None = None) -> serve_harness.RunningServer:
        server = serve_harness.start(tmp_path_factory.mktemp("server"), model, *args, env=env)
        started.append(server)
        return server

    yield start
    for server in started:
        if not server.stopped:
            server.stop()


@pytest.fixture(scope="session")
def iris_server(server_factory, models):
    return server_factory(models["iris"], "--name", "iris", "--version", "v3", "--access-log")


@pytest.fixture(scope="session")
def named_server(server_factory, models):
    return server_factory(models["named"], "--name", "named")


@pytest.fixture(scope="session")
def mixed_server(server_factory, models):
    return server_factory(models["mixed"], "--name", "mixed")


@pytest.fixture(scope="session")
def regressor_server(server_factory, models):
    return server_factory(models["regressor"], "--name", "reg")


@pytest.fixture(scope="session")
def forest_server(server_factory, models):
    return server_factory(models["forest"], "--name", "forest", "--threads", "16", "--compiled-kernels")


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
