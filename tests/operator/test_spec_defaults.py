"""spec_with_defaults mirrors the CRD's schema defaults exactly (plus format derivation, which CEL cannot do)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from operator_cases import CASES, SAMPLES, apply_schema_defaults

from mlmodel_contract.artifacts import format_from_uri
from mlmodel_operator.defaults import pdb_enabled, spec_with_defaults
from mlmodel_operator.render import desired_kinds


@pytest.mark.parametrize("path", SAMPLES + CASES, ids=lambda p: p.stem)
def test_python_defaults_equal_schema_defaults(path: Path, openapi_schema) -> None:
    spec = yaml.safe_load(path.read_text())["spec"]
    by_schema = apply_schema_defaults(spec, openapi_schema["properties"]["spec"])
    by_python = spec_with_defaults(spec)
    if "format" not in spec["model"] and "format" in by_python["model"]:
        assert by_python["model"].pop("format") == format_from_uri(spec["model"]["uri"])
    assert by_python == by_schema


def test_defaults_are_idempotent_and_pure() -> None:
    spec = {"model": {"uri": "s3://b/k.pkl"}, "autoscaling": {}}
    once = spec_with_defaults(spec)
    assert spec == {"model": {"uri": "s3://b/k.pkl"}, "autoscaling": {}}
    assert spec_with_defaults(once) == once
    assert once["autoscaling"]["minReplicas"] == 3 and once["model"]["format"] == "pickle"


@pytest.mark.parametrize(
    ("uri", "fmt"),
    [
        ("https://h/m.joblib?X-Amz-Signature=abc", "joblib"),
        ("s3://b/m.PKL", "pickle"),
        ("pvc://c/dir/m.pickle", "pickle"),
        ("/opt/m.skops", "skops"),
        ("s3://b/latest", None),
    ],
)
def test_format_from_uri(uri: str, fmt: str) -> None:
    assert format_from_uri(uri) == fmt


@pytest.mark.parametrize(
    ("spec", "kinds"),
    [
        ({}, {"Deployment", "Service", "NetworkPolicy"}),
        ({"replicas": 2}, {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"}),
        (
            {"autoscaling": {}},
            {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"},
        ),
        ({"autoscaling": {"enabled": False}, "networkPolicy": {"enabled": False}}, {"Deployment", "Service"}),
        ({"replicas": 5, "podDisruptionBudget": {"enabled": False}}, {"Deployment", "Service", "NetworkPolicy"}),
        ({"podDisruptionBudget": {"enabled": True}}, {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"}),
        ({"ingress": {"enabled": True, "host": "h"}}, {"Deployment", "Service", "NetworkPolicy", "Ingress"}),
        ({"ingress": {"enabled": False, "host": "h"}}, {"Deployment", "Service", "NetworkPolicy"}),
    ],
)
def test_desired_kinds(spec: dict, kinds: set[str]) -> None:
    spec = {"model": {"uri": "/m.skops"}, **spec}
    assert desired_kinds(spec) == kinds
    assert pdb_enabled(spec_with_defaults(spec)) == ("PodDisruptionBudget" in kinds)
