"""Workloads that `make demo` and the end-to-end tests run on the real node next to the models:
an artifact server (a Deployment + Service serving files from a ConfigMap over http, as an
in-cluster store would) and a client pod to call Services by DNS name from inside the cluster.
Both use the locally built server image (it has Python) and pass Pod Security `restricted`."""

from __future__ import annotations

import base64
import hashlib
import json

LOCAL_SERVER_IMAGE = "localhost/mlmodel-server:dev"  # hack/images.sh's tag, imported into the node's containerd
ARTIFACT_SERVER = "artifacts"
ARTIFACT_PORT = 8000  # deliberately not 80/443: the MLModel's NetworkPolicy must open it from the URI
CLIENT_POD = "client"
RESTRICTED_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def restricted_security() -> tuple[dict, dict]:
    """(pod securityContext, container securityContext) that Pod Security `restricted` accepts."""
    pod = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    return pod, container


def namespace_manifest(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED_LABELS}}


def artifact_server_manifests(namespace: str, files: dict[str, bytes], image: str = LOCAL_SERVER_IMAGE) -> list[dict]:
    """A ConfigMap holding the files (each < 1 MiB) and `python -m http.server` serving them on ARTIFACT_PORT."""
    labels = {"app.kubernetes.io/name": ARTIFACT_SERVER}
    pod_security, container_security = restricted_security()
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": ARTIFACT_SERVER, "namespace": namespace},
        "binaryData": {name: base64.b64encode(data).decode() for name, data in files.items()},
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": ARTIFACT_SERVER, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "artifacts-sha256": hashlib.sha256(json.dumps(config_map, sort_keys=True).encode()).hexdigest()
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": pod_security,
                    "containers": [
                        {
                            "name": "http",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["python", "-m", "http.server", str(ARTIFACT_PORT), "--directory", "/artifacts"],
                            "ports": [{"name": "http", "containerPort": ARTIFACT_PORT}],
                            "readinessProbe": {"tcpSocket": {"port": ARTIFACT_PORT}, "periodSeconds": 1},
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"cpu": "200m", "memory": "128Mi"},
                            },
                            "securityContext": container_security,
                            "volumeMounts": [{"name": "artifacts", "mountPath": "/artifacts", "readOnly": True}],
                        }
                    ],
                    "volumes": [{"name": "artifacts", "configMap": {"name": ARTIFACT_SERVER}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": ARTIFACT_SERVER, "namespace": namespace},
        # the Service port equals the pod's: NetworkPolicy ports are the pod's, the URI names the Service's
        "spec": {"selector": labels, "ports": [{"name": "http", "port": ARTIFACT_PORT, "targetPort": ARTIFACT_PORT}]},
    }
    return [config_map, deployment, service]


def artifact_uri(namespace: str, file_name: str) -> str:
    return f"http://{ARTIFACT_SERVER}.{namespace}.svc.cluster.local:{ARTIFACT_PORT}/{file_name}"


def client_pod_manifest(namespace: str, name: str = CLIENT_POD, image: str = LOCAL_SERVER_IMAGE) -> dict:
    """A pod that idles so that `kubectl exec` can run Python's urllib from inside the cluster."""
    pod_security, container_security = restricted_security()
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": pod_security,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "client",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python", "-c", "import time\nwhile True: time.sleep(3600)"],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "500m", "memory": "256Mi"},
                    },
                    "securityContext": container_security,
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


# Run inside the client pod: POST a JSON body, print {"status": <code>, "body": <text>} (or the error).
# kube-proxy programs a Service's endpoint a moment after its pod is Ready (seconds on a loaded machine); until
# then the ClusterIP refuses the connection or answers "no route to host", so those two are retried for the
# optional third argument's seconds (30 unless given; 0 where a refusal is the expected answer).
POST_SCRIPT = """
import errno, json, sys, time, urllib.request, urllib.error
url, body = sys.argv[1], sys.argv[2].encode()
route_patience = float(sys.argv[3]) if len(sys.argv) > 3 else 30
request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
not_routed_yet = (errno.ECONNREFUSED, errno.EHOSTUNREACH)
deadline = time.monotonic() + route_patience
while True:
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            print(json.dumps({"status": response.status, "body": response.read().decode()}))
    except urllib.error.HTTPError as error:
        print(json.dumps({"status": error.code, "body": error.read().decode()}))
    except OSError as error:
        reason = getattr(error, "reason", error)
        if getattr(reason, "errno", None) in not_routed_yet and time.monotonic() < deadline:
            time.sleep(0.5)
            continue
        print(json.dumps({"status": 0, "body": repr(error)}))
    break
"""

# Run inside the client pod: POST the body to url for `seconds`, one request after another; print counts.
LOAD_SCRIPT = """
import json, sys, time, urllib.request
url, body, seconds = sys.argv[1], sys.argv[2].encode(), float(sys.argv[3])
ok, failed, errors = 0, 0, []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            ok += 1
    except Exception as error:
        failed += 1
        errors.append(repr(error)[:200])
print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:10]}))
"""
