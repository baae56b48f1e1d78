"""The operator image itself as a pod on the real node, installed with the shipped kustomize overlay
for local images (deploy/overlays/dev): in-cluster config, its own ServiceAccount, the kubernetes
Service's ClusterIP to the API server."""

from __future__ import annotations

import localcluster
import operator_env
import pytest
import realnode
from e2e_helpers import IRIS_ROW, READY_TIMEOUT, apply, get, mlmodel, wait_for, wait_ready

pytestmark = pytest.mark.cluster

DEV_OVERLAY = localcluster.REPO_ROOT / "deploy" / "overlays" / "dev"


def operator_pods(kubectl) -> list[dict]:
    return get(kubectl, "pods", "-n", operator_env.OPERATOR_NAMESPACE, "-l", "app.kubernetes.io/name=mlmodel-operator")[
        "items"
    ]


def test_the_operator_image_reconciles_a_sample_as_a_pod_of_the_kustomize_install(
    real_node, kubectl, node_namespace, artifact_server, client_pod, artifacts
):
    # a namespace the kwok tests marked would send the operator pod to the fake node
    kubectl("create", "namespace", operator_env.OPERATOR_NAMESPACE, check=False)
    kubectl(
        "annotate",
        "namespace",
        operator_env.OPERATOR_NAMESPACE,
        *(f"{key}-" for key in localcluster.KWOK_NAMESPACE_ANNOTATIONS),
        check=False,
    )
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(DEV_OVERLAY))
    try:
        kubectl(
            "rollout", "status", "-n", operator_env.OPERATOR_NAMESPACE, "deployment/mlmodel-operator", "--timeout=120s"
        )
        pods = [p for p in operator_pods(kubectl) if not p["metadata"].get("deletionTimestamp")]
        assert len(pods) == 2 and all(p["spec"]["nodeName"] == realnode.NODE_NAME for p in pods), pods  # the HA install

        apply(kubectl, mlmodel(artifact_server, artifacts["v1"]))
        wait_ready(kubectl, artifact_server)
        model_pod = get(kubectl, "pods", "-n", artifact_server, "-l", "app.kubernetes.io/instance=iris")["items"][0]
        assert model_pod["spec"]["containers"][0]["image"] == "mlmodel-server:dev"  # the overlay's default image
        answer = client_pod.post(f"http://iris.{artifact_server}.svc.cluster.local/predict", {"features": IRIS_ROW})
        assert answer["status"] == 200, answer
        logs = [kubectl("logs", "-n", operator_env.OPERATOR_NAMESPACE, p["metadata"]["name"]).stdout for p in pods]
        assert all("Initial authentication has finished" in log for log in logs), logs  # in-cluster config, its token
        assert sum("leading: acquired the Lease" in log for log in logs) == 1, logs  # one leader, one standby
    finally:
        kubectl(
            "delete",
            "-n",
            operator_env.OPERATOR_NAMESPACE,
            "deployment/mlmodel-operator",
            "--ignore-not-found",
            check=False,
        )
        wait_for(lambda: not operator_pods(kubectl), READY_TIMEOUT, "the operator pod to be gone")
