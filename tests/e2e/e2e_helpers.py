"""Helpers of the end-to-end tests: a client pod that calls Services from inside the cluster, waiting."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import node_workloads
from polling import wait_for


@dataclass(frozen=True)
class Artifact:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class ClientPod:
    """A pod in a namespace that calls Services from inside the cluster (kubectl exec + Python's urllib)."""

    def __init__(self, kubectl, namespace: str, name: str = node_workloads.CLIENT_POD):
        self.kubectl, self.namespace, self.name = kubectl, namespace, name

    def start(self) -> ClientPod:
        self.kubectl(
            "apply", "-f", "-", input=json.dumps(node_workloads.client_pod_manifest(self.namespace, self.name))
        )
        self.kubectl("wait", "-n", self.namespace, f"pod/{self.name}", "--for=condition=Ready", "--timeout=90s")
        return self

    def python(self, script: str, *args: str, timeout: float = 120) -> str:
        result = self.kubectl("exec", "-n", self.namespace, self.name, "--", "python", "-c", script, *args, check=False)
        assert result.returncode == 0, f"kubectl exec in {self.namespace}/{self.name} failed: {result.stderr}"
        return result.stdout

    def post(self, url: str, body: dict, route_patience: float = 30) -> dict:
        """POST from the pod; a refusal is retried for route_patience seconds (kube-proxy's rules lag a new pod)."""
        return json.loads(self.python(node_workloads.POST_SCRIPT, url, json.dumps(body), str(route_patience)))


IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
READY_TIMEOUT = 180  # a cold node on a busy 2-core machine; warm it is ~10 s


def mlmodel(namespace: str, artifact, name: str = "iris", version: str = "1", **spec) -> dict:
    model = {
        "uri": node_workloads.artifact_uri(namespace, artifact.name),
        "sha256": artifact.sha256,
        "version": version,
    }
    return {
        "apiVersion": "serving.mlops.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, "replicas": 1, **spec},
    }


def apply(kubectl, obj: dict) -> None:
    kubectl("apply", "-f", "-", input=json.dumps(obj))


def get(kubectl, *args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def ready_condition(kubectl, namespace: str, name: str = "iris") -> dict:
    status = get(kubectl, "mlmodel", name, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def wait_ready(kubectl, namespace: str, name: str = "iris") -> None:
    wait_for(
        lambda: ready_condition(kubectl, namespace, name).get("status") == "True",
        READY_TIMEOUT,
        f"MLModel {name} Ready",
    )


def model_pods(kubectl, namespace: str, name: str = "iris") -> list[dict]:
    return get(kubectl, "pods", "-n", namespace, "-l", f"app.kubernetes.io/instance={name}")["items"]
