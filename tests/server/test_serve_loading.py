"""Start-up: which artifacts load, which are refused, and the exit codes and messages of the contract."""

import json
import pickle

import sklearn
import skops.io

from . import serve_harness
from .serve_harness import dump
from .slow_estimator import SlowClassifier

SLOW_TYPE = f"{SlowClassifier.__module__}.SlowClassifier"


def with_old_sklearn_version(estimator) -> bytes:
    """A pickle that claims another scikit-learn wrote it (same length keeps the pickle framing valid)."""
    current = sklearn.__version__
    fake = ("0." + "9" * len(current))[: len(current)]
    data = pickle.dumps(estimator)
    assert current.encode() in data
    return data.replace(current.encode(), fake.encode())


def test_unverified_pickle_is_refused_with_exit_21(tmp_path, models):
    directory = dump(models["estimators"]["iris"], tmp_path / "model", "model.joblib", verified=False)
    code, log = serve_harness.run_to_exit(tmp_path / "run", directory, "--name", "iris")
    assert code == 21, log
    message = (tmp_path / "run" / "termination-log").read_text()
    assert "refusing to load joblib file model.joblib" in message and "--allow-unverified" in message
    assert message.count("\n") == 1


def test_plain_file_without_manifest_is_unverified(tmp_path, models):
    path = tmp_path / "iris.pkl"
    path.write_bytes(pickle.dumps(models["estimators"]["iris"]))
    code, _ = serve_harness.run_to_exit(tmp_path / "run", path, "--name", "iris")
    assert code == 21


def test_allow_unverified_by_env_twin(tmp_path, models, http):
    path = tmp_path / "iris.pkl"
    path.write_bytes(pickle.dumps(models["estimators"]["iris"]))
    server = serve_harness.start(tmp_path / "run", path, "--name", "iris", env={"MLMODEL_ALLOW_UNVERIFIED": "true"})
    try:
        assert http.post(server.url + "/predict", json={"features": [5.1, 3.5, 1.4, 0.2]}).json()["prediction"] == 0
    finally:
        server.stop()


def test_file_changed_after_fetch_is_refused(tmp_path, models):
    directory = dump(models["estimators"]["iris"], tmp_path / "model", "model.joblib")
    manifest = json.loads((directory / "model.json").read_text())
    manifest["sha256"] = "0" * 64
    (directory / "model.json").write_text(json.dumps(manifest))
    code, _ = serve_harness.run_to_exit(tmp_path / "run", directory, "--name", "iris")
    assert code == 21
    assert "changed after fetch" in (tmp_path / "run" / "termination-log").read_text()


def test_sklearn_version_mismatch_warns_by_default(tmp_path, models, http):
    path = tmp_path / "model" / "model.pkl"
    path.parent.mkdir()
    path.write_bytes(with_old_sklearn_version(models["estimators"]["iris"]))
    serve_harness.write_manifest(path)
    server = serve_harness.start(tmp_path / "run", path.parent, "--name", "iris")
    try:
        assert http.get(server.url + "/ready").status_code == 200
        warnings = [json.loads(line) for line in server.log().splitlines() if "version mismatch" in line]
        assert warnings and warnings[0]["level"] == "warning"
        assert f"this server runs {sklearn.__version__}" in warnings[0]["detail"]
    finally:
        server.stop()


def test_sklearn_version_mismatch_is_exit_22_when_policy_is_error(tmp_path, models):
    path = tmp_path / "model" / "model.pkl"
    path.parent.mkdir()
    path.write_bytes(with_old_sklearn_version(models["estimators"]["iris"]))
    serve_harness.write_manifest(path)
    code, log = serve_harness.run_to_exit(
        tmp_path / "run", path.parent, "--name", "iris", "--sklearn-version-policy", "error"
    )
    assert code == 22, log
    assert "version policy is 'error'" in (tmp_path / "run" / "termination-log").read_text()


def test_skops_with_untrusted_type_fails_clearly(tmp_path):
    directory = tmp_path / "model"
    directory.mkdir()
    skops.io.dump(SlowClassifier(0.0), directory / "model.skops")
    serve_harness.write_manifest(directory / "model.skops", verified=False)
    code, _ = serve_harness.run_to_exit(tmp_path / "run", directory, "--name", "slow")
    assert code == 20
    message = (tmp_path / "run" / "termination-log").read_text()
    assert SLOW_TYPE in message and "--skops-trusted-types" in message


def test_skops_untrusted_type_loads_once_trusted(tmp_path, http):
    directory = tmp_path / "model"
    directory.mkdir()
    skops.io.dump(SlowClassifier(0.0), directory / "model.skops")
    server = serve_harness.start(
        tmp_path / "run", directory, "--name", "slow", env={"MLMODEL_SKOPS_TRUSTED_TYPES": SLOW_TYPE}
    )
    try:
        assert http.post(server.url + "/predict", json={"features": [1, 2]}).json()["prediction"] == 0
    finally:
        server.stop()


def test_missing_model_and_garbage_file_are_exit_20(tmp_path):
    code, _ = serve_harness.run_to_exit(tmp_path / "run1", tmp_path / "nothing-here", "--name", "x")
    assert code == 20
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a pickle")
    code, _ = serve_harness.run_to_exit(tmp_path / "run2", garbage, "--name", "x", "--allow-unverified")
    assert code == 20
    assert "cannot load garbage.joblib" in (tmp_path / "run2" / "termination-log").read_text()


def test_usage_errors_are_exit_2(tmp_path, models):
    code, log = serve_harness.run_to_exit(tmp_path / "run", models["iris"])  # no --name
    assert code == 2 and "--name" in log


def test_skops_version_mismatch_is_exit_22_when_policy_is_error(tmp_path, models):
    """skops keeps each estimator's `_sklearn_version` in its schema.json; rewrite it to an older one."""
    import zipfile

    original = tmp_path / "original.skops"
    skops.io.dump(models["estimators"]["pipeline"], original)
    directory = tmp_path / "model"
    directory.mkdir()
    current = json.dumps(json.dumps(sklearn.__version__))[1:-1]  # a JSON string inside the JSON schema
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(directory / "model.skops", "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                assert current.encode() in data
                data = data.replace(current.encode(), json.dumps(json.dumps("0.0.1"))[1:-1].encode())
            target.writestr(item, data)
    serve_harness.write_manifest(directory / "model.skops", verified=False)
    code, log = serve_harness.run_to_exit(
        tmp_path / "run", directory, "--name", "pipe", "--sklearn-version-policy", "error"
    )
    assert code == 22, log
    assert "scikit-learn 0.0.1" in (tmp_path / "run" / "termination-log").read_text()
