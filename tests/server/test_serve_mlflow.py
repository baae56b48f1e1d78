"""MLflow model directories end to end: written by real MLflow (in its own venv, tests/mlflow_venv.py), packed as
.tar.gz or .zip, fetched by the real `mlmodel-server fetch` (file:// or a real HTTP server) and served by the real
server, which has no mlflow. Predictions must equal the library's own on the same rows; the signature's inputs
become the served input schema."""

import hashlib
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pytest
import sklearn
import xgboost
from mlflow_venv import write_models
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from mlmodel_server.mlflow_models import mlflow_library_versions

from . import serve_harness
from . import test_serve_native_formats as native
from .test_serve_native_formats import assert_same, onnxruntime_outputs, run_fetch

artifacts_dir = native.artifacts_dir  # fixtures: a directory of artifacts, and a real HTTP server serving it
artifact_http = native.artifact_http

COLUMNS = ["sepal", "petal", "stem", "leaf"]


@dataclass(frozen=True)
class Case:
    flavour: str  # as the writer takes it
    predict: np.ndarray
    proba: np.ndarray | None
    loads_as: str  # what the MLmodel's data file is
    columns: list[str] | None = None
    options: dict | None = None
    archive: str = ".tar.gz"
    source: str = "file"


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[dict[str, Case], Path, np.ndarray]:
    """Every case's MLflow directory under one root, written in one run of the MLflow venv."""
    root = tmp_path_factory.mktemp("mlflow")
    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
    rows = np.concatenate([X[:10], np.random.default_rng(2).normal(scale=3, size=(6, 4))])
    np.save(root / "example.npy", X[:5])
    logistic = LogisticRegression(max_iter=500).fit(X, y)
    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, y)
    boosting = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(X, y)
    xgb = xgboost.XGBClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, y)
    lgb = lightgbm.LGBMClassifier(n_estimators=6, num_leaves=7, verbose=-1).fit(X, y)
    booster = lightgbm.train({"objective": "regression", "verbose": -1, "num_leaves": 7}, lightgbm.Dataset(X, y), 6)
    models = {
        "sklearn-pickle-columns": logistic,
        "sklearn-cloudpickle": forest,
        "sklearn-skops-zip-http": boosting,
        "xgboost": xgb,
        "lightgbm-skops": lgb,
    }
    for name, model in models.items():
        joblib.dump(model, root / f"{name}.joblib")
    booster.save_model(root / "booster.txt")
    onnx_path = root / "logistic.onnx"
    onnx_path.write_bytes(
        to_onnx(logistic, X[:1].astype(np.float32), options={id(logistic): {"zipmap": False}}).SerializeToString()
    )

    def own(model) -> tuple[np.ndarray, np.ndarray | None]:
        return model.predict(rows), model.predict_proba(rows) if hasattr(model, "predict_proba") else None

    onnx_expected = onnxruntime_outputs(onnx_path, rows)
    cases = {
        "sklearn-pickle-columns": Case(
            "sklearn", *own(logistic), "pickle", COLUMNS, {"serialization_format": "pickle"}
        ),
        "sklearn-cloudpickle": Case("sklearn", *own(forest), "pickle", options={"serialization_format": "cloudpickle"}),
        # The trees' node storage is a type skops does not trust by default: MLflow records it in MLmodel, which
        # the server follows because the archive's digest is pinned.
        "sklearn-skops-zip-http": Case(
            "sklearn",
            *own(boosting),
            "skops",
            options={"skops_trusted_types": ["sklearn.tree._tree.Tree"]},
            archive=".zip",
            source="http",
        ),
        "xgboost": Case("xgboost", *own(xgb), "xgboost"),
        "lightgbm-skops": Case("lightgbm", *own(lgb), "skops"),
        "lightgbm-booster-tgz": Case("lightgbm-booster", booster.predict(rows), None, "lightgbm", archive=".tgz"),
        "onnx": Case("onnx", onnx_expected.predict, onnx_expected.proba, "onnx"),
    }
    sources = {name: root / f"{name}.joblib" for name in models} | {
        "lightgbm-booster-tgz": root / "booster.txt",
        "onnx": onnx_path,
    }
    jobs = [
        {
            "flavour": case.flavour,
            "model": str(sources[name]),
            "out": str(root / name),
            "example": str(root / "example.npy"),
            "columns": case.columns,
            "options": case.options,
        }
        for name, case in cases.items()
    ]
    jobs.append({"flavour": "pyfunc", "model": "", "out": str(root / "pyfunc"), "example": str(root / "example.npy")})
    write_models(jobs, root)
    return cases, root, rows


def pack(directory: Path, archive: Path) -> str:
    """The directory as an archive whose members sit under one top directory (as `tar czf m.tgz m/` makes)."""
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as packed:
            for path in sorted(directory.rglob("*")):
                packed.write(path, f"{directory.name}/{path.relative_to(directory)}")
    else:
        with tarfile.open(archive, "w:gz") as packed:
            packed.add(directory, arcname=directory.name)
    return hashlib.sha256(archive.read_bytes()).hexdigest()


CASE_NAMES = [
    "sklearn-pickle-columns",
    "sklearn-cloudpickle",
    "sklearn-skops-zip-http",
    "xgboost",
    "lightgbm-skops",
    "lightgbm-booster-tgz",
    "onnx",
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_mlflow_model_fetched_and_served_like_the_library(name, written, artifact_http, artifacts_dir, tmp_path, http):
    cases, root, rows = written
    case = cases[name]
    archive = artifacts_dir / f"{name}{case.archive}"
    sha256 = pack(root / name, archive)
    uri = f"{artifact_http}/{archive.name}" if case.source == "http" else f"file://{archive}"
    fetched = run_fetch(uri, tmp_path / "models", "--sha256", sha256)
    assert fetched.returncode == 0, fetched.stderr
    metadata = json.loads((tmp_path / "models" / "model.json").read_text())
    assert metadata["file"] == "model" and metadata["format"] == "mlflow"
    assert metadata["sha256"] == sha256 and metadata["verified"] is True
    assert (tmp_path / "models" / "model" / name / "MLmodel").is_file()

    server = serve_harness.start(tmp_path / "run", tmp_path / "models", "--name", "m")
    try:
        loaded = next(entry for entry in server.log_entries() if entry.get("message") == "Loaded model")
        assert loaded["format"] == "mlflow" and loaded["sha256"] == sha256
        assert loaded["recorded_versions"]["mlflow"] == "3.17.2"
        assert loaded["file"].endswith(f"/model/{name}/" + Path(loaded["file"]).name)
        classic = http.post(server.url + "/predict", json={"instances": rows.tolist()}).json()
        assert_same(classic["prediction"], np.asarray(case.predict))
        inputs = [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]
        outputs = [{"name": "predict"}] + ([{"name": "predict_proba"}] if case.proba is not None else [])
        response = http.post(server.url + "/v2/models/m/infer", json={"inputs": inputs, "outputs": outputs})
        assert response.status_code == 200, response.text
        served = {output["name"]: output for output in response.json()["outputs"]}
        if case.proba is not None:
            proba = np.reshape(served["predict_proba"]["data"], served["predict_proba"]["shape"])
            assert_same(proba, np.asarray(case.proba))
        model_metadata = http.get(server.url + "/v2/models/m").json()
        assert model_metadata["platform"] == "mlflow"
        assert model_metadata["inputs"][0]["shape"] == [-1, 4]
        if case.columns:
            assert model_metadata["parameters"]["feature_names"] == ",".join(case.columns)
            assert model_metadata["parameters"]["recorded_version.mlflow"] == "3.17.2"
            named = dict(zip(reversed(case.columns), reversed(rows[0].tolist()), strict=True))
            body = http.post(server.url + "/predict", json={"features": named}).json()
            assert_same(body["prediction"], np.asarray(case.predict[0]))
    finally:
        server.stop()


def test_signature_columns_and_recorded_versions(written):
    cases, root, _ = written
    from mlmodel_server.mlflow_models import read_mlflow_model

    model = read_mlflow_model(root / "sklearn-pickle-columns")
    assert model.flavour == "sklearn" and model.file_format == "pickle"
    assert model.inputs is not None
    assert [(column.name, column.kind) for column in model.inputs.columns or ()] == [(c, "number") for c in COLUMNS]
    tensor = read_mlflow_model(root / "sklearn-cloudpickle").inputs
    assert tensor is not None and tensor.n_features == 4 and tensor.columns is None
    versions = mlflow_library_versions(root / "xgboost")
    assert versions["xgboost"] == xgboost.__version__ and versions["mlflow"] == "3.17.2"
    assert mlflow_library_versions(root / "sklearn-skops-zip-http")["scikit-learn"] == sklearn.__version__
    assert {case.loads_as for case in cases.values()} == {"pickle", "skops", "xgboost", "lightgbm", "onnx"}
    for name, case in cases.items():
        assert read_mlflow_model(root / name).file_format == case.loads_as, name


def test_a_custom_python_model_is_refused_with_a_load_error(written, artifacts_dir, tmp_path):
    _, root, _ = written
    archive = artifacts_dir / "pyfunc.tar.gz"
    sha256 = pack(root / "pyfunc", archive)
    fetched = run_fetch(f"file://{archive}", tmp_path / "models", "--sha256", sha256)
    assert fetched.returncode == 0, fetched.stderr

    code, log = serve_harness.run_to_exit(tmp_path / "run", tmp_path / "models", "--name", "m")
    assert code == 20, log
    message = (tmp_path / "run" / "termination-log").read_text()
    assert "flavours are python_function (python_function loader_module mlflow.pyfunc.model)" in message
    assert "this image serves sklearn, xgboost, lightgbm, onnx" in message


def test_a_model_directory_changed_after_fetch_is_refused(written, artifacts_dir, tmp_path):
    _, root, _ = written
    archive = artifacts_dir / "changed.tar.gz"
    sha256 = pack(root / "xgboost", archive)
    assert run_fetch(f"file://{archive}", tmp_path / "models", "--sha256", sha256).returncode == 0
    (tmp_path / "models" / "model" / "xgboost" / "MLmodel").write_text("flavors: {}\n")

    code, log = serve_harness.run_to_exit(tmp_path / "run", tmp_path / "models", "--name", "m")
    assert code == 21, log
    assert "changed after fetch" in log
