"""deploy/samples/: user-facing MLModel examples; each one is accepted by the real API server (schema, CEL rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging_support import REPO, documents

SAMPLES = sorted((REPO / "deploy" / "samples").glob("*.yaml"))


def test_the_four_documented_samples_exist():
    assert {p.name for p in SAMPLES} == {
        "iris.yaml",
        "s3-credentials.yaml",
        "autoscaled-ingress-tls.yaml",
        "api-key.yaml",
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_is_documented_and_namespace_free(sample: Path):
    text = sample.read_text()
    assert text.startswith("#"), "a sample starts with a comment saying what it shows and how to apply it"
    assert "kubectl apply" in text
    for doc in documents(text):
        assert "namespace" not in doc["metadata"], "samples are applied with -n, so they name no namespace"
        if doc["kind"] == "Secret":
            for key, value in doc["stringData"].items():
                if re.search(r"key|secret|token", key, re.IGNORECASE):
                    assert value.startswith("REPLACE-"), f"{sample.name}: {key} must be a placeholder"


def test_samples_cover_what_the_docs_promise():
    models = {
        doc["metadata"]["name"]: doc["spec"]
        for p in SAMPLES
        for doc in documents(p.read_text())
        if doc["kind"] == "MLModel"
    }
    secrets = {doc["metadata"]["name"] for p in SAMPLES for doc in documents(p.read_text()) if doc["kind"] == "Secret"}
    assert models["iris"]["model"]["uri"].startswith("https://") and len(models["iris"]["model"]["sha256"]) == 64
    assert models["churn"]["model"]["uri"].startswith("s3://")
    assert models["churn"]["model"]["credentialsSecret"]["name"] in secrets
    fraud = models["fraud"]
    assert fraud["autoscaling"]["maxReplicas"] > fraud["autoscaling"]["minReplicas"]
    assert fraud["ingress"]["tls"]["secretName"] and fraud["ingress"]["rateLimit"]["requestsPerSecond"] > 0
    assert models["pricing"]["apiKeySecret"]["name"] in secrets


@pytest.mark.cluster
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_passes_server_side_dry_run(kubectl, namespace, mlmodel_crd, sample: Path):
    result = kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(sample), check=False)
    assert result.returncode == 0, f"{sample.name} rejected by the API server:\n{result.stderr}"
    assert "(server dry run)" in result.stdout
