"""Every failure Kubernetes knows about is the MLModel's Ready reason, with Kubernetes' own message, within
30 s: the scheduler's (a real kube-scheduler), the ReplicaSet controller's quota refusal (real), and the
kubelet's (kwok failure stages, hack/kwok/mlmodel-failures.yaml: OOMKilled, image pull, missing Secret)."""

from __future__ import annotations

import json
import time

import pytest
from kube_helpers import get_json, wait_for
from test_operator import apply, condition, mlmodel, ready

pytestmark = pytest.mark.cluster

DEADLINE_SECONDS = 30


def reported(kubectl, namespace: str, reason: str, text: str):
    def check():
        obj = get_json(kubectl, "mlmodel", "iris", "-n", namespace)
        cond = condition(obj, "Ready")
        return (
            cond
            if cond.get("status") == "False" and cond.get("reason") == reason and text in cond.get("message", "")
            else None
        )

    return check


def assert_reported_fast(kubectl, namespace: str, spec_changes: dict, reason: str, text: str) -> dict:
    started = time.monotonic()
    apply(kubectl, namespace, mlmodel(**spec_changes))
    cond = wait_for(
        reported(kubectl, namespace, reason, text), DEADLINE_SECONDS, what=f"Ready=False {reason} naming {text!r}"
    )
    table = kubectl("get", "mlmodels", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "READY", "REASON"] and table[1].split()[:3] == ["iris", "False", reason]
    print(f"{reason} reported after {time.monotonic() - started:.1f} s")
    return cond


def test_unschedulable_names_the_schedulers_message(kubectl, namespace, operator):
    huge = {"requests": {"cpu": "5000", "memory": "1Gi"}, "limits": {"cpu": "5000", "memory": "1Gi"}}  # nodes have 1k
    assert_reported_fast(kubectl, namespace, {"resources": huge}, "Unschedulable", "Insufficient cpu")


def test_a_quota_refusal_names_the_quota(kubectl, namespace, operator):
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(quota))
    assert_reported_fast(kubectl, namespace, {}, "QuotaExceeded", "exceeded quota: no-pods")


def test_an_oom_killed_server_is_reported(kubectl, namespace, operator):
    assert_reported_fast(
        kubectl,
        namespace,
        {
            "podLabels": {"mlmodel.test/fail": "serve"},
            "podAnnotations": {"mlmodel.test/exit-code": "137", "mlmodel.test/reason": "OOMKilled"},
        },
        "OOMKilled",
        "spec.resources.limits.memory",
    )


@pytest.mark.parametrize(
    "kubelet_reason, message, reason",
    [
        ("ErrImagePull", 'failed to pull image "example.invalid/mlmodel-server:test": not found', "ImagePullFailed"),
        ("ImagePullBackOff", 'Back-off pulling image "example.invalid/mlmodel-server:test"', "ImagePullFailed"),
        ("CreateContainerConfigError", 'secret "s3-credentials" not found', "ContainerConfigError"),
    ],
)
def test_a_container_that_cannot_start_is_reported(kubectl, namespace, operator, kubelet_reason, message, reason):
    assert_reported_fast(
        kubectl,
        namespace,
        {
            "podLabels": {"mlmodel.test/fail": "waiting"},
            "podAnnotations": {"mlmodel.test/reason": kubelet_reason, "mlmodel.test/message": message},
        },
        reason,
        message,
    )


def test_kubectl_scale_on_an_autoscaled_mlmodel_is_refused(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5}))
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    refused = kubectl("scale", "mlmodel/iris", "-n", namespace, "--replicas=3", check=False)
    assert refused.returncode != 0 and "replicas cannot change while autoscaling is enabled" in refused.stderr, (
        refused.stderr
    )
    # Without autoscaling, scaling works as before.
    apply(kubectl, namespace, mlmodel(autoscaling={"enabled": False, "minReplicas": 2, "maxReplicas": 5}))
    kubectl("scale", "mlmodel/iris", "-n", namespace, "--replicas=3")
    wait_for(
        lambda: get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["replicas"] == 3, what="3 replicas"
    )
