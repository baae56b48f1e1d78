"""The library versions an artifact records and the image's, in V2 model metadata and mlmodel_model_library_info;
the version policy (sklearnVersionPolicy) applied to every library's mismatch rule. A real server on a socket."""

import json

import xgboost
from sklearn.datasets import load_iris

from mlmodel_server.fetch.versions import runtime_versions

from . import serve_harness
from .test_serve_metrics import sample

RUNTIME = runtime_versions()
MAJOR, MINOR = (int(part) for part in RUNTIME["xgboost"].split(".")[:2])
NEWER = f"{MAJOR}.{MINOR + 1}.0"


def newer_xgboost_model(directory):
    """An XGBoost JSON model whose `version` says a newer XGBoost wrote it."""
    X, y = load_iris(return_X_y=True)
    directory.mkdir(parents=True)
    path = directory / "model.xgboost"
    xgboost.XGBClassifier(n_estimators=2, max_depth=2).fit(X, y).save_model(directory / "model.json")
    model = json.loads((directory / "model.json").read_text())
    (directory / "model.json").unlink()
    model["version"] = [MAJOR, MINOR + 1, 0]
    path.write_text(json.dumps(model))
    serve_harness.write_manifest(path)
    return directory


def test_a_newer_xgboost_model_serves_under_warn_and_shows_both_versions(tmp_path, http):
    server = serve_harness.start(tmp_path / "run", newer_xgboost_model(tmp_path / "model"), "--name", "m")
    try:
        parameters = http.get(server.url + "/v2/models/m").json()["parameters"]
        assert parameters["recorded_version.xgboost"] == NEWER
        assert {k: v for k, v in parameters.items() if k.startswith("runtime_version.")} == {
            f"runtime_version.{library}": version for library, version in RUNTIME.items()
        }
        assert parameters["version_mismatches"] == "xgboost"
        metrics = http.get(server.url + "/metrics").text
        labels = {"name": "m", "library": "xgboost", "recorded_version": NEWER, "runtime_version": RUNTIME["xgboost"]}
        assert sample(metrics, "mlmodel_model_library_info", **labels, mismatch="true") == 1
        assert sample(metrics, "mlmodel_model_library_info", library="scikit-learn", recorded_version="") == 1
        warnings = [json.loads(line) for line in server.log().splitlines() if "version mismatch" in line]
        assert warnings and f"XGBoost {NEWER} but this image runs {RUNTIME['xgboost']}" in warnings[0]["detail"]
    finally:
        server.stop()


def test_a_newer_xgboost_model_is_exit_22_when_the_policy_is_error(tmp_path):
    directory = newer_xgboost_model(tmp_path / "model")
    code, log = serve_harness.run_to_exit(
        tmp_path / "run", directory, "--name", "m", "--sklearn-version-policy", "error"
    )
    assert code == 22, log
    message = (tmp_path / "run" / "termination-log").read_text()
    assert f"model.xgboost was written with XGBoost {NEWER}" in message and "version policy is 'error'" in message


def test_a_model_of_the_images_own_versions_shows_them_without_a_mismatch(iris_server, http):
    parameters = http.get(iris_server.url + "/v2/models/iris").json()["parameters"]
    assert parameters["recorded_version.scikit-learn"] == RUNTIME["scikit-learn"]
    assert parameters["runtime_version.scikit-learn"] == RUNTIME["scikit-learn"]
    assert "version_mismatches" not in parameters
    metrics = http.get(iris_server.url + "/metrics").text
    assert (
        sample(
            metrics,
            "mlmodel_model_library_info",
            library="scikit-learn",
            recorded_version=RUNTIME["scikit-learn"],
            mismatch="false",
        )
        == 1
    )
