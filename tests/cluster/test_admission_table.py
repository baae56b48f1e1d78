"""The table of values Kubernetes refuses in a child, field by field: for each, the API server refuses the
rendered child itself (a server-side dry run), and refuses the MLModel carrying the value, naming the field,
so that nothing is created. A new spec field that reaches a child gets a row here. (Values the API server
accepts in the child but that can never run, e.g. an image reference the kubelet cannot parse, are
tests/operator/invalid/ cases.)"""

from __future__ import annotations

import json

import pytest
from kube_helpers import OPERATOR_TEST_IMAGE, get_json

from mlmodel_operator.render import render_child
from mlmodel_operator.settings import Settings

pytestmark = pytest.mark.cluster

MODEL = {"uri": "https://models.example.com/iris.joblib", "sha256": "a" * 64}
TERM = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
POD_TERM = "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
PEER = "spec.networkPolicy.allowFrom[0]"


def node_terms(*requirements: dict, fields: bool = False) -> dict:
    key = "matchFields" if fields else "matchExpressions"
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{key: list(requirements)}]}
        }
    }


def pod_term(**term) -> dict:
    return {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname", **term}]
        }
    }


def resources(requests: dict, limits: dict | None = None) -> dict:
    return {"requests": requests, "limits": limits or {"cpu": "1", "memory": "1Gi"}}


def big_annotations() -> dict:
    """64 annotations of 4 KiB: each within its own bound, more than Kubernetes' 256 KiB together."""
    return {f"example.com/blob-{i:02d}": "x" * 4096 for i in range(64)}


# (id, spec changes, the child kind Kubernetes refuses, the field the CRD's error names)
REFUSED = [
    (
        "requests-negative",
        {"resources": resources({"cpu": "-1", "memory": "256Mi"})},
        "Deployment",
        "spec.resources.requests",
    ),
    (
        "limits-negative",
        {"resources": resources({"cpu": "1"}, {"cpu": "1", "memory": "-1Gi"})},
        "Deployment",
        "spec.resources.limits",
    ),
    (
        "request-above-limit",
        {"resources": resources({"cpu": "2", "memory": "256Mi"})},
        "Deployment",
        "spec.resources.requests",
    ),
    (
        "resource-name-not-standard",
        {"resources": resources({"cpu": "1"}, {"cpu": "1", "gpu": 1})},
        "Deployment",
        "spec.resources.limits",
    ),
    (
        "extended-resource-fraction",
        {"resources": resources({"cpu": "1"}, {"cpu": "1", "example.com/gpu": "500m"})},
        "Deployment",
        "spec.resources.limits",
    ),
    (
        "hugepages-overcommitted",
        {"resources": resources({"cpu": "1", "hugepages-2Mi": "2Mi"})},
        "Deployment",
        "spec.resources.requests",
    ),
    (
        "rollout-unavailable-over-100-percent",
        {"rollout": {"maxUnavailable": "150%"}},
        "Deployment",
        "spec.rollout.maxUnavailable",
    ),
    ("rollout-percent-without-sign", {"rollout": {"maxSurge": "5"}}, "Deployment", "spec.rollout.maxSurge"),
    (
        "pdb-over-100-percent",
        {"podDisruptionBudget": {"enabled": True, "minAvailable": "101%"}},
        "PodDisruptionBudget",
        "spec.podDisruptionBudget.minAvailable",
    ),
    (
        "pdb-percent-without-sign",
        {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "1"}},
        "PodDisruptionBudget",
        "spec.podDisruptionBudget.maxUnavailable",
    ),
    ("pod-label-key", {"podLabels": {"bad key": "x"}}, "Deployment", "spec.podLabels"),
    ("pod-label-key-name-too-long", {"podLabels": {"example.com/" + "n" * 64: "x"}}, "Deployment", "spec.podLabels"),
    ("pod-label-value", {"podLabels": {"team": "has spaces"}}, "Deployment", "spec.podLabels.team"),
    ("pod-annotation-key", {"podAnnotations": {"bad key": "x"}}, "Deployment", "spec.podAnnotations"),
    ("pod-annotations-over-256-kib", {"podAnnotations": big_annotations()}, "Deployment", "spec.podAnnotations"),
    ("node-selector-key", {"nodeSelector": {"a/b/c": "x"}}, "Deployment", "spec.nodeSelector"),
    ("node-selector-value", {"nodeSelector": {"disk": "ssd fast"}}, "Deployment", "spec.nodeSelector.disk"),
    (
        "toleration-key",
        {"tolerations": [{"key": "bad key", "operator": "Exists"}]},
        "Deployment",
        "spec.tolerations[0].key",
    ),
    (
        "toleration-value",
        {"tolerations": [{"key": "k", "value": "has space"}]},
        "Deployment",
        "spec.tolerations[0].value",
    ),
    (
        "toleration-empty-key-equal",
        {"tolerations": [{"operator": "Equal", "value": "x"}]},
        "Deployment",
        "spec.tolerations[0].operator",
    ),
    (
        "toleration-seconds-without-noexecute",
        {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]},
        "Deployment",
        "spec.tolerations[0].tolerationSeconds",
    ),
    (
        "node-affinity-in-without-values",
        {"affinity": node_terms({"key": "zone", "operator": "In"})},
        "Deployment",
        f"{TERM}[0].matchExpressions[0].values",
    ),
    (
        "node-affinity-key",
        {"affinity": node_terms({"key": "bad key", "operator": "Exists"})},
        "Deployment",
        f"{TERM}[0].matchExpressions[0].key",
    ),
    (
        "node-affinity-field-key",
        {"affinity": node_terms({"key": "metadata.labels", "operator": "In", "values": ["n1"]}, fields=True)},
        "Deployment",
        f"{TERM}[0].matchFields[0].key",
    ),
    (
        "node-affinity-no-terms",
        {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}},
        "Deployment",
        TERM,
    ),
    (
        "pod-affinity-topology-key-empty",
        {"affinity": pod_term(topologyKey="")},
        "Deployment",
        f"{POD_TERM}.topologyKey",
    ),
    (
        "pod-affinity-namespace",
        {"affinity": pod_term(namespaces=["Bad_NS"])},
        "Deployment",
        f"{POD_TERM}.namespaces[0]",
    ),
    (
        "pod-affinity-selector-value",
        {"affinity": pod_term(labelSelector={"matchLabels": {"app": "a b"}})},
        "Deployment",
        f"{POD_TERM}.labelSelector.matchLabels.app",
    ),
    (
        "pod-affinity-exists-with-values",
        {
            "affinity": pod_term(
                labelSelector={"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["x"]}]}
            )
        },
        "Deployment",
        f"{POD_TERM}.labelSelector.matchExpressions[0].values",
    ),
    (
        "env-field-path",
        {"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.containers"}}}]},
        "Deployment",
        "spec.env[0].valueFrom.fieldRef.fieldPath",
    ),
    (
        "env-secret-key-dots",
        {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": ".."}}}]},
        "Deployment",
        "spec.env[0].valueFrom.secretKeyRef.key",
    ),
    (
        "env-config-map-key-dots",
        {"env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "..data"}}}]},
        "Deployment",
        "spec.env[0].valueFrom.configMapKeyRef.key",
    ),
    (
        "peer-cidr-prefix",
        {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}},
        "NetworkPolicy",
        f"{PEER}.ipBlock.cidr",
    ),
    (
        "peer-cidr-address",
        {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.256/24"}}]}},
        "NetworkPolicy",
        f"{PEER}.ipBlock.cidr",
    ),
    (
        "peer-cidr-bits-beyond-prefix",
        {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.1.2.3/8"}}]}},
        "NetworkPolicy",
        f"{PEER}.ipBlock.cidr",
    ),
    (
        "peer-cidr-leading-zeros",
        {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "010.0.0.0/8"}}]}},
        "NetworkPolicy",
        f"{PEER}.ipBlock.cidr",
    ),
    (
        "peer-except-outside-cidr",
        {"networkPolicy": {"allowFrom": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["192.168.0.0/16"]}}]}},
        "NetworkPolicy",
        f"{PEER}.ipBlock.except",
    ),
    (
        "peer-selector-key",
        {"networkPolicy": {"allowFrom": [{"podSelector": {"matchLabels": {"bad key": "x"}}}]}},
        "NetworkPolicy",
        f"{PEER}.podSelector.matchLabels",
    ),
    (
        "peer-namespace-selector-in-without-values",
        {
            "networkPolicy": {
                "allowFrom": [{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}}]
            }
        },
        "NetworkPolicy",
        f"{PEER}.namespaceSelector.matchExpressions[0].values",
    ),
    (
        "egress-cidr",
        {"networkPolicy": {"additionalEgress": [{"cidr": "300.0.0.0/8"}]}},
        "NetworkPolicy",
        "spec.networkPolicy.additionalEgress[0].cidr",
    ),
    ("ingress-host-ip", {"ingress": {"enabled": True, "host": "10.0.0.1"}}, "Ingress", "spec.ingress.host"),
    (
        "ingress-path-double-slash",
        {"ingress": {"enabled": True, "host": "iris.example.com", "path": "/a//b"}},
        "Ingress",
        "spec.ingress.path",
    ),
    (
        "ingress-annotation-key",
        {"ingress": {"enabled": True, "host": "iris.example.com", "annotations": {"bad key": "x"}}},
        "Ingress",
        "spec.ingress.annotations",
    ),
    (
        "ingress-annotations-over-256-kib",
        {"ingress": {"enabled": True, "host": "iris.example.com", "annotations": big_annotations()}},
        "Ingress",
        "spec.ingress.annotations",
    ),
]


def mlmodel(namespace: str, **spec) -> dict:
    return {
        "apiVersion": "serving.mlops.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": {"model": MODEL, **spec},
    }


def dry_run_child(kubectl, namespace: str, kind: str, spec: dict):
    child = render_child(kind, mlmodel(namespace, **spec), Settings(default_image=OPERATOR_TEST_IMAGE))
    return kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=mlmodel-operator",
        "-f",
        "-",
        input=json.dumps(child),
        check=False,
    )


def test_the_children_of_a_valid_spec_pass_the_dry_run(kubectl, namespace, crd):
    """The table's baseline: what makes a row's child fail is the row's value, nothing else."""
    for kind, spec in [
        ("Deployment", {}),
        ("PodDisruptionBudget", {}),
        ("NetworkPolicy", {}),
        ("Ingress", {"ingress": {"enabled": True, "host": "iris.example.com"}}),
    ]:
        result = dry_run_child(kubectl, namespace, kind, spec)
        assert result.returncode == 0, f"{kind}: {result.stderr}"


# Values close to the rows above that Kubernetes accepts: the CRD must accept them too (no rule stricter than
# the children need).
ACCEPTED = {
    "image": "registry.example.com:5000/team/mlmodel-server:1.2@sha256:" + "0123456789abcdef" * 4,
    "resources": {
        "requests": {"cpu": "100m", "memory": "128Mi", "example.com/gpu": 1},
        "limits": {"cpu": "1", "memory": "1Gi", "example.com/gpu": 1},
    },
    "podLabels": {"team": "ml", "example.com/tier": "gold", "empty": ""},
    "podAnnotations": {"Example.COM/Note": "annotation keys are checked in lowercase"},
    "nodeSelector": {"kubernetes.io/arch": "amd64"},
    "tolerations": [
        {"operator": "Exists"},
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute", "tolerationSeconds": 30},
    ],
    "env": [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app.kubernetes.io/name']"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ],
    "rollout": {"maxSurge": "200%", "maxUnavailable": "10%"},
    "podDisruptionBudget": {"enabled": True, "minAvailable": "100%"},
    "networkPolicy": {
        "allowFrom": [
            {"ipBlock": {"cidr": "2001:DB8::/32", "except": ["2001:db8:1::/48"]}},
            {"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Exists"}]}},
        ],
        "additionalEgress": [{"cidr": "10.96.0.0/12", "ports": [9000]}],
    },
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["4"]}],
                        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-1"]}],
                    }
                ]
            }
        }
    },
    "ingress": {
        "enabled": True,
        "host": "*.example.com",
        "path": "/v1/models",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "10m"},
    },
}


def test_values_at_the_edges_that_kubernetes_accepts_are_accepted(kubectl, namespace, crd):
    for kind in ("Deployment", "PodDisruptionBudget", "NetworkPolicy", "Ingress"):
        child = dry_run_child(kubectl, namespace, kind, ACCEPTED)
        assert child.returncode == 0, f"{kind}: {child.stderr}"
    obj = mlmodel(namespace, **ACCEPTED)
    del obj["metadata"]["uid"]
    result = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("changes, kind, field", [pytest.param(*row[1:], id=row[0]) for row in REFUSED])
def test_a_value_kubernetes_refuses_in_a_child_is_refused_in_the_mlmodel(kubectl, namespace, crd, changes, kind, field):
    child = dry_run_child(kubectl, namespace, kind, changes)
    assert child.returncode != 0, f"Kubernetes accepts the rendered {kind}: not a row for this table"

    obj = mlmodel(namespace, **changes)
    del obj["metadata"]["uid"]
    # Server-side: a client-side apply would copy the object into an annotation, itself too large for the biggest rows.
    result = kubectl("apply", "--server-side", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"the MLModel was accepted; the {kind} would be refused with: {child.stderr}"
    assert field in result.stderr, f"the error does not name {field}: {result.stderr}"
    assert not get_json(kubectl, "mlmodels", "-n", namespace)["items"]
