"""The pod-template contract check: every sample's rendered pod runs for real.

For each sample MLModel, the Deployment the operator renders is run by hack/podrunner.py as local
processes — the `fetch` init container against a real artifact source (a local HTTP server, a moto
S3 server process, a directory standing in for the PVC), then the `server` container — and the
server must pass the probes the template declares and answer a prediction. A wrong port, env name,
probe path, volume or argument between the operator and the server fails here.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import joblib
import podrunner
import pytest
import yaml
from localcluster import free_port
from moto_process import running_moto
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlmodel_operator.render import render_children
from mlmodel_operator.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((REPO_ROOT / "deploy" / "samples").glob("*.yaml")) + sorted(
    (REPO_ROOT / "tests" / "operator" / "samples").glob("*.yaml")
)
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """The iris model in every format a sample may declare."""
    import skops.io

    directory = tmp_path_factory.mktemp("artifacts")
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    joblib.dump(model, directory / "model.joblib")
    (directory / "model.pkl").write_bytes((directory / "model.joblib").read_bytes())  # joblib files are pickles
    skops.io.dump(model, directory / "model.skops")
    return {"joblib": directory / "model.joblib", "pickle": directory / "model.pkl", "skops": directory / "model.skops"}


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    """A local HTTP server: the stand-in for https://models.example.com."""
    root = tmp_path_factory.mktemp("http-root")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(root), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(5)


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    """moto in server mode: a real S3-compatible process on loopback."""
    with running_moto(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        yield endpoint


def load_sample(path: Path) -> tuple[dict, dict[str, dict], dict[str, dict]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    mlmodel = next(d for d in docs if d["kind"] == "MLModel")
    secrets = {d["metadata"]["name"]: podrunner.Objects.secret_data(d) for d in docs if d["kind"] == "Secret"}
    config_maps = {d["metadata"]["name"]: dict(d.get("data") or {}) for d in docs if d["kind"] == "ConfigMap"}
    return mlmodel, secrets, config_maps


def referenced(pod_spec: dict) -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """(secret name, key) pairs, Secret names and ConfigMap names the pod refers to."""
    keys, secrets, config_maps = set(), set(), set()
    for container in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]:
        for var in container.get("env") or []:
            source = var.get("valueFrom") or {}
            if "secretKeyRef" in source and not source["secretKeyRef"].get("optional"):
                keys.add((source["secretKeyRef"]["name"], source["secretKeyRef"]["key"]))
            if "configMapKeyRef" in source:
                config_maps.add(source["configMapKeyRef"]["name"])
        for source in container.get("envFrom") or []:
            (config_maps if "configMapRef" in source else secrets).add(
                (source.get("configMapRef") or source["secretRef"])["name"]
            )
    for volume in pod_spec.get("volumes") or []:
        if "secret" in volume:
            for item in volume["secret"].get("items") or []:
                keys.add((volume["secret"]["secretName"], item["key"]))
    return keys, secrets, config_maps


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_the_rendered_pod_fetches_serves_and_predicts(sample, artifacts, http_root, s3_endpoint, tmp_path):
    mlmodel, secrets, config_maps = load_sample(sample)
    model = mlmodel["spec"]["model"]
    model_format = model.get("format") or {"pkl": "pickle", "pickle": "pickle", "skops": "skops"}.get(
        model["uri"].rsplit(".", 1)[-1], "joblib"
    )
    artifact = artifacts[model_format]
    model["sha256"] = hashlib.sha256(artifact.read_bytes()).hexdigest()
    claims: dict[str, Path] = {}
    scheme, _, rest = model["uri"].partition("://")
    if scheme in ("http", "https"):
        root, base_url = http_root
        name = f"{uuid.uuid4().hex}.{artifact.suffix.lstrip('.')}"
        (root / name).write_bytes(artifact.read_bytes())
        model["uri"] = f"{base_url}/{name}"
    elif scheme == "s3":
        import boto3

        bucket, key = rest.split("/", 1)
        credentials = secrets.setdefault(
            model["credentialsSecret"]["name"],
            {"AWS_ACCESS_KEY_ID": "placeholder", "AWS_SECRET_ACCESS_KEY": "placeholder"},
        )
        credentials["AWS_ENDPOINT_URL"] = s3_endpoint
        s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name=credentials.get("AWS_REGION", "us-east-1"),
            aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=artifact.read_bytes())
    elif scheme == "pvc":
        claim, path = rest.split("/", 1)
        claims[claim] = tmp_path / "claims" / claim
        (claims[claim] / path).parent.mkdir(parents=True)
        (claims[claim] / path).write_bytes(artifact.read_bytes())
    else:
        pytest.fail(f"{sample.name}: no local stand-in for the scheme {scheme!r}")

    mlmodel["metadata"].update(namespace="samples", uid=str(uuid.uuid4()), generation=1)
    deployment = next(o for o in render_children(mlmodel, Settings()) if o["kind"] == "Deployment")
    pod_spec = deployment["spec"]["template"]["spec"]

    keys, secret_names, config_map_names = referenced(pod_spec)
    for secret, key in keys:  # what the sample leaves to the user: placeholder values
        secrets.setdefault(secret, {}).setdefault(key, f"placeholder-{key}")
    for name in secret_names:
        secrets.setdefault(name, {"PLACEHOLDER": "1"})
    for name in config_map_names:
        config_maps.setdefault(name, {"PLACEHOLDER": "1"})

    objects = podrunner.Objects(config_maps=config_maps, secrets=secrets, claims=claims)
    pod = podrunner.run_pod(pod_spec, objects, tmp_path / "pod", free_port())
    try:
        headers = {"Content-Type": "application/json"}
        api_key = mlmodel["spec"].get("apiKeySecret")
        if api_key:
            key_value = secrets[api_key["name"]][api_key.get("key", "api-key")]
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(
                    urllib.request.Request(
                        f"{pod.base_url}/predict", json.dumps({"features": IRIS_ROW}).encode(), headers
                    )
                )
            assert refused.value.code == 401
            headers["X-API-Key"] = key_value
        request = urllib.request.Request(
            f"{pod.base_url}/predict", json.dumps({"features": IRIS_ROW}).encode(), headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["status"] == "success" and answer["prediction"] == 0
        with urllib.request.urlopen(f"{pod.base_url}/metrics", timeout=10) as response:
            assert b"mlmodel_model_info" in response.read()
    finally:
        pod.stop()
    assert "Traceback" not in pod.log()
