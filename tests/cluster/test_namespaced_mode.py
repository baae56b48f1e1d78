"""The namespaced install mode (deploy/overlays/namespaced): the operator, running under exactly the rules
that overlay ships (bound to a ServiceAccount of this test), serves its namespace and may write nowhere else."""

from __future__ import annotations

import json

import localcluster
import operator_env
import pytest
import yaml
from kube_helpers import wait_for
from test_operator import apply, mlmodel, ready

pytestmark = pytest.mark.cluster

OVERLAY = localcluster.REPO_ROOT / "deploy" / "overlays" / "namespaced"
LEASE_RULES = yaml.safe_load((localcluster.REPO_ROOT / "deploy" / "rbac" / "leader_election_role.yaml").read_text())[
    "rules"
]


def rendered(kubectl) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(OVERLAY)).stdout) if doc]


def test_the_operator_serves_its_namespace_and_may_write_nowhere_else(
    cluster, kubectl, namespace, crd, start_operator, tmp_path
):
    docs = rendered(kubectl)
    cluster_rules = next(d for d in docs if d["kind"] == "ClusterRole")["rules"]
    namespace_rules = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "mlmodel-operator")[
        "rules"
    ]
    account, cluster_role = "nsmode", f"nsmode-{namespace}"
    subject = [{"kind": "ServiceAccount", "name": account, "namespace": namespace}]
    objects = [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": cluster_role},
            "rules": cluster_rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": cluster_role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_role},
            "subjects": subject,
        },
    ]
    for name, rules in (
        ("operator", namespace_rules),
        (
            "leader-election",
            [
                dict(rule, resourceNames=["mlmodel-operator"]) if "resourceNames" in rule else rule
                for rule in LEASE_RULES
            ],
        ),
    ):
        objects += [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": subject,
            },
        ]
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    try:
        kubeconfig = operator_env.write_operator_kubeconfig(
            cluster, tmp_path / "nsmode.kubeconfig", service_account=account, namespace=namespace
        )
        operator = start_operator("--lease-namespace", namespace, kubeconfig=kubeconfig)
        apply(kubectl, namespace, mlmodel())
        wait_for(lambda: ready(kubectl, namespace), what="Ready=True under the namespaced RBAC")
        assert "Forbidden" not in operator.log() and "forbidden" not in operator.log(), operator.log()[-4000:]

        def can(*args: str) -> bool:
            result = kubectl("auth", "can-i", *args, f"--as=system:serviceaccount:{namespace}:{account}", check=False)
            return result.stdout.strip() == "yes"

        status = ("mlmodels", "--subresource=status")
        assert can("create", "deployments", "-n", namespace) and can("patch", *status, "-n", namespace)
        for verb, *resource in [
            ("create", "deployments"),
            ("patch", "services"),
            ("delete", "networkpolicies"),
            ("patch", *status),
            ("create", "events"),
            ("get", "secrets"),
        ]:
            assert not can(verb, *resource, "-n", "default"), f"{verb} {resource} in another namespace"
            assert not can(verb, *resource, "--all-namespaces"), f"{verb} {resource} cluster-wide"
        for verb, resource in [
            ("create", "clusterroles"),
            ("patch", "nodes"),
            ("create", "namespaces"),
            ("patch", "customresourcedefinitions"),
        ]:
            assert not can(verb, resource), f"{verb} {resource}"
        # Every cluster-wide rule only reads.
        assert {verb for rule in cluster_rules for verb in rule["verbs"]} <= {"get", "list", "watch"}
    finally:
        kubectl("delete", "clusterrolebinding,clusterrole", cluster_role, "--ignore-not-found", check=False)
