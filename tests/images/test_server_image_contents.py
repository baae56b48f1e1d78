"""What the slimmed server image (hack/slim_server_image.py) still holds: every format's runtime loads and predicts,
the s3:// fetcher resolves endpoints and credentials (web identity through STS) with the trimmed botocore, and
the image stays within its size bound."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import boto3
import joblib
import lightgbm
import numpy as np
import pytest
import skops.io
import xgboost
from moto_process import running_moto
from skl2onnx import to_onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from .buildah_support import SERVER_IMAGE, buildah, writable_dir
from .test_server_image import container_env, mounts, python_as_the_pod, rendered_pod

pytestmark = pytest.mark.timeout(1800)  # the first test may build the images from nothing

# Issue 15: one server image for every format, at most 500 MB uncompressed (decimal megabytes, as buildah counts).
SIZE_LIMIT_BYTES = 500_000_000
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def test_the_server_image_is_at_most_500_mb_uncompressed(images, tmp_path):
    """The image's layers as pushed to an OCI layout, each counted unpacked (what `buildah images` shows)."""
    layout = tmp_path / "oci"
    buildah("push", "--quiet", SERVER_IMAGE, f"oci:{layout}", timeout=600)
    [entry] = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads(blob(layout, entry["digest"]).read_text())
    size = sum(unpacked_size(blob(layout, layer["digest"]), layer["mediaType"]) for layer in manifest["layers"])
    assert size <= SIZE_LIMIT_BYTES, (
        f"{SERVER_IMAGE} is {size / 1e6:.1f} MB uncompressed, over {SIZE_LIMIT_BYTES / 1e6:.0f}"
    )


def blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / Path(*digest.split(":"))


def unpacked_size(path: Path, media_type: str) -> int:
    if media_type.endswith(".tar"):
        return path.stat().st_size
    assert media_type.endswith(".tar+gzip"), media_type
    size = 0
    with gzip.open(path) as layer:
        while chunk := layer.read(1 << 20):
            size += len(chunk)
    return size


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, list]:
    """One iris classifier per format (and the pickled XGBoost and LightGBM wrappers), with its predictions here."""
    root = tmp_path_factory.mktemp("formats")
    X, y = load_iris(return_X_y=True)
    linear = LogisticRegression(max_iter=1000).fit(X, y)
    boosted = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    light = lightgbm.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(X, y)
    joblib.dump(linear, root / "linear.joblib")
    skops.io.dump(linear, root / "linear.skops")
    boosted.save_model(root / "xgboost.json")
    boosted.save_model(root / "xgboost.ubj")
    joblib.dump(boosted, root / "xgboost-wrapper.joblib")
    light.booster_.save_model(root / "lightgbm.txt")
    joblib.dump(light, root / "lightgbm-wrapper.joblib")
    (root / "linear.onnx").write_bytes(to_onnx(linear, X[:1].astype(np.float32)).SerializeToString())
    rows = np.array(ROWS)
    expected = {"linear": linear.predict(rows), "xgboost": boosted.predict(rows), "lightgbm": light.predict(rows)}
    return {
        "root": root,
        "expected": {
            path.name: ",".join(str(int(v)) for v in expected[path.stem.split("-")[0].split(".")[0]])
            for path in root.iterdir()
        },
    }


FORMATS_CHECK = f"""
from pathlib import Path
import numpy as np
from mlmodel_server.loading import Artifact, format_of, read_estimator
for path in sorted(Path("/models").iterdir()):
    estimator, _ = read_estimator(Artifact(path, format_of(path), True, None), ())
    print(path.name, ",".join(str(int(v)) for v in np.asarray(estimator.predict(np.array({ROWS!r}))).ravel()))
"""


def test_every_formats_runtime_loads_and_predicts_in_the_image(images, container_factory, tmp_path, artifacts):
    """scikit-learn (joblib, skops), XGBoost (JSON, UBJSON, pickled wrapper), LightGBM (text, pickled wrapper) and
    ONNX: each read by the server's own loader as the pod's user on a read-only root, predicting what the library
    predicts here."""
    models = writable_dir(tmp_path / "models", 10001)
    for path in artifacts["root"].iterdir():
        (models / path.name).write_bytes(path.read_bytes())
    words = python_as_the_pod(container_factory, tmp_path, FORMATS_CHECK)
    assert dict(zip(words[::2], words[1::2], strict=True)) == artifacts["expected"]


VERSIONS_CHECK = """
from importlib.metadata import version
for name in ("scikit-learn", "xgboost-cpu", "lightgbm", "onnxruntime", "boto3", "botocore"):
    print(name, version(name))
import importlib.util
print("pip", importlib.util.find_spec("pip") is not None, "setuptools", importlib.util.find_spec("setuptools") is not None)
"""


def test_the_image_runs_the_pinned_libraries_and_no_installer(images, container_factory, tmp_path):
    words = python_as_the_pod(container_factory, tmp_path, VERSIONS_CHECK)
    found = dict(zip(words[::2], words[1::2], strict=True))
    pinned = {
        name: version(name) for name in ("scikit-learn", "xgboost-cpu", "lightgbm", "onnxruntime", "boto3", "botocore")
    }
    assert found == {**pinned, "pip": "False", "setuptools": "False"}


# No network: creating clients and presigning only load the service models and resolve the endpoint rules.
S3_ENDPOINTS_CHECK = """
import boto3
from botocore import UNSIGNED
from botocore.config import Config
session = boto3.session.Session(region_name="eu-west-1")
s3 = session.client("s3", config=Config(signature_version=UNSIGNED))
print(s3.meta.endpoint_url, s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "m"}))
sts = session.client("sts")
print(sts.meta.endpoint_url, sts.meta.service_model.operation_model("AssumeRoleWithWebIdentity").name)
"""


def test_s3_and_sts_clients_resolve_their_endpoints_with_the_trimmed_botocore(images, container_factory, tmp_path):
    """The same endpoints as the same boto3 with all of botocore's data, here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    here = subprocess.run(
        [sys.executable, "-c", S3_ENDPOINTS_CHECK], capture_output=True, text=True, env=env, check=True
    )
    assert python_as_the_pod(container_factory, tmp_path, S3_ENDPOINTS_CHECK) == here.stdout.split()
    assert len(here.stdout.split()) == 4


@pytest.fixture
def moto_endpoint(tmp_path):
    """moto in server mode on 127.0.0.1 (the container shares the host's network)."""
    with running_moto(tmp_path / "moto.log") as endpoint:
        yield endpoint


def test_fetches_from_s3_with_web_identity_credentials_in_the_image(
    images, container_factory, tmp_path, artifacts, moto_endpoint
):
    """The pod's fetch command against a real S3-compatible server, credentials from a web identity token (IRSA):
    botocore asks STS (AssumeRoleWithWebIdentity) for them, then signs the S3 request with them."""
    body = (artifacts["root"] / "linear.joblib").read_bytes()
    setup = boto3.client(
        "s3", endpoint_url=moto_endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    setup.create_bucket(Bucket="models")
    setup.put_object(Bucket="models", Key="team/linear.joblib", Body=body)
    pod = rendered_pod("s3://models/team/linear.joblib", hashlib.sha256(body).hexdigest())
    [fetch] = pod["initContainers"]
    uid = pod["securityContext"]["runAsUser"]
    volumes = {name: writable_dir(tmp_path / name, uid) for name in ("models", "tmp")}
    (volumes["tmp"] / "token").write_text("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtb2RlbHMifQ.c2lnbmF0dXJl")
    identity = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_REGION": "eu-west-1",
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/model-reader",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/tmp/token",
    }
    container = container_factory(SERVER_IMAGE)
    credentials = container.run(
        [
            "python3",
            "-c",
            "import boto3; c = boto3.session.Session().get_credentials(); print(c.method, c.get_frozen_credentials().access_key[:4])",
        ],
        env={**container_env(fetch), **identity},
        volumes=mounts(fetch, volumes),
        user=f"{uid}:{uid}",
        read_only=True,
    )
    assert credentials.returncode == 0, credentials.stderr
    assert credentials.stdout.split() == ["assume-role-with-web-identity", "ASIA"]
    fetched = container.run(
        fetch["command"] + fetch.get("args", []),
        env={**container_env(fetch), **identity},
        volumes=mounts(fetch, volumes),
        user=f"{uid}:{uid}",
        read_only=True,
    )
    assert fetched.returncode == 0, f"fetch exited {fetched.returncode}:\n{fetched.stdout}\n{fetched.stderr}"
    manifest = json.loads((volumes["models"] / "model.json").read_text())
    assert manifest["verified"] is True and (volumes["models"] / "model.joblib").read_bytes() == body
