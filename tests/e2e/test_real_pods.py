"""End to end on the real node: the operator's pods run in containerd, the kubelet's probes decide
readiness, kube-proxy serves the Service, CoreDNS its name and kube-router enforces the NetworkPolicy."""

from __future__ import annotations

import errno
import json
import threading
import urllib.error
import urllib.request

import node_workloads
import pytest
import realnode
from e2e_helpers import (
    IRIS_ROW,
    READY_TIMEOUT,
    ClientPod,
    apply,
    get,
    mlmodel,
    model_pods,
    ready_condition,
    wait_for,
    wait_ready,
)

from mlmodel_operator.settings import Settings

pytestmark = pytest.mark.cluster


def post_from_host(url: str, body: dict) -> dict:
    """POST through the Service. kube-proxy programs a ready pod's endpoint a moment after the pod is Ready (on
    a loaded machine, seconds): until then the ClusterIP refuses connections or has no route, so those two are
    retried for 30 s."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})

    def answer() -> dict | None:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.URLError as error:
            if getattr(error.reason, "errno", None) in (errno.ECONNREFUSED, errno.EHOSTUNREACH):
                return None
            raise

    return wait_for(answer, 30, f"{url} to accept connections (kube-proxy's rules for the Service)")


def test_sample_serves_through_its_service_from_a_restricted_read_only_pod(
    kubectl, e2e_operator, artifact_server, client_pod, artifacts
):
    namespace = artifact_server
    apply(kubectl, mlmodel(namespace, artifacts["v1"]))
    wait_ready(kubectl, namespace)

    (pod,) = [p for p in model_pods(kubectl, namespace) if p["status"]["phase"] == "Running"]
    assert pod["spec"]["nodeName"] == realnode.NODE_NAME, "the model pod must run on the real node"
    fetch_status = pod["status"]["initContainerStatuses"][0]["state"]["terminated"]
    assert fetch_status["exitCode"] == 0, fetch_status
    # the container really is non-root with a read-only root filesystem
    probe = (
        "import os\ntry:\n    open('/probe', 'w')\n    print(os.getuid(), 'writable')\n"
        "except OSError as e:\n    print(os.getuid(), e.strerror)"
    )
    out = kubectl(
        "exec", "-n", namespace, pod["metadata"]["name"], "-c", "server", "--", "python", "-c", probe
    ).stdout.split(None, 1)
    assert out == ["10001", "Read-only file system\n"], out
    logs = kubectl("logs", "-n", namespace, pod["metadata"]["name"], "-c", "server").stdout
    assert "iris" in logs, f"kubectl logs (API server → kubelet) gave: {logs[-2000:]!r}"

    # from the host, through the ClusterIP (kube-proxy)
    cluster_ip = get(kubectl, "service", "iris", "-n", namespace)["spec"]["clusterIP"]
    classic = post_from_host(f"http://{cluster_ip}/predict", {"features": IRIS_ROW})
    assert classic["status"] == "success" and classic["prediction"] == 0, classic
    # from a pod, by DNS name (CoreDNS), classic and V2
    dns = f"http://iris.{namespace}.svc.cluster.local"
    answer = client_pod.post(f"{dns}/predict", {"features": IRIS_ROW})
    assert answer["status"] == 200 and json.loads(answer["body"])["prediction"] == 0, answer
    v2 = client_pod.post(
        f"{dns}/v2/models/iris/infer",
        {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]},
    )
    assert v2["status"] == 200 and json.loads(v2["body"])["outputs"][0]["data"] == [0], v2


def _fault_models(namespace: str, artifacts) -> dict[str, tuple[dict, str, dict]]:
    """fault -> (spec.model, the Ready condition's reason, the rest of the spec). An unverified pickle never gets
    this far: the API server rejects a pickle-based artifact without sha256 (tests/cluster covers that)."""

    def uri(name: str) -> str:
        return node_workloads.artifact_uri(namespace, name)

    return {
        "wrong digest": (
            {"uri": uri(artifacts["v2"].name), "sha256": artifacts["v1"].sha256},
            "ArtifactDigestMismatch",
            {},
        ),
        "404": ({"uri": uri("missing.joblib"), "sha256": artifacts["v1"].sha256}, "ArtifactNotFound", {}),
        "not a model": (
            {"uri": uri(artifacts["garbage"].name), "sha256": artifacts["garbage"].sha256},
            "ModelLoadFailed",
            {},
        ),
        "scikit-learn version": (
            {"uri": uri(artifacts["old-sklearn"].name), "sha256": artifacts["old-sklearn"].sha256},
            "SklearnVersionMismatch",
            {"server": {"sklearnVersionPolicy": "error"}},
        ),
    }


def test_artifact_faults_are_reported_with_the_pods_message_while_the_old_version_answers(
    kubectl, e2e_operator, artifact_server, client_pod, artifacts
):
    namespace = artifact_server
    apply(kubectl, mlmodel(namespace, artifacts["v1"]))
    wait_ready(kubectl, namespace)
    url = f"http://iris.{namespace}.svc.cluster.local/predict"
    previous = ""
    for fault, (model, reason, rest) in _fault_models(namespace, artifacts).items():
        version = f"broken-{fault.replace(' ', '-')}"
        apply(
            kubectl,
            mlmodel(namespace, artifacts["v1"], version=version)
            | {"spec": {"model": {**model, "version": version}, "replicas": 1, **rest}},
        )

        def reported(previous=previous):
            condition = ready_condition(kubectl, namespace)
            message = condition.get("message") or ""
            return (
                condition
                if condition.get("status") == "False" and message != previous and "exit code" in message
                else None
            )

        condition = wait_for(reported, 60, f"Ready=False with the pod's message for {fault}")
        assert condition["reason"] == reason, (fault, condition)
        assert "the previous version still serves" in condition["message"], (fault, condition)
        previous = condition["message"]
        answer = client_pod.post(url, {"features": IRIS_ROW})
        assert answer["status"] == 200, (fault, answer)


def test_network_policy_is_enforced(kubectl, e2e_operator, artifact_server, client_pod, artifacts):
    namespace = artifact_server
    apply(kubectl, mlmodel(namespace, artifacts["v1"]))
    wait_ready(kubectl, namespace)  # the init container reached the artifact store on port 8000
    url = f"http://iris.{namespace}.svc.cluster.local/predict"
    assert client_pod.post(url, {"features": IRIS_ROW})["status"] == 200

    other = f"{namespace}-other"[:63]
    kubectl("apply", "-f", "-", input=json.dumps(node_workloads.namespace_manifest(other)))
    try:
        outsider = ClientPod(kubectl, other).start()
        refused = outsider.post(url, {"features": IRIS_ROW}, route_patience=0)
        assert refused["status"] == 0, f"a pod of another namespace reached the model: {refused}"
    finally:
        kubectl("delete", "namespace", other, "--wait=false", check=False)

    # the ingress controller's namespace is let in (the operator's default: ingress-nginx)
    ingress_namespace = Settings().ingress_namespace
    kubectl("apply", "-f", "-", input=json.dumps(node_workloads.namespace_manifest(ingress_namespace)))
    controller = ClientPod(kubectl, ingress_namespace, name=f"controller-{namespace[-6:]}").start()
    try:
        assert controller.post(url, {"features": IRIS_ROW})["status"] == 200
    finally:
        kubectl("delete", "pod", "-n", ingress_namespace, controller.name, "--wait=false", check=False)

    # egress: the model pod reaches the artifact store's port and nothing else. The probe target is a
    # listener in the client pod on another port, which the artifact pod (no policy selects it) reaches.
    (pod,) = [p for p in model_pods(kubectl, namespace) if p["status"]["phase"] == "Running"]
    artifact_pod = get(
        kubectl, "pods", "-n", namespace, "-l", f"app.kubernetes.io/name={node_workloads.ARTIFACT_SERVER}"
    )["items"][0]
    client_ip = get(kubectl, "pod", client_pod.name, "-n", namespace)["status"]["podIP"]
    listener = threading.Thread(target=client_pod.python, args=(LISTEN_SCRIPT, "8081", "30"))
    listener.start()
    connect = (
        "import socket, sys, time\nfor attempt in range(10):\n    s = socket.socket()\n    s.settimeout(3)\n"
        "    try:\n        s.connect((sys.argv[1], int(sys.argv[2])))\n        print('connected')\n        break\n"
        "    except OSError as e:\n        error = e\n        time.sleep(0.5)\nelse:\n    print('blocked', error)"
    )

    def connects(from_pod: str, container: str, ip: str, port: int) -> str:
        return kubectl(
            "exec", "-n", namespace, from_pod, "-c", container, "--", "python", "-c", connect, ip, str(port)
        ).stdout

    try:
        assert connects(artifact_pod["metadata"]["name"], "http", client_ip, 8081).startswith("connected")
        assert connects(
            pod["metadata"]["name"], "server", artifact_pod["status"]["podIP"], node_workloads.ARTIFACT_PORT
        ).startswith("connected")
        blocked = connects(pod["metadata"]["name"], "server", client_ip, 8081)
        assert blocked.startswith("blocked"), f"the model pod reached a port its NetworkPolicy does not open: {blocked}"
    finally:
        listener.join()


LISTEN_SCRIPT = """
import socket, sys, time
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen()
server.settimeout(1)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        server.accept()[0].close()
    except OSError:
        pass
"""


def _load(client: ClientPod, url: str, seconds: float, results: list) -> None:
    results.append(
        json.loads(
            client.python(
                node_workloads.LOAD_SCRIPT, url, json.dumps({"features": IRIS_ROW}), str(seconds), timeout=seconds + 60
            )
        )
    )


def test_rollout_and_pod_deletion_under_load_fail_no_request(
    kubectl, e2e_operator, artifact_server, client_pod, artifacts
):
    namespace = artifact_server
    # two replicas: a deleted pod's peer serves while its replacement starts
    apply(kubectl, mlmodel(namespace, artifacts["v1"], replicas=2))
    wait_ready(kubectl, namespace)
    url = f"http://iris.{namespace}.svc.cluster.local/predict"

    results: list = []
    load = threading.Thread(target=_load, args=(client_pod, url, 40, results))
    load.start()
    apply(kubectl, mlmodel(namespace, artifacts["v2"], version="2", replicas=2))
    wait_for(
        lambda: (
            (get(kubectl, "mlmodel", "iris", "-n", namespace).get("status") or {}).get("servingVersion") == "2"
            and ready_condition(kubectl, namespace).get("status") == "True"
        ),
        READY_TIMEOUT,
        "version 2 serving",
    )
    load.join()
    (rollout,) = results
    assert rollout["failed"] == 0 and rollout["ok"] > 10, rollout

    results.clear()
    load = threading.Thread(target=_load, args=(client_pod, url, 30, results))
    load.start()
    pod = next(p for p in model_pods(kubectl, namespace) if p["status"]["phase"] == "Running")
    kubectl("delete", "pod", "-n", namespace, pod["metadata"]["name"], "--wait=false")
    load.join()
    (deletion,) = results
    assert deletion["failed"] == 0 and deletion["ok"] > 10, deletion


def test_out_of_memory_and_unschedulable_pods_are_reported(kubectl, e2e_operator, artifact_server, artifacts):
    namespace = artifact_server
    apply(
        kubectl,
        mlmodel(
            namespace,
            artifacts["v1"],
            name="tight",
            resources={"requests": {"cpu": "50m", "memory": "20Mi"}, "limits": {"cpu": "500m", "memory": "40Mi"}},
        ),
    )
    apply(
        kubectl,
        mlmodel(
            namespace,
            artifacts["v1"],
            name="huge",
            resources={"requests": {"cpu": "64", "memory": "256Mi"}, "limits": {"cpu": "64", "memory": "512Mi"}},
        ),
    )
    unschedulable = wait_for(
        lambda: (c := ready_condition(kubectl, namespace, "huge")).get("reason") == "Unschedulable" and c,
        30,
        "the scheduler's message on MLModel huge",
    )
    assert unschedulable["status"] == "False" and "Insufficient cpu" in unschedulable["message"], unschedulable
    oom = wait_for(
        lambda: (c := ready_condition(kubectl, namespace, "tight")).get("reason") == "OOMKilled" and c,
        120,
        "OOMKilled on MLModel tight",
    )
    assert oom["status"] == "False" and "memory limit" in oom["message"], oom
