"""Every native format on the real node: an XGBoost JSON file, a LightGBM text file and an ONNX graph, each fetched
over HTTP by the init container and served from a restricted, read-only pod of the server image (so the image
carries each runtime and its system libraries, and none of them needs a writable root). Answers through the
Service must equal the library's own predictions on the same rows."""

from __future__ import annotations

import json

import lightgbm
import numpy as np
import pytest
import xgboost
from e2e_helpers import Artifact, apply, mlmodel, wait_ready
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

pytestmark = pytest.mark.cluster

N_FEATURES = 6


def _training_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=200, n_features=N_FEATURES, n_informative=4, n_classes=3, random_state=0)
    return X, y, X[:5]


def _models() -> dict[str, tuple[Artifact, np.ndarray]]:
    """name → (the artifact as the library writes it, the library's own labels for ROWS)."""
    X, y, rows = _training_data()
    xgb = xgboost.XGBClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, y)
    params = {"objective": "multiclass", "num_class": 3, "verbose": -1, "num_leaves": 7, "seed": 0}
    lgb = lightgbm.train(params, lightgbm.Dataset(X, label=y), num_boost_round=6)
    linear = LogisticRegression(max_iter=500).fit(X, y)
    onnx_bytes = to_onnx(linear, X[:1].astype(np.float32), options={"zipmap": False}).SerializeToString()
    return {
        "xgboost": (Artifact("model.xgb.json", bytes(xgb.get_booster().save_raw("json"))), xgb.predict(rows)),
        "lightgbm": (Artifact("model.lgb.txt", lgb.model_to_string().encode()), lgb.predict(rows).argmax(axis=1)),
        "onnx": (Artifact("model.onnx", onnx_bytes), linear.predict(rows)),
    }


@pytest.fixture(scope="module")
def models() -> dict[str, tuple[Artifact, np.ndarray]]:
    return _models()


@pytest.fixture(scope="module")
def artifacts(models) -> dict[str, Artifact]:
    """Overrides conftest's: the artifact server serves these files."""
    return {name: artifact for name, (artifact, _) in models.items()}


def test_xgboost_lightgbm_and_onnx_files_serve_from_restricted_pods(
    kubectl, e2e_operator, artifact_server, client_pod, models
):
    namespace = artifact_server
    for name, (artifact, _) in models.items():
        apply(kubectl, mlmodel(namespace, artifact, name=name))
    rows = _training_data()[2].tolist()
    for name, (_, expected) in models.items():
        wait_ready(kubectl, namespace, name)
        answer = client_pod.post(f"http://{name}.{namespace}.svc.cluster.local/predict", {"instances": rows})
        assert answer["status"] == 200, (name, answer)
        assert json.loads(answer["body"])["prediction"] == expected.tolist(), (name, answer)
