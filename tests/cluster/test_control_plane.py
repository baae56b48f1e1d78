"""Acceptance tests of the local control plane itself: what every operator test relies on."""

import json
import ssl
import urllib.error
import urllib.request

import localcluster
import pytest
from kube_helpers import get_json, wait_for

pytestmark = pytest.mark.cluster


def api_get(cluster, path: str, token: str | None = None) -> int:
    context = ssl.create_default_context(cafile=str(cluster.path("pki/ca.crt")))
    request = urllib.request.Request(cluster.api_url + path)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    else:
        context.load_cert_chain(str(cluster.path("pki/admin.crt")), str(cluster.path("pki/admin.key")))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_api_server_is_ready_and_reports_the_built_version(cluster, kubectl):
    assert api_get(cluster, "/readyz") == 200
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == f"v{localcluster_version()}"
    assert version["clientVersion"]["gitVersion"] == f"v{localcluster_version()}"


def localcluster_version() -> str:
    for line in (localcluster.REPO_ROOT / "hack" / "versions.env").read_text().splitlines():
        if line.startswith("KUBERNETES_VERSION="):
            return line.split("=", 1)[1].strip()
    raise AssertionError("KUBERNETES_VERSION missing from hack/versions.env")


DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web"},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]},
        },
    },
}


def test_deployment_becomes_available_on_kwok_nodes_and_is_garbage_collected(kubectl, namespace):
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(DEPLOYMENT))
    wait_for(
        lambda: get_json(kubectl, "deployment", "web", "-n", namespace)["status"].get("availableReplicas") == 2,
        what="availableReplicas == 2",
    )
    pods = get_json(kubectl, "pods", "-n", namespace, "-l", "app=web")["items"]
    assert len(pods) == 2
    nodes = {n["metadata"]["name"]: n for n in get_json(kubectl, "nodes")["items"]}
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        node = nodes[pod["spec"]["nodeName"]]
        assert node["metadata"]["annotations"][localcluster.KWOK_NODE_ANNOTATION] == "fake"
        assert pod["status"]["podIP"]

    kubectl("delete", "deployment", "web", "-n", namespace)
    wait_for(
        lambda: not get_json(kubectl, "replicasets,pods", "-n", namespace)["items"],
        what="the ReplicaSet and its Pods to be garbage-collected",
    )


def test_namespace_deletion_completes(kubectl):
    kubectl("create", "namespace", "t-deleted-namespace")
    kubectl("create", "configmap", "c", "-n", "t-deleted-namespace", "--from-literal=a=b")
    kubectl("delete", "namespace", "t-deleted-namespace", "--timeout=60s")
    assert kubectl("get", "namespace", "t-deleted-namespace", check=False).returncode != 0


def test_rbac_denies_an_unbound_service_account_until_it_is_bound(cluster, kubectl, namespace):
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl("create", "token", "reader", "-n", namespace).stdout.strip()
    pods_path = f"/api/v1/namespaces/{namespace}/pods"
    assert api_get(cluster, pods_path, token) == 403

    kubectl("create", "role", "pod-reader", "-n", namespace, "--verb=list", "--resource=pods")
    kubectl(
        "create", "rolebinding", "reader", "-n", namespace, "--role=pod-reader", f"--serviceaccount={namespace}:reader"
    )
    wait_for(lambda: api_get(cluster, pods_path, token) == 200, timeout=15, what="the RoleBinding to take effect")
    assert api_get(cluster, f"/api/v1/namespaces/{namespace}/secrets", token) == 403


def pod(name: str, security: dict, container_security: dict) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "securityContext": security,
                "containers": [{"name": "c", "image": "example.invalid/c:1", "securityContext": container_security}],
            },
        }
    )


def test_pod_security_restricted_rejects_privileged_and_admits_compliant_pods(kubectl, namespace):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")

    rejected = kubectl(
        "apply", "-n", namespace, "-f", "-", check=False, input=pod("privileged", {}, {"privileged": True})
    )
    assert rejected.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in rejected.stderr
    assert "privileged" in rejected.stderr

    kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=pod(
            "compliant",
            {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "readOnlyRootFilesystem": True},
        ),
    )
    wait_for(
        lambda: get_json(kubectl, "pod", "compliant", "-n", namespace)["status"].get("phase") == "Running",
        what="the compliant pod to run",
    )
