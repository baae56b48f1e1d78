"""The MLmodel reader's own logic on hand-written MLmodel documents (real MLflow output is served end to end in
test_serve_mlflow.py): signatures, flavour choice, recorded versions, data files kept inside the directory."""

import json
from pathlib import Path

import pytest

from mlmodel_server.mlflow_models import (
    DeclaredInputs,
    MlflowRefused,
    choose_flavour,
    declared_inputs,
    read_mlflow_model,
    recorded_versions,
)
from mlmodel_server.signature import Column, ModelSignature


def with_inputs(inputs: list[dict]) -> dict:
    return {"flavors": {}, "signature": {"inputs": json.dumps(inputs), "outputs": None}}


def test_column_signatures_give_names_and_kinds():
    declared = declared_inputs(
        with_inputs(
            [
                {"type": "double", "name": "age"},
                {"type": "long", "name": "visits"},
                {"type": "boolean", "name": "member"},
                {"type": "string", "name": "city"},
                {"type": "float", "name": "score"},
                {"type": "integer", "name": "rank"},
            ]
        )
    )
    assert declared == DeclaredInputs(
        6,
        (
            Column("age", "number"),
            Column("visits", "integer"),
            Column("member", "boolean"),
            Column("city", "string"),
            Column("score", "number"),
            Column("rank", "integer"),
        ),
    )


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 7]}}], DeclaredInputs(7, None)),
        ([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 2, 2]}}], None),
        ([{"type": "tensor", "tensor-spec": {"shape": [-1, 1]}}, {"type": "tensor", "tensor-spec": {}}], None),
        ([{"type": "datetime", "name": "when"}, {"type": "double", "name": "x"}], DeclaredInputs(2, None)),
        ([{"type": "double"}, {"type": "double"}], DeclaredInputs(2, None)),
        ([], None),
    ],
    ids=["2-d-tensor", "3-d-tensor", "two-tensors", "unserved-type", "unnamed", "empty"],
)
def test_other_signatures(inputs, expected):
    assert declared_inputs(with_inputs(inputs)) == expected


def test_no_signature_and_bad_json():
    assert declared_inputs({"flavors": {}}) is None
    with pytest.raises(MlflowRefused, match="signature inputs is not valid JSON"):
        declared_inputs({"flavors": {}, "signature": {"inputs": "[not json"}})


def signature(n_features=None, feature_names=None) -> ModelSignature:
    return ModelSignature(n_features, feature_names, (0, 1), True, "LogisticRegression")


def test_declared_inputs_complete_the_estimators_signature_and_never_contradict_it():
    columns = (Column("a", "number"), Column("b", "integer"))
    completed = DeclaredInputs(2, columns).apply(signature(2))
    assert completed.feature_names == ("a", "b") and completed.columns == columns and completed.n_features == 2
    assert DeclaredInputs(3, None).apply(signature()).n_features == 3
    with pytest.raises(MlflowRefused, match="declares 3 inputs but the model takes 2"):
        DeclaredInputs(3, None).apply(signature(2))
    with pytest.raises(MlflowRefused, match="names the inputs a, b but the model was fitted on x, y"):
        DeclaredInputs(2, columns).apply(signature(2, ("x", "y")))


def test_flavour_choice():
    assert choose_flavour({"flavors": {"python_function": {}, "xgboost": {"data": "m"}}})[0] == "xgboost"
    pyfunc = {"loader_module": "mlflow.lightgbm", "data": "model.lgb"}
    assert choose_flavour({"flavors": {"python_function": pyfunc}}) == ("lightgbm", pyfunc)
    with pytest.raises(MlflowRefused, match=r"flavours are pytorch, python_function \(python_function loader_module"):
        choose_flavour({"flavors": {"pytorch": {}, "python_function": {"loader_module": "mlflow.pytorch"}}})


def test_recorded_versions_keep_only_version_like_values():
    mlmodel = {
        "mlflow_version": "3.17.2",
        "flavors": {
            "sklearn": {"sklearn_version": "1.9.1"},
            "python_function": {"python_version": "3.11.7"},
            "xgboost": {"xgb_version": "$(rm -rf /)"},
            "onnx": {"onnx_version": 1.17},
        },
    }
    assert recorded_versions(mlmodel) == {"mlflow": "3.17.2", "scikit-learn": "1.9.1", "python": "3.11.7"}


def write_mlmodel(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "MLmodel").write_text(text)
    return directory


def test_a_data_file_outside_the_directory_or_missing_is_refused(tmp_path):
    (tmp_path / "secret.pkl").write_bytes(b"x")
    outside = write_mlmodel(tmp_path / "m1", "flavors:\n  sklearn:\n    pickled_model: ../secret.pkl\n")
    with pytest.raises(MlflowRefused, match="outside the model directory"):
        read_mlflow_model(outside)
    missing = write_mlmodel(tmp_path / "m2", "flavors:\n  onnx:\n    data: model.onnx\n")
    with pytest.raises(MlflowRefused, match=r"names the data file 'model\.onnx', which is not in the model directory"):
        read_mlflow_model(missing)


def test_unreadable_mlmodels_are_refused(tmp_path):
    with pytest.raises(MlflowRefused, match="cannot read MLmodel"):
        read_mlflow_model(write_mlmodel(tmp_path / "a", "flavors: [unclosed\n"))
    with pytest.raises(MlflowRefused, match="has no flavors mapping"):
        read_mlflow_model(write_mlmodel(tmp_path / "b", "just a string\n"))
    with pytest.raises(MlflowRefused, match="serialization_format 'torch'"):
        directory = write_mlmodel(
            tmp_path / "c", "flavors:\n  sklearn:\n    pickled_model: m.pt\n    serialization_format: torch\n"
        )
        (directory / "m.pt").write_bytes(b"x")
        read_mlflow_model(directory)
