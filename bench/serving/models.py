"""The benchmark's model files, request rows, and the in-process floors (the bare prediction calls).

Every model is trained by the bench, deterministically (fixed seeds, one thread), with the project's own
libraries, and saved in its library's own format: scikit-learn models with joblib, the XGBoost model as
XGBoost's JSON model file, the LightGBM model as LightGBM's text model file (both as Booster.save_model
writes them, the files our server, MLServer and KServe each load natively).
"""

from __future__ import annotations

import os
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
import xgboost
from sklearn.datasets import load_iris, make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlmodel_server.loading import load_model
from mlmodel_server.predictor import ModelIdentity, Predictor

BATCH_ROWS = 100
SEED = 0
TREES = 100

SKLEARN, XGBOOST, LIGHTGBM = "sklearn", "xgboost", "lightgbm"
# model name -> the library whose own file format it is saved in
KINDS = {"iris": SKLEARN, "forest": SKLEARN, "xgboost": XGBOOST, "lightgbm": LIGHTGBM}
MODELS = tuple(KINDS)
# the distribution whose version names the model directory, and the file suffix our server detects the format by
_FILES = {SKLEARN: ("scikit-learn", ".joblib"), XGBOOST: ("xgboost-cpu", ".json"), LIGHTGBM: ("lightgbm", ".txt")}


@dataclass(frozen=True)
class BenchModel:
    name: str
    kind: str  # SKLEARN, XGBOOST or LIGHTGBM
    path: Path
    row: list[float]
    batch: list[list[float]]

    @property
    def n_features(self) -> int:
        return len(self.row)


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "iris":
        return load_iris(return_X_y=True)
    if name in KINDS:  # forest, xgboost, lightgbm: the same 20-feature binary problem
        return make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=SEED)
    raise ValueError(f"unknown model {name!r} ({', '.join(MODELS)})")


def _train_and_save(name: str, x: np.ndarray, y: np.ndarray, path: Path) -> None:
    if name == "iris":
        joblib.dump(LogisticRegression(max_iter=1000).fit(x, y), path)
    elif name == "forest":
        joblib.dump(RandomForestClassifier(n_estimators=TREES, random_state=SEED).fit(x, y), path)
    elif name == "xgboost":
        xgboost.XGBClassifier(n_estimators=TREES, random_state=SEED, n_jobs=1).fit(x, y).save_model(path)
    else:
        params = {"n_estimators": TREES, "random_state": SEED, "n_jobs": 1, "deterministic": True, "verbose": -1}
        lightgbm.LGBMClassifier(**params).fit(x, y).booster_.save_model(path)


def build(name: str, workdir: Path) -> BenchModel:
    """Train (or reuse) the model file under workdir/models/<library>-<version>/ and pick the rows every
    server is sent: one fixed row and a fixed block of BATCH_ROWS rows."""
    x, y = _data(name)
    kind = KINDS[name]
    distribution, suffix = _FILES[kind]
    path = workdir / "models" / f"{distribution}-{metadata.version(distribution)}" / f"{name}{suffix}"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"partial-{path.name}")  # a file cut short by Ctrl-C is never reused
        _train_and_save(name, x, y, partial)
        partial.rename(path)
    rows = np.round(x[:BATCH_ROWS], 4).tolist()
    return BenchModel(name=name, kind=kind, path=path, row=rows[0], batch=rows)


def _library_call(model: BenchModel) -> tuple[str, Callable[[np.ndarray], Any]]:
    """The library's own prediction, one thread, the way the anchors call it: predict_proba of the unpickled
    estimator; XGBoost's Booster.predict on a DMatrix (KServe's xgbserver); LightGBM's Booster.predict."""
    if model.kind == XGBOOST:
        booster = xgboost.Booster(params={"nthread": 1}, model_file=str(model.path))
        return "xgboost Booster.predict(DMatrix)", lambda rows: booster.predict(xgboost.DMatrix(rows, nthread=1))
    if model.kind == LIGHTGBM:
        gbm = lightgbm.Booster(model_file=str(model.path))
        return "lightgbm Booster.predict", lambda rows: gbm.predict(rows, num_threads=1)
    estimator = joblib.load(model.path)
    return "predict_proba", estimator.predict_proba


def _our_call(model: BenchModel) -> tuple[str, Callable[[np.ndarray], Any]]:
    """Our server's model call for a /predict request (labels and probabilities), on the kernels the server
    builds with its default settings (Predictor -> kernels.build_kernels), without the HTTP and batching around it."""
    loaded = load_model(str(model.path), allow_unverified=True)
    predictor = Predictor(loaded.estimator, ModelIdentity(model.name, "bench", loaded.sha256, model.kind))
    kernel = predictor.kernels.fast_kernel or "the model's own methods"
    return f"ours, default kernels ({kernel})", lambda rows: predictor._call_model(rows, True)


def floors(model: BenchModel, cpu: int, repeat: int = 5) -> dict[str, dict[str, float]]:
    """Per in-process call (the library's own and our server's): best-of-`repeat` seconds per call on 1 row and
    on BATCH_ROWS rows, in this process, pinned for the time of the measurement to `cpu` (the servers' one)."""
    calls = dict((_library_call(model), _our_call(model)))
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        result: dict[str, dict[str, float]] = {}
        for label, call in calls.items():
            result[label] = {}
            for rows_label, rows in (("1", np.array([model.row])), (str(BATCH_ROWS), np.array(model.batch))):
                timer = timeit.Timer(lambda call=call, rows=rows: call(rows))
                number, _ = timer.autorange()
                result[label][rows_label] = min(timer.repeat(repeat=repeat, number=number)) / number
        return result
    finally:
        os.sched_setaffinity(0, previous)
