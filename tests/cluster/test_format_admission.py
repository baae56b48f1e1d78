"""The CRD's trust rule on the real API server: sha256 (or allowUnverified) is required exactly when the format,
given or named by the URI's suffix, is pickle-based or mlflow, or when no format is given for a directory artifact
(an archive or an s3 prefix, which may hold a pickle); another URI naming no format is admitted (the fetcher tells
the format from the content, and never tells a pickle so)."""

from __future__ import annotations

import json

import pytest

from mlmodel_contract import api
from mlmodel_contract.artifacts import MLFLOW, PICKLE_BASED_FORMATS, format_from_uri, is_directory_artifact

pytestmark = pytest.mark.cluster

# (model without sha256, admitted)
TABLE = [
    ({"uri": "https://h/m.joblib"}, False),
    ({"uri": "https://h/m.PKL"}, False),
    ({"uri": "https://h/m.pickle?X-Amz-Signature=abc"}, False),
    ({"uri": "https://h/m.pkl#v2"}, False),
    ({"uri": "s3://bucket/models/latest", "format": "joblib"}, False),
    ({"uri": "https://h/m.joblib", "allowUnverified": True}, True),
    ({"uri": "https://h/m.skops"}, True),
    ({"uri": "https://h/m.json"}, True),
    ({"uri": "https://h/m.ubj"}, True),
    ({"uri": "https://h/m.txt?X-Amz-Signature=abc"}, True),
    ({"uri": "s3://bucket/models/latest"}, True),
    ({"uri": "s3://bucket/models/latest", "format": "xgboost"}, True),
    ({"uri": "pvc://claim/m.joblib", "format": "lightgbm"}, True),
    ({"uri": "s3://bucket/team/model.onnx"}, True),
    ({"uri": "s3://bucket/models/latest", "format": "onnx"}, True),
    ({"uri": "https://h/m.tar.gz"}, False),
    ({"uri": "https://h/m.ZIP?X-Amz-Signature=abc"}, False),
    ({"uri": "s3://bucket/models/churn/"}, False),
    ({"uri": "https://h/m.tgz", "format": "mlflow"}, False),
    ({"uri": "s3://bucket/models/churn/", "format": "onnx"}, True),
    ({"uri": "https://h/m.tgz", "allowUnverified": True}, True),
    ({"uri": "https://h/m.tar.gz.txt"}, True),
]


def needs_digest(model: dict) -> bool:
    if model.get("allowUnverified"):
        return False
    if model.get("format"):
        return model["format"] in (*PICKLE_BASED_FORMATS, MLFLOW)
    return format_from_uri(model["uri"]) in PICKLE_BASED_FORMATS or is_directory_artifact(model["uri"])


def test_the_table_is_the_contract_s_trust_rule():
    assert [model for model, admitted in TABLE if admitted == needs_digest(model)] == []


@pytest.mark.parametrize(("model", "admitted"), TABLE, ids=[json.dumps(row[0]) for row in TABLE])
def test_the_api_server_requires_a_digest_for_pickles_only(kubectl, namespace, crd, model, admitted):
    mlmodel = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "trust", "namespace": namespace},
        "spec": {"model": model},
    }
    result = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(mlmodel), check=False)
    assert (result.returncode == 0) == admitted, result.stderr
    if not admitted:
        assert "spec.model.sha256" in result.stderr, result.stderr
