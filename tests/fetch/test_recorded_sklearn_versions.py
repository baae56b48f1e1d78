"""`fetch` reads the scikit-learn versions an artifact records, without loading it, and names a skew in its
termination message on success: real joblib, pickle and skops files whose recorded version was rewritten."""

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.exceptions import InconsistentVersionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mlmodel_server.fetch.versions import (
    SKEW_MARKER,
    recorded_sklearn_versions,
    running_sklearn_version,
    schema_versions,
    skew_message,
)

CURRENT = sklearn.__version__
OLD = ("0." + "9" * len(CURRENT))[: len(CURRENT)]  # same length keeps the pickle framing valid


@pytest.fixture(scope="module")
def pipeline():
    features = np.random.default_rng(0).random((40, 3))
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(features, [0, 1] * 20)


def rewritten(data: bytes, old: str = OLD) -> bytes:
    assert CURRENT.encode() in data
    return data.replace(CURRENT.encode(), old.encode())


def joblib_file(path: Path, estimator, **options) -> Path:
    joblib.dump(estimator, path, **options)
    return path


def skops_with_version(estimator, path: Path, old: str) -> Path:
    original = path.with_suffix(".original")
    skops.io.dump(estimator, original)
    current = json.dumps(json.dumps(CURRENT))[1:-1]  # a JSON string inside the JSON schema
    with zipfile.ZipFile(original) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                data = data.replace(current.encode(), json.dumps(json.dumps(old))[1:-1].encode())
            target.writestr(item, data)
    return path


def test_the_running_version_comes_from_the_installed_package():
    assert running_sklearn_version() == CURRENT


def test_joblib_with_numpy_arrays_between_opcodes(tmp_path, pipeline):
    path = joblib_file(tmp_path / "model.joblib", pipeline)
    assert recorded_sklearn_versions(path, "joblib") == (CURRENT,)
    path.write_bytes(rewritten(path.read_bytes()))
    with pytest.warns(InconsistentVersionWarning, match=OLD):  # still a valid joblib file, now "from" OLD
        assert joblib.load(path).predict([[0.1, 0.2, 0.3]]).shape == (1,)
    assert recorded_sklearn_versions(path, "joblib") == (OLD,)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickle_of_each_protocol(tmp_path, pipeline, protocol):
    path = tmp_path / "model.pkl"
    path.write_bytes(rewritten(pickle.dumps(pipeline, protocol=protocol)))
    assert recorded_sklearn_versions(path, "pickle") == (OLD,)


def test_compressed_joblib_reports_nothing(tmp_path, pipeline):
    path = joblib_file(tmp_path / "model.joblib", pipeline, compress=3)
    assert recorded_sklearn_versions(path, "joblib") == ()


def test_a_pickled_value_that_is_no_version_is_ignored(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(
        pickle.dumps({"_sklearn_version": "1.0 see //user:pw@host"}) + pickle.dumps({"_sklearn_version": "1.4.2"})
    )
    assert recorded_sklearn_versions(path, "pickle") == ("1.4.2",)


def test_files_without_versions_report_nothing(tmp_path):
    empty, garbage, plain = tmp_path / "empty.pkl", tmp_path / "garbage.pkl", tmp_path / "plain.pkl"
    empty.write_bytes(b"")
    garbage.write_bytes(b"\x8c\x10_sklearn_version\xff\xff")  # the key, then no pickle at all
    plain.write_bytes(pickle.dumps({"weights": [1, 2]}))
    assert [recorded_sklearn_versions(p, "pickle") for p in (empty, garbage, plain)] == [(), (), ()]
    assert recorded_sklearn_versions(garbage, "skops") == ()  # not a zip


def test_skops_versions_come_from_the_schema(tmp_path, pipeline):
    path = skops_with_version(pipeline, tmp_path / "model.skops", "1.0.2")
    assert recorded_sklearn_versions(path, "skops") == ("1.0.2",)


def test_schema_versions_ignore_what_is_not_a_json_string():
    schema = {
        "content": [
            {"_sklearn_version": {"content": '"1.2.0"'}},
            {"_sklearn_version": {"content": "not json"}},
            {"_sklearn_version": {"content": "12"}},
            {"_sklearn_version": {"content": '"1.0 see //user:pw@host"'}},
            {"_sklearn_version": "1.3.0"},
        ]
    }
    assert schema_versions(schema) == {"1.2.0"}


def test_skew_message_names_only_a_difference():
    assert skew_message("model.joblib", (CURRENT,), CURRENT) is None
    assert skew_message("model.joblib", (), CURRENT) is None
    assert skew_message("model.joblib", ("1.0",), None) is None
    assert skew_message("model.joblib", ("1.0\n2", CURRENT), CURRENT) == (
        f"{SKEW_MARKER} model.joblib was written with scikit-learn 1.0 2, {CURRENT} but this image runs {CURRENT}"
    )


def test_fetch_writes_the_skew_to_its_termination_message_and_succeeds(run_fetch, tmp_path, pipeline):
    source = tmp_path / "store" / "old.joblib"
    source.parent.mkdir()
    source.write_bytes(rewritten(joblib_file(tmp_path / "fresh.joblib", pipeline).read_bytes()))
    result = run_fetch("--uri", str(source), "--sha256", hashlib.sha256(source.read_bytes()).hexdigest())

    assert result.exit_code == 0, result.stderr
    assert result.termination_message == (
        f"{SKEW_MARKER} model.joblib was written with scikit-learn {OLD} but this image runs {CURRENT}\n"
    )
    assert result.logged("scikit-learn version mismatch")


def test_fetch_with_matching_versions_writes_no_termination_message(run_fetch, tmp_path, pipeline):
    source = skops_with_version(pipeline, tmp_path / "same.skops", CURRENT)
    result = run_fetch("--uri", str(source))

    assert result.exit_code == 0, result.stderr
    assert result.termination_message == ""


def test_fetch_reports_a_skops_skew_for_an_unverified_artifact_too(run_fetch, tmp_path, pipeline):
    source = skops_with_version(pipeline, tmp_path / "old.skops", "1.0.2")
    result = run_fetch("--uri", str(source))

    assert result.exit_code == 0, result.stderr
    assert "written with scikit-learn 1.0.2 but this image runs" in result.termination_message
