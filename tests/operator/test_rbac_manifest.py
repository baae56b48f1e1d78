"""The operator's RBAC: least privilege, and never any access to Secrets or ConfigMaps."""

from __future__ import annotations

from typing import Any

import yaml
from operator_cases import REPO

RBAC = REPO / "deploy" / "rbac"


def cluster_role() -> dict[str, Any]:
    return yaml.safe_load((RBAC / "cluster_role.yaml").read_text())


def verbs_for(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in cluster_role()["rules"]:
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_no_secret_or_configmap_access_and_no_wildcards() -> None:
    for rule in cluster_role()["rules"]:
        assert not {"secrets", "configmaps", "*"} & set(rule["resources"])
        assert "*" not in rule["verbs"] and "*" not in rule["apiGroups"]


def test_verbs() -> None:
    assert verbs_for("serving.mlops.dev", "mlmodels") == {"get", "list", "watch"}
    assert verbs_for("serving.mlops.dev", "mlmodels/status") == {"patch"}
    children = {"create", "delete", "get", "list", "patch", "watch"}
    for group, resource in [
        ("apps", "deployments"),
        ("", "services"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
    ]:
        assert verbs_for(group, resource) == children, resource
    assert verbs_for("", "pods") == verbs_for("apps", "replicasets") == {"get", "list", "watch"}
    assert verbs_for("", "events") == verbs_for("events.k8s.io", "events") == {"create", "patch"}
    assert verbs_for("", "namespaces") == {"list", "watch"}
    assert verbs_for("apiextensions.k8s.io", "customresourcedefinitions") == {"list", "watch"}


def test_binding_and_kustomization() -> None:
    binding = yaml.safe_load((RBAC / "cluster_role_binding.yaml").read_text())
    assert binding["roleRef"]["name"] == cluster_role()["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "mlmodel-operator", "namespace": "mlmodel-system"}
    ]
    kustomization = yaml.safe_load((RBAC / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in RBAC.glob("*.yaml") if p.name != "kustomization.yaml"
    )
