"""One table of artifact URIs, run through mlmodel_contract.artifacts.parse_uri (what the operator and the
fetcher use) and through the real API server's admission of an MLModel carrying it (the CRD's CEL rules).

The rule the table proves: every URI the API server admits, parse_uri accepts. The CRD may refuse more (it
refuses credentials, relative paths, upper-case buckets, ...: what the fetcher accepts on its command line but
an MLModel must not carry); each such row says so.
"""

from __future__ import annotations

import json

import pytest

from mlmodel_contract import api
from mlmodel_contract.artifacts import InvalidUri, parse_uri

pytestmark = pytest.mark.cluster

# (uri, admitted by the API server, accepted by parse_uri)
TABLE = [
    ("/models/iris.joblib", True, True),
    ("file:///models/iris.joblib", True, True),
    ("file:///models/my%20model.joblib", True, True),
    ("http://models.example.com/iris.joblib", True, True),
    ("https://models.example.com:8443/a/iris.joblib?X-Amz-Signature=abc", True, True),
    ("https://[2001:db8::1]/iris.joblib", True, True),
    ("https://models.example.com", True, True),
    ("s3://my-bucket/team/iris.joblib", True, True),
    ("s3://my.bucket.name/k.joblib", True, True),
    ("pvc://models-claim/dir/iris.joblib", True, True),
    ("pvc://c/x.joblib", True, True),
    ("pvc://claim/a..b/x.joblib", True, True),
    # Directory artifacts: archives over any scheme, and s3 prefixes.
    ("s3://my-bucket/team/mlflow-model/", True, True),
    ("https://models.example.com/m.tar.gz", True, True),
    ("pvc://claim/models/m.zip", True, True),
    # Refused by both.
    ("", False, False),
    ("gs://bucket/m.joblib", False, False),
    ("ftp://host/m.joblib", False, False),
    ("file://otherhost/m.joblib", False, False),
    ("http:///path/m.joblib", False, False),
    ("https://:8443/m.joblib", False, False),
    ("s3://bucket", False, False),
    ("s3:///key.joblib", False, False),
    ("pvc://claim", False, False),
    ("pvc://claim/", False, False),
    ("pvc://claim/a/../../etc/x.joblib", False, False),
    ("pvc://claim/../x.joblib", False, False),
    ("pvc://claim/%2e%2E/x.joblib", False, False),
    ("/models/mlflow-model/", False, False),  # only s3 names a directory; pack one as an archive
    ("file:///models/mlflow-model/", False, False),
    ("pvc://claim/mlflow-model/", False, False),
    # Refused by the CRD only: what an MLModel must not carry, although the fetcher's command line takes it.
    ("models/iris.joblib", False, True),  # a relative path: relative to what, in a pod?
    ("file://localhost/m.joblib", False, True),
    ("HTTPS://models.example.com/m.joblib", False, True),
    ("https://user:password@models.example.com/m.joblib", False, True),  # credentials belong in a Secret
    ("//user:password@models.example.com/m.joblib", False, True),
    ("s3://key:secret@bucket/m.joblib", False, True),
    ("s3://Bucket/m.joblib", False, True),
    ("s3://bucket//m.joblib", False, True),
    ("pvc://Claim/m.joblib", False, True),
    ("pvc://claim//m.joblib", False, True),
    (" /models/iris.joblib", False, True),
]


def parses(uri: str) -> bool:
    try:
        parse_uri(uri)
    except InvalidUri:
        return False
    return True


def test_every_uri_the_api_server_admits_parses():
    assert [row for row in TABLE if row[1] and not row[2]] == []


@pytest.mark.parametrize(("uri", "admitted", "parsed"), TABLE, ids=[row[0] or "<empty>" for row in TABLE])
def test_the_api_server_and_parse_uri_judge_the_uri_as_the_table_says(kubectl, namespace, crd, uri, admitted, parsed):
    assert parses(uri) == parsed
    mlmodel = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": "uri", "namespace": namespace},
        "spec": {"model": {"uri": uri, "sha256": "a" * 64, "format": "joblib"}},
    }
    result = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(mlmodel), check=False)
    assert (result.returncode == 0) == admitted, result.stderr
    if not admitted:
        assert "spec.model.uri" in result.stderr, result.stderr
