"""XGBoost, LightGBM and scikit-learn gradient boosting end to end: each model is trained here, fetched by the real
`mlmodel-server fetch` (file:// or a real HTTP server, by name or told from its content) into the directory the
real server then serves; classic /predict, V1 and V2 must answer what the library's own predict and
predict_proba answer on the same rows."""

import hashlib
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import joblib
import lightgbm
import numpy as np
import pytest
import xgboost
from skl2onnx import to_onnx
from sklearn.datasets import make_classification
from sklearn.ensemble import (
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge

from . import serve_harness

N_FEATURES = 8
LABELS = np.array(["ham", "spam", "eggs"])
FEATURE_NAMES = [f"f{index}" for index in range(N_FEATURES)]


@dataclass(frozen=True)
class Expected:
    predict: np.ndarray
    proba: np.ndarray | None  # None: a regressor
    platform: str
    feature_names: list[str] | None = None


@dataclass(frozen=True)
class Case:
    file_name: str  # as written by the library; "" suffix-less names are told from their content over http
    write: Callable[[Path], None]
    expected: Callable[[np.ndarray], Expected]
    model_format: str
    source: str = "file"  # or "http"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X, y = make_classification(n_samples=300, n_features=N_FEATURES, n_informative=5, n_classes=3, random_state=0)
    rows = np.concatenate([X[:12], np.random.default_rng(1).normal(scale=3, size=(8, N_FEATURES))])
    return X, y, X[:, 0] * 2 + X[:, 1], rows


def xgboost_classifier(X, y):
    return xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=0).fit(X, y)


def lightgbm_booster(X, y, objective: str):
    params = {"objective": objective, "verbose": -1, "num_leaves": 7, "seed": 0}
    if objective == "multiclass":
        params["num_class"] = 3
    dataset = lightgbm.Dataset(X, label=y, feature_name=FEATURE_NAMES)
    return lightgbm.train(params, dataset, num_boost_round=8)


def classifier_expected(model, platform: str, feature_names=None) -> Callable[[np.ndarray], Expected]:
    return lambda rows: Expected(model.predict(rows), model.predict_proba(rows), platform, feature_names)


def regressor_expected(model, platform: str) -> Callable[[np.ndarray], Expected]:
    return lambda rows: Expected(model.predict(rows), None, platform)


def binary_expected(probability: Callable[[np.ndarray], np.ndarray], platform: str, threshold_index):
    """A plain booster's binary objective: its predict is the positive class's probability."""

    def expected(rows: np.ndarray) -> Expected:
        positive = probability(rows)
        proba = np.vstack((1 - positive, positive)).T
        return Expected(threshold_index(positive, proba), proba, platform, FEATURE_NAMES)

    return expected


def build_cases(data) -> dict[str, Case]:
    X, y, target, _ = data
    binary = (y == 1).astype(int)
    xgb_classifier = xgboost_classifier(X, y)
    xgb_regressor = xgboost.XGBRegressor(n_estimators=8, max_depth=3).fit(X, target)
    xgb_booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3},
        xgboost.DMatrix(X, label=binary, feature_names=FEATURE_NAMES),
        num_boost_round=6,
    )
    lgb_classifier = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(X, y)
    lgb_labelled = lightgbm.LGBMClassifier(n_estimators=8, num_leaves=7, verbose=-1).fit(X, LABELS[y])
    lgb_regressor = lightgbm.LGBMRegressor(n_estimators=8, num_leaves=7, verbose=-1).fit(X, target)
    lgb_binary = lightgbm_booster(X, binary, "binary")
    gradient_boosting = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X, LABELS[y])
    histogram = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    histogram_regressor = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(X, target)

    forest = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=0).fit(X, LABELS[y])
    logistic = LogisticRegression(max_iter=500).fit(X, y * 10)  # integer labels that are not 0..k-1
    ridge = Ridge().fit(X, target)

    def onnx_graph(model, zipmap: bool = True) -> Callable[[Path], None]:
        options = None if zipmap else {id(model): {"zipmap": False}}
        graph = to_onnx(model, X[:1].astype(np.float32), options=options, target_opset={"": 17, "ai.onnx.ml": 3})
        return lambda path: path.write_bytes(graph.SerializeToString())

    def xgb_booster_probability(rows):
        return xgb_booster.predict(xgboost.DMatrix(rows, feature_names=FEATURE_NAMES))

    return {
        "xgboost-classifier-json": Case(
            "xgb.json", xgb_classifier.save_model, classifier_expected(xgb_classifier, "xgboost"), "xgboost"
        ),
        "xgboost-classifier-ubj-http": Case(
            "xgb.ubj", xgb_classifier.save_model, classifier_expected(xgb_classifier, "xgboost"), "xgboost", "http"
        ),
        "xgboost-regressor-json": Case(
            "reg.json", xgb_regressor.save_model, regressor_expected(xgb_regressor, "xgboost"), "xgboost"
        ),
        # A plain Booster's UBJSON under a name without a suffix: told from its content.
        "xgboost-booster-ubj-no-suffix-http": Case(
            "booster",
            lambda path: path.write_bytes(bytes(xgb_booster.save_raw("ubj"))),
            binary_expected(xgb_booster_probability, "xgboost", lambda positive, _: (positive > 0.5).astype(int)),
            "xgboost",
            "http",
        ),
        "xgboost-wrapper-joblib": Case(
            "xgb.joblib", partial(joblib.dump, xgb_classifier), classifier_expected(xgb_classifier, "sklearn"), "joblib"
        ),
        "xgboost-regressor-pickle-http": Case(
            "xgb.pkl",
            partial(joblib.dump, xgb_regressor),
            regressor_expected(xgb_regressor, "sklearn"),
            "pickle",
            "http",
        ),
        "lightgbm-classifier-txt": Case(
            "lgb.txt",
            lambda path: lgb_classifier.booster_.save_model(path),
            classifier_expected(lgb_classifier, "lightgbm"),
            "lightgbm",
        ),
        "lightgbm-regressor-txt-http": Case(
            "lgb-reg.txt",
            lambda path: lgb_regressor.booster_.save_model(path),
            regressor_expected(lgb_regressor, "lightgbm"),
            "lightgbm",
            "http",
        ),
        "lightgbm-booster-no-suffix-http": Case(
            "lgb-binary",
            lambda path: lgb_binary.save_model(path),
            binary_expected(lgb_binary.predict, "lightgbm", lambda _, proba: np.argmax(proba, axis=1)),
            "lightgbm",
            "http",
        ),
        "lightgbm-wrapper-joblib": Case(
            "lgb.joblib", partial(joblib.dump, lgb_labelled), classifier_expected(lgb_labelled, "sklearn"), "joblib"
        ),
        "lightgbm-regressor-pickle": Case(
            "lgb.pkl", partial(joblib.dump, lgb_regressor), regressor_expected(lgb_regressor, "sklearn"), "pickle"
        ),
        "sklearn-gradient-boosting-joblib": Case(
            "gb.joblib",
            partial(joblib.dump, gradient_boosting),
            classifier_expected(gradient_boosting, "sklearn"),
            "joblib",
        ),
        "sklearn-hist-gradient-boosting-http": Case(
            "hgb.joblib", partial(joblib.dump, histogram), classifier_expected(histogram, "sklearn"), "joblib", "http"
        ),
        "sklearn-hist-gradient-boosting-regressor": Case(
            "hgbr.pkl",
            partial(joblib.dump, histogram_regressor),
            regressor_expected(histogram_regressor, "sklearn"),
            "pickle",
        ),
        # onnxruntime's own outputs for the same graph are what the server must answer.
        "onnx-forest-zipmap-http": Case("forest.onnx", onnx_graph(forest), onnx_expected(), "onnx", "http"),
        "onnx-logistic-tensor": Case("logistic.onnx", onnx_graph(logistic, zipmap=False), onnx_expected(), "onnx"),
        "onnx-regressor": Case("ridge.onnx", onnx_graph(ridge), onnx_expected(), "onnx"),
    }


def onnx_expected() -> Callable[[np.ndarray], Expected]:
    """Filled in by the test from the written file (the graph is what is served)."""
    return lambda rows: Expected(np.array([]), None, "onnxruntime_onnx")


def onnxruntime_outputs(path: Path, rows: np.ndarray) -> Expected:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {session.get_inputs()[0].name: rows.astype(np.float32)})
    predict = np.asarray(outputs[0])
    predict = predict[:, 0] if predict.ndim == 2 else predict
    if len(outputs) == 1:
        return Expected(predict, None, "onnxruntime_onnx")
    proba = outputs[1]
    if isinstance(proba, list):
        proba = np.array([list(row.values()) for row in proba], dtype=np.float32)
    return Expected(predict, np.asarray(proba), "onnxruntime_onnx")


# The fast path each case is served by, by default: the compiled tree walk for every tree model (mlmodel_model_info)
FAST_PATHS = {
    "xgboost-classifier-json": "xgboost-classifier-compiled",
    "xgboost-classifier-ubj-http": "xgboost-classifier-compiled",
    "xgboost-regressor-json": "xgboost-regressor-compiled",
    "xgboost-booster-ubj-no-suffix-http": "xgboost-classifier-compiled",
    "xgboost-wrapper-joblib": "xgboost-classifier-compiled",
    "xgboost-regressor-pickle-http": "xgboost-regressor-compiled",
    "lightgbm-classifier-txt": "lightgbm-classifier-compiled",
    "lightgbm-regressor-txt-http": "lightgbm-regressor-compiled",
    "lightgbm-booster-no-suffix-http": "lightgbm-classifier-compiled",
    "lightgbm-wrapper-joblib": "lightgbm-classifier-compiled",
    "lightgbm-regressor-pickle": "lightgbm-regressor-compiled",
    "sklearn-gradient-boosting-joblib": "gradient-boosting-classifier-compiled",
    "sklearn-hist-gradient-boosting-http": "hist-gradient-boosting-classifier-compiled",
    "sklearn-hist-gradient-boosting-regressor": "hist-gradient-boosting-regressor-compiled",
    "onnx-forest-zipmap-http": "none",
    "onnx-logistic-tensor": "none",
    "onnx-regressor": "none",
}

CASE_NAMES = [
    "xgboost-classifier-json",
    "xgboost-classifier-ubj-http",
    "xgboost-regressor-json",
    "xgboost-booster-ubj-no-suffix-http",
    "xgboost-wrapper-joblib",
    "xgboost-regressor-pickle-http",
    "lightgbm-classifier-txt",
    "lightgbm-regressor-txt-http",
    "lightgbm-booster-no-suffix-http",
    "lightgbm-wrapper-joblib",
    "lightgbm-regressor-pickle",
    "sklearn-gradient-boosting-joblib",
    "sklearn-hist-gradient-boosting-http",
    "sklearn-hist-gradient-boosting-regressor",
    "onnx-forest-zipmap-http",
    "onnx-logistic-tensor",
    "onnx-regressor",
]


@pytest.fixture(scope="module")
def cases(data) -> dict[str, Case]:
    built = build_cases(data)
    assert sorted(built) == sorted(CASE_NAMES)
    return built


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def artifact_http(artifacts_dir) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 serving the artifacts directory as static files."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(artifacts_dir)))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def run_fetch(uri: str, dest: Path, *args: str) -> subprocess.CompletedProcess:
    message = dest.parent / f"{dest.name}-termination"
    command = [str(serve_harness.SERVER_BIN), "fetch", "--uri", uri, "--dest", str(dest)]
    command += ["--termination-message-path", str(message), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def v2_outputs(body: dict) -> dict[str, np.ndarray]:
    return {
        output["name"]: np.reshape(output["data"], output["shape"]) if output["shape"] else np.asarray(output["data"])
        for output in body["outputs"]
    }


def assert_same(served, expected: np.ndarray) -> None:
    """Equal to the library's values: labels exactly, floats exactly once read back in the library's dtype."""
    served = np.asarray(served)
    if expected.dtype.kind == "f":
        np.testing.assert_array_equal(served.astype(expected.dtype), expected)
    else:
        assert served.tolist() == expected.tolist()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_fetched_and_served_like_the_library(name, cases, data, artifacts_dir, artifact_http, tmp_path, http):
    case = cases[name]
    path = artifacts_dir / case.file_name
    case.write(path)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    uri = f"{artifact_http}/{case.file_name}" if case.source == "http" else f"file://{path}"
    fetched = run_fetch(uri, tmp_path / "models", "--sha256", sha256)
    assert fetched.returncode == 0, fetched.stderr
    metadata = json.loads((tmp_path / "models" / "model.json").read_text())
    assert metadata["format"] == case.model_format and metadata["verified"] is True
    assert metadata["file"] == f"model.{case.model_format}"

    server = serve_harness.start(tmp_path / "run", tmp_path / "models", "--name", "m")
    try:
        assert f'fast_path="{FAST_PATHS[name]}"' in http.get(server.url + "/metrics").text
        rows = data[3]
        expected = onnxruntime_outputs(path, rows) if case.model_format == "onnx" else case.expected(rows)
        classic = http.post(server.url + "/predict", json={"instances": rows.tolist()}).json()
        assert_same(classic["prediction"], expected.predict)
        v1 = http.post(server.url + "/v1/models/m:predict", json={"instances": rows.tolist()}).json()
        assert_same(v1["predictions"], expected.predict)

        outputs = [{"name": "predict"}] + ([{"name": "predict_proba"}] if expected.proba is not None else [])
        inputs = [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]
        response = http.post(server.url + "/v2/models/m/infer", json={"inputs": inputs, "outputs": outputs})
        assert response.status_code == 200, response.text
        served = v2_outputs(response.json())
        assert_same(served["predict"], expected.predict)
        metadata = http.get(server.url + "/v2/models/m").json()
        assert metadata["platform"] == expected.platform
        assert metadata["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, N_FEATURES]}]
        if expected.proba is None:
            assert "confidence" not in classic and [o["name"] for o in metadata["outputs"]] == ["predict"]
        else:
            assert_same(served["predict_proba"], expected.proba)
            assert_same(classic["confidence"], expected.proba.max(axis=1))
            assert metadata["outputs"][1] == {
                "name": "predict_proba",
                "datatype": "FP64",
                "shape": [-1, expected.proba.shape[1]],
            }
        if expected.feature_names:
            assert metadata["parameters"]["feature_names"] == ",".join(expected.feature_names)
            named = dict(zip(reversed(expected.feature_names), reversed(rows[0].tolist()), strict=True))
            assert_same(
                http.post(server.url + "/predict", json={"features": named}).json()["prediction"], expected.predict[0]
            )
    finally:
        server.stop()


@pytest.mark.parametrize("name", ["xgboost-classifier-json", "lightgbm-classifier-txt"])
def test_compiled_kernels_false_serves_with_the_library_and_the_same_answers(name, cases, data, tmp_path, http):
    case = cases[name]
    path = tmp_path / case.file_name
    case.write(path)
    fetched = run_fetch(f"file://{path}", tmp_path / "models")
    assert fetched.returncode == 0, fetched.stderr
    answers = {}
    for flag in ("true", "false"):
        server = serve_harness.start(
            tmp_path / f"run-{flag}", tmp_path / "models", "--name", "m", "--compiled-kernels", flag
        )
        try:
            metrics = http.get(server.url + "/metrics").text
            assert f'fast_path="{FAST_PATHS[name] if flag == "true" else "none"}"' in metrics
            outputs = [{"name": "predict"}, {"name": "predict_proba"}]
            inputs = [{"name": "x", "shape": list(data[3].shape), "datatype": "FP64", "data": data[3].ravel().tolist()}]
            response = http.post(server.url + "/v2/models/m/infer", json={"inputs": inputs, "outputs": outputs})
            assert response.status_code == 200, response.text
            answers[flag] = response.json()["outputs"]
        finally:
            server.stop()
    assert answers["true"] == answers["false"]
    expected = case.expected(data[3])
    served = {output["name"]: output["data"] for output in answers["true"]}
    assert_same(served["predict"], expected.predict)
    assert_same(np.reshape(served["predict_proba"], expected.proba.shape), expected.proba)


def test_native_files_need_no_digest(tmp_path, data, http):
    """XGBoost and LightGBM readers run nothing from the file: unverified, they load without --allow-unverified."""
    X, y, _, rows = data
    model = xgboost_classifier(X, y)
    model.save_model(tmp_path / "model.ubj")
    fetched = run_fetch(f"file://{tmp_path / 'model.ubj'}", tmp_path / "models")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads((tmp_path / "models" / "model.json").read_text())["verified"] is False
    server = serve_harness.start(tmp_path / "run", tmp_path / "models", "--name", "m")
    try:
        body = http.post(server.url + "/predict", json={"instances": rows.tolist()}).json()
        assert body["prediction"] == model.predict(rows).tolist()
    finally:
        server.stop()


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("file_name", "write", "message"),
    [
        (
            "model.json",
            lambda m, p: p.write_bytes(truncated(m["xgb"].get_booster().save_raw("json"))),
            "XGBoost cannot read",
        ),
        (
            "model.ubj",
            lambda m, p: p.write_bytes(truncated(m["xgb"].get_booster().save_raw("ubj"))),
            "XGBoost cannot read",
        ),
        ("model.txt", lambda m, p: p.write_text(m["lgb"].model_to_string()[:2000]), "LightGBM cannot read"),
        ("model.json", lambda m, p: p.write_text('{"not": "an XGBoost model"}'), "is not a xgboost model file"),
        ("model.txt", lambda m, p: p.write_text("just notes\n"), "is not a lightgbm model file"),
        ("model.onnx", lambda m, p: p.write_bytes(truncated(m["onnx"])), "onnxruntime cannot read model.onnx"),
        ("model.onnx", lambda m, p: p.write_bytes(m["two-inputs"]), "served are graphs with one 2-D numeric tensor"),
    ],
    ids=[
        "xgboost-json-truncated",
        "xgboost-ubj-truncated",
        "lightgbm-truncated",
        "json-not-xgboost",
        "txt-not-lightgbm",
        "onnx-truncated",
        "onnx-two-inputs",
    ],
)
def test_a_file_its_library_cannot_read_is_a_load_failure(tmp_path, data, file_name, write, message):
    X, y, _, _ = data
    models = {
        "xgb": xgboost_classifier(X, y),
        "lgb": lightgbm_booster(X, y, "multiclass"),
        "onnx": to_onnx(Ridge().fit(X, y), X[:1].astype(np.float32)).SerializeToString(),
        "two-inputs": two_input_graph(),
    }
    path = tmp_path / "src" / file_name
    path.parent.mkdir()
    write(models, path)
    fetched = run_fetch(f"file://{path}", tmp_path / "models")
    assert fetched.returncode == 0, fetched.stderr  # fetch moves bytes; reading them is the server's job
    code, log = serve_harness.run_to_exit(tmp_path / "run", tmp_path / "models", "--name", "m")
    assert code == 20, log
    termination = (tmp_path / "run" / "termination-log").read_text()
    assert message in termination and termination.count("\n") == 1, termination
    assert "Traceback" not in termination


def two_input_graph() -> bytes:
    """A valid graph the server cannot map to rows: two inputs, added together."""
    from onnx import TensorProto, helper

    a, b = (helper.make_tensor_value_info(name, TensorProto.FLOAT, [None, 2]) for name in ("a", "b"))
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 2])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "two", [a, b], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_name_and_content_that_tell_no_format_are_a_usage_error(tmp_path, data):
    X, y, _, _ = data
    path = tmp_path / "latest"
    joblib.dump(xgboost_classifier(X, y), path)  # a pickle is never told from its bytes
    fetched = run_fetch(f"file://{path}", tmp_path / "models")
    assert fetched.returncode == 2
    message = (tmp_path / "models-termination").read_text()
    assert "cannot tell the model format" in message and "--format" in message
    assert not (tmp_path / "models" / "model.json").exists()
    assert [p.name for p in (tmp_path / "models").iterdir()] == []


@pytest.mark.parametrize("zipmap", [True, False], ids=["zipmap", "tensor"])
def test_an_onnx_classifier_answers_labels_and_probabilities_from_one_run(tmp_path, zipmap):
    from mlmodel_server.kernels import plain_kernels
    from mlmodel_server.onnx_models import load_onnx
    from mlmodel_server.signature import signature_of

    X, y = make_classification(n_samples=60, n_features=4, n_informative=3, n_redundant=0, random_state=1)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y)
    options = None if zipmap else {id(forest): {"zipmap": False}}
    path = tmp_path / "forest.onnx"
    path.write_bytes(to_onnx(forest, X[:1].astype(np.float32), options=options).SerializeToString())
    model = load_onnx(path)
    kernels = plain_kernels(model, signature_of(model))
    assert kernels.predict_both is not None

    runs = []
    session_run = model.session.run
    model.session = type("CountingSession", (), {"run": lambda _self, *a: runs.append(a) or session_run(*a)})()
    labels, probabilities = kernels.predict_both(X)
    assert len(runs) == 1
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_array_equal(probabilities, model.predict_proba(X))


def test_a_lightgbm_classifier_answers_labels_and_probabilities_from_one_pass(tmp_path):
    from mlmodel_server.kernels import plain_kernels
    from mlmodel_server.native_models import load_lightgbm
    from mlmodel_server.signature import signature_of

    X, y = make_classification(n_samples=80, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=2)
    path = tmp_path / "model.lightgbm"
    lightgbm.LGBMClassifier(n_estimators=4, num_leaves=5, verbose=-1).fit(X, y).booster_.save_model(path)
    model = load_lightgbm(path)
    kernels = plain_kernels(model, signature_of(model))
    assert kernels.predict_both is not None

    passes = []
    scores = model.scores
    model.scores = lambda rows: passes.append(len(rows)) or scores(rows)
    labels, probabilities = kernels.predict_both(X)
    assert passes == [len(X)]
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_array_equal(probabilities, model.predict_proba(X))
