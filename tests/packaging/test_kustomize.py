"""deploy/base and deploy/overlays: what they render offline, and a real install into the local cluster."""

from __future__ import annotations

import os
import subprocess
from unittest import mock

import localcluster
import pytest
import yaml
from packaging_support import CRD_PATH, REPO, assert_restricted, deployment_available, documents, one, run, wait_for

from mlmodel_operator.cli import parse_args
from mlmodel_operator.settings import Settings

BASE = REPO / "deploy" / "base"
OVERLAYS = REPO / "deploy" / "overlays"
OPERATOR_NAMESPACE = "mlmodel-system"
LIVENESS = "http://0.0.0.0:8080/healthz"


def render(kubectl_bin: str, path) -> list[dict]:
    return documents(run(kubectl_bin, "kustomize", str(path)))


def operator_container(docs: list[dict]) -> dict:
    deployment = one(docs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", [])}


def test_base_renders_the_one_generated_crd(kubectl_bin):
    assert "../../crds" in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]
    (crd,) = [doc for doc in render(kubectl_bin, BASE) if doc["kind"] == "CustomResourceDefinition"]
    assert crd == yaml.safe_load(CRD_PATH.read_text())


def test_the_crd_is_committed_once():
    """Every install path uses crds/'s file: the chart links to it, kustomize includes its directory."""
    tracked = subprocess.run(
        ["git", "ls-files", "-s", "--", f"*{CRD_PATH.name}"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    modes = {line.split("\t")[1]: line.split()[0] for line in tracked}
    assert modes == {
        str(CRD_PATH.relative_to(REPO)): "100644",
        f"deploy/helm/mlmodel-operator/crds/{CRD_PATH.name}": "120000",  # a symbolic link
    }


def test_base_uses_the_shared_rbac_and_a_restricted_namespace(kubectl_bin):
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    assert "../rbac" in kustomization["resources"]
    docs = render(kubectl_bin, BASE)
    namespace = one(docs, "Namespace")
    assert namespace["metadata"]["name"] == OPERATOR_NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert one(docs, "CustomResourceDefinition")["metadata"]["name"] == "mlmodels.serving.mlops.dev"
    rbac = render(kubectl_bin, REPO / "deploy" / "rbac")
    for kind in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert one(docs, kind) == one(rbac, kind)
    assert {
        doc.get("metadata", {}).get("namespace") for doc in docs if doc["kind"] in ("Deployment", "ServiceAccount")
    } == {OPERATOR_NAMESPACE}


def test_base_operator_deployment(kubectl_bin):
    docs = render(kubectl_bin, BASE)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = operator_container(docs)
    assert spec["replicas"] == 2  # one leader, one standby
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"] == {"minAvailable": 1, "selector": spec["selector"]}
    assert pod["serviceAccountName"] == one(docs, "ServiceAccount")["metadata"]["name"]
    assert pod["automountServiceAccountToken"] is True
    assert container["command"] + container["args"] == [
        "mlmodel-operator",
        "-A",
        "--liveness",
        LIVENESS,
        "--metrics-address",
        "0.0.0.0:8081",
    ]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"} and ports["metrics"] == 8081
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}[container["livenessProbe"]["httpGet"]["port"]]
    assert port == 8080
    assert set(container["resources"]) == {"requests", "limits"}
    # The same server image the operator falls back to without the variable.
    assert env_of(container)["MLMODEL_OPERATOR_DEFAULT_IMAGE"] == Settings().default_image
    assert_restricted(pod, container)


def test_namespaced_overlay_watches_only_the_listed_namespaces(kubectl_bin):
    container = operator_container(render(kubectl_bin, OVERLAYS / "namespaced"))
    assert "-A" not in container["args"] and "--all-namespaces" not in container["args"]
    env = env_of(container)
    # The operator's own argument parsing, with the environment the overlay gives the pod.
    with mock.patch.dict(os.environ, {"MLMODEL_OPERATOR_NAMESPACES": env["MLMODEL_OPERATOR_NAMESPACES"]}):
        args = parse_args(container["args"])
    assert args.namespaces == ["models", "models-staging"]
    assert args.liveness == LIVENESS


def test_dev_overlay_uses_local_images(kubectl_bin):
    container = operator_container(render(kubectl_bin, OVERLAYS / "dev"))
    assert container["image"] == "mlmodel-operator:dev"
    assert container["imagePullPolicy"] == "Never"
    assert env_of(container)["MLMODEL_OPERATOR_DEFAULT_IMAGE"] == "mlmodel-server:dev"


def existing(kubectl, docs: list[dict]) -> set[tuple[str, str]]:
    """Which of these objects already exist (installed by someone else: left alone at cleanup)."""
    found = set()
    for doc in docs:
        args = ["get", doc["kind"], doc["metadata"]["name"], "-o", "name"]
        if doc["metadata"].get("namespace"):
            args += ["-n", doc["metadata"]["namespace"]]
        if kubectl(*args, check=False).returncode == 0:
            found.add((doc["kind"], doc["metadata"]["name"]))
    return found


def delete_created(kubectl, docs: list[dict], before: set[tuple[str, str]]) -> None:
    # Namespaced objects first, the Namespace and the CRD last.
    order = {
        "Deployment": 0,
        "ServiceAccount": 1,
        "ClusterRoleBinding": 2,
        "ClusterRole": 3,
        "CustomResourceDefinition": 4,
        "Namespace": 5,
    }
    for doc in sorted(docs, key=lambda d: order.get(d["kind"], 0)):
        if (doc["kind"], doc["metadata"]["name"]) in before:
            continue
        args = ["delete", doc["kind"], doc["metadata"]["name"], "--ignore-not-found", "--wait=false"]
        if doc["metadata"].get("namespace"):
            args += ["-n", doc["metadata"]["namespace"]]
        kubectl(*args, check=False)


@pytest.mark.cluster
def test_apply_base_installs_the_crd_and_an_available_operator(cluster, kubectl, kubectl_bin, mlmodel_crd):
    """The CRD is already there (installed once per session, shared with the other tests); applying it again
    must still succeed, and it is not deleted here."""
    docs = render(kubectl_bin, BASE)
    # the shipped image is not on the real node: the operator pod runs on the kwok node here
    localcluster.mark_kwok_namespace(cluster, OPERATOR_NAMESPACE)
    before = existing(kubectl, docs)
    try:
        kubectl("apply", "-k", str(BASE))
        kubectl("wait", "--for=condition=Established", "crd/mlmodels.serving.mlops.dev", "--timeout=60s")
        # kwok marks the scheduled pod Running and Ready, so the Deployment becomes available; the pod was
        # admitted by the restricted Pod Security level of its namespace on the way.
        wait_for(
            lambda: deployment_available(kubectl, OPERATOR_NAMESPACE, "mlmodel-operator"),
            90,
            "the operator Deployment to have availableReplicas == 2",
        )
        # The namespaced overlay's Roles live in the watched namespaces, which the user creates first.
        watched = [
            ns for ns in ("models", "models-staging") if kubectl("get", "namespace", ns, check=False).returncode != 0
        ]
        for ns in watched:
            kubectl("create", "namespace", ns)
        for overlay in ("namespaced", "dev"):
            kubectl("apply", "--dry-run=server", "-k", str(OVERLAYS / overlay))
    finally:
        for ns in locals().get("watched", []):
            kubectl("delete", "namespace", ns, "--wait=false", check=False)
        delete_created(kubectl, docs, before)


def test_namespaced_overlay_grants_writes_only_in_the_watched_namespaces(kubectl_bin):
    docs = render(kubectl_bin, OVERLAYS / "namespaced")
    cluster_role = one(docs, "ClusterRole")
    assert {verb for rule in cluster_role["rules"] for verb in rule["verbs"]} <= {"get", "list", "watch"}
    shipped = yaml.safe_load((REPO / "deploy" / "rbac" / "cluster_role.yaml").read_text())["rules"]
    discovery = [rule for rule in shipped if set(rule["resources"]) & {"namespaces", "customresourcedefinitions"}]
    assert cluster_role["rules"] == discovery
    watched = env_of(operator_container(docs))["MLMODEL_OPERATOR_NAMESPACES"].split(",")
    roles = [doc for doc in docs if doc["kind"] == "Role" and doc["metadata"]["name"] == "mlmodel-operator"]
    assert sorted(role["metadata"]["namespace"] for role in roles) == sorted(watched)
    for role in roles:
        assert role["rules"] == [rule for rule in shipped if rule not in discovery]
    bindings = [doc for doc in docs if doc["kind"] == "RoleBinding" and doc["metadata"]["name"] == "mlmodel-operator"]
    assert sorted(binding["metadata"]["namespace"] for binding in bindings) == sorted(watched)
    for binding in bindings:
        assert binding["roleRef"]["name"] == "mlmodel-operator"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mlmodel-operator", "namespace": OPERATOR_NAMESPACE}
        ]
