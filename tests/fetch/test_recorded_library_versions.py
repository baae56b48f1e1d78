"""The XGBoost, LightGBM and ONNX versions an artifact records, read without loading it, and the rule per library
that says when a difference matters: real model files trained here, their recorded versions rewritten."""

import hashlib
import json

import joblib
import lightgbm
import numpy as np
import pytest
import xgboost
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlmodel_server.fetch.versions import (
    LIGHTGBM_MODEL_FORMAT,
    ONNX_IR_VERSION,
    ONNX_OPSETS,
    ONNX_PRODUCER,
    SKEW_MARKER,
    SKLEARN,
    XGBOOST_LIBRARY,
    checked_versions,
    recorded_versions,
    runtime_versions,
    version_mismatches,
)

RUNTIME = runtime_versions()
XGB_MAJOR, XGB_MINOR = (int(part) for part in RUNTIME[XGBOOST_LIBRARY].split(".")[:2])
NEWER_XGB = f"{XGB_MAJOR}.{XGB_MINOR + 1}.0"
OLDER_XGB = f"{XGB_MAJOR}.{XGB_MINOR - 1}.0"


@pytest.fixture(scope="module")
def iris():
    return load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def booster(iris):
    X, y = iris
    return xgboost.XGBClassifier(n_estimators=2, max_depth=2).fit(X, y)


@pytest.fixture(scope="module")
def light(iris):
    X, y = iris
    return lightgbm.LGBMClassifier(n_estimators=2, num_leaves=4, verbose=-1).fit(X, y)


def xgboost_json(booster, path, recorded: str | None = None):
    booster.save_model(path)
    if recorded is not None:
        model = json.loads(path.read_text())
        model["version"] = [int(part) for part in recorded.split(".")]
        path.write_text(json.dumps(model))
    return path


def ubjson_version(version: str) -> bytes:
    return b"version[#L" + (3).to_bytes(8, "big") + b"".join(b"i" + bytes([int(p)]) for p in version.split("."))


def test_the_runtime_names_each_library_of_the_image_and_lightgbms_model_format():
    assert RUNTIME[SKLEARN] and RUNTIME[XGBOOST_LIBRARY] and RUNTIME["onnxruntime"]
    assert RUNTIME[LIGHTGBM_MODEL_FORMAT] == "v" + lightgbm.__version__.split(".")[0]


def test_the_lightgbm_model_format_the_runtime_names_is_the_one_its_lightgbm_writes(light):
    assert light.booster_.model_to_string().splitlines()[1] == f"version={RUNTIME[LIGHTGBM_MODEL_FORMAT]}"


def test_xgboost_json_ubjson_and_pickled_wrappers_record_the_writing_version(tmp_path, booster):
    booster.save_model(tmp_path / "model.json")
    booster.save_model(tmp_path / "model.ubj")
    joblib.dump(booster, tmp_path / "model.joblib")
    assert ubjson_version(RUNTIME[XGBOOST_LIBRARY]) in (tmp_path / "model.ubj").read_bytes()
    assert recorded_versions(tmp_path / "model.json", "xgboost") == {XGBOOST_LIBRARY: RUNTIME[XGBOOST_LIBRARY]}
    assert recorded_versions(tmp_path / "model.ubj", "xgboost") == {XGBOOST_LIBRARY: RUNTIME[XGBOOST_LIBRARY]}
    assert recorded_versions(tmp_path / "model.joblib", "joblib")[XGBOOST_LIBRARY] == RUNTIME[XGBOOST_LIBRARY]


def test_a_rewritten_ubjson_version_is_read(tmp_path, booster):
    booster.save_model(tmp_path / "model.ubj")
    data = (tmp_path / "model.ubj").read_bytes()
    rewritten = data.replace(ubjson_version(RUNTIME[XGBOOST_LIBRARY]), ubjson_version(NEWER_XGB))
    assert rewritten != data
    (tmp_path / "model.ubj").write_bytes(rewritten)
    assert recorded_versions(tmp_path / "model.ubj", "xgboost") == {XGBOOST_LIBRARY: NEWER_XGB}


def test_lightgbm_text_files_and_wrappers_record_the_model_format(tmp_path, light):
    light.booster_.save_model(tmp_path / "model.txt")
    joblib.dump(light, tmp_path / "model.joblib")
    assert recorded_versions(tmp_path / "model.txt", "lightgbm") == {LIGHTGBM_MODEL_FORMAT: "v4"}
    pickled = recorded_versions(tmp_path / "model.joblib", "joblib")
    assert pickled[LIGHTGBM_MODEL_FORMAT] == "v4" and pickled[SKLEARN] == RUNTIME[SKLEARN]


def test_onnx_records_ir_version_opsets_and_producer(tmp_path, iris):
    X, y = iris
    (tmp_path / "model.onnx").write_bytes(
        to_onnx(LogisticRegression(max_iter=500).fit(X, y), X[:1].astype(np.float32)).SerializeToString()
    )
    import onnx

    model = onnx.load(tmp_path / "model.onnx")
    recorded = recorded_versions(tmp_path / "model.onnx", "onnx")
    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    assert recorded == {
        ONNX_IR_VERSION: str(model.ir_version),
        ONNX_OPSETS: ",".join(f"{d}={v}" for d, v in sorted(opsets.items())),
        ONNX_PRODUCER: f"{model.producer_name} {model.producer_version}",
    }
    assert version_mismatches(recorded, RUNTIME, pickled=False) == {}


def test_garbage_records_nothing(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\xff" * 64)
    (tmp_path / "model.json").write_bytes(b'{"learner": {}, "version": ["<script>", 1, 2]}')
    (tmp_path / "empty.txt").write_bytes(b"")
    assert recorded_versions(tmp_path / "model.onnx", "onnx") == {}
    assert recorded_versions(tmp_path / "model.json", "xgboost") == {}
    assert recorded_versions(tmp_path / "empty.txt", "lightgbm") == {}


@pytest.mark.parametrize(
    ("recorded", "pickled", "matters"),
    [
        ({XGBOOST_LIBRARY: NEWER_XGB}, False, True),  # an older XGBoost may misread a newer file
        ({XGBOOST_LIBRARY: OLDER_XGB}, False, False),  # XGBoost reads older files
        ({XGBOOST_LIBRARY: OLDER_XGB}, True, True),  # a pickle across minor versions
        ({XGBOOST_LIBRARY: f"{XGB_MAJOR}.{XGB_MINOR}.9"}, True, False),  # a patch release apart
        ({"lightgbm": "9.0.0"}, False, True),  # e.g. what an MLflow model lists
        ({"lightgbm": "4.0.0"}, True, True),
        ({"lightgbm": "4.0.0"}, False, False),
        ({LIGHTGBM_MODEL_FORMAT: "v9"}, False, True),
        ({LIGHTGBM_MODEL_FORMAT: "v3"}, False, False),
        ({SKLEARN: "1.0.2"}, True, True),
        ({SKLEARN: RUNTIME[SKLEARN]}, True, False),
    ],
)
def test_the_mismatch_rule_per_library(recorded, pickled, matters):
    runtime = {**RUNTIME, "lightgbm": "4.7.0", LIGHTGBM_MODEL_FORMAT: "v4"}
    found = version_mismatches(recorded, runtime, pickled)
    assert (list(found) == list(recorded)) if matters else found == {}


def test_fetch_names_a_newer_xgboost_in_its_termination_message_and_succeeds(run_fetch, tmp_path, booster):
    source = xgboost_json(booster, tmp_path / "newer.json", NEWER_XGB)
    result = run_fetch("--uri", str(source), "--sha256", hashlib.sha256(source.read_bytes()).hexdigest())
    assert result.exit_code == 0, result.stderr
    assert result.termination_message == (
        f"{SKEW_MARKER} model.xgboost was written with XGBoost {NEWER_XGB} but this image runs "
        f"{RUNTIME[XGBOOST_LIBRARY]} (an older XGBoost may misread a newer model)\n"
    )
    assert result.logged("library version mismatch")


def test_fetch_of_an_older_native_xgboost_file_writes_no_termination_message(run_fetch, tmp_path, booster):
    source = xgboost_json(booster, tmp_path / "older.json", OLDER_XGB)
    result = run_fetch("--uri", str(source))
    assert result.exit_code == 0, result.stderr
    assert result.termination_message == ""


def test_versions_from_another_source_are_checked_before_they_are_shown():
    listed = {SKLEARN: "1.5.2", XGBOOST_LIBRARY: "2.1.0\nInjected: line", "lightgbm": "<b>4</b>", "onnx": 17}
    assert checked_versions(listed) == {SKLEARN: "1.5.2"}
    assert list(version_mismatches(checked_versions(listed), RUNTIME, pickled=True)) == [SKLEARN]
