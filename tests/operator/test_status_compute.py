"""compute_status / events_for_transition: conditions for kubectl wait, kstatus (Flux) and Argo CD."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_cases import HERE, load_mlmodel

from mlmodel_operator.conditions import find
from mlmodel_operator.events import events_for_transition
from mlmodel_operator.labels import TEMPLATE_HASH_ANNOTATION
from mlmodel_operator.render import render_child
from mlmodel_operator.settings import Settings
from mlmodel_operator.status import ReconcileFailure, compute_status

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
DIGEST = "3f2a9c0d6b1e4f5a7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def mlmodel(generation: int = 1, status: dict | None = None, **spec_changes: Any) -> dict[str, Any]:
    obj = load_mlmodel(HERE / "samples" / "iris-http.yaml")
    obj["metadata"]["generation"] = generation
    obj["spec"].update(spec_changes)
    if status is not None:
        obj["status"] = status
    return obj


def live_deployment(
    model: dict[str, Any],
    *,
    replicas: int = 1,
    updated: int = 1,
    available: int = 1,
    total: int | None = None,
    observed: int = 1,
    deadline_exceeded: bool = False,
) -> dict[str, Any]:
    deployment = render_child("Deployment", model, Settings())
    deployment["metadata"]["generation"] = 1
    deployment["spec"]["replicas"] = replicas
    conditions = [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]
    if deadline_exceeded:
        conditions.append(
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": 'ReplicaSet "iris-7d9c" has timed out progressing.',
            }
        )
    deployment["status"] = {
        "observedGeneration": observed,
        "replicas": updated if total is None else total,
        "updatedReplicas": updated,
        "readyReplicas": available,
        "availableReplicas": available,
        "conditions": conditions,
    }
    return deployment


def pod(
    deployment: dict[str, Any],
    name: str,
    *,
    ready: bool = True,
    current: bool = True,
    init: dict | None = None,
    server: dict | None = None,
) -> dict[str, Any]:
    annotations = dict(deployment["spec"]["template"]["metadata"]["annotations"])
    if not current:
        annotations[TEMPLATE_HASH_ANNOTATION] = "0000000000000000"
        annotations["serving.mlops.dev/model-version"] = "1.1.0"
        annotations["serving.mlops.dev/artifact"] = "sha256:" + "a" * 64
    return {
        "metadata": {"name": name, "annotations": annotations},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "initContainerStatuses": [{"name": "fetch", **(init or {"state": {"terminated": {"exitCode": 0}}})}],
            "containerStatuses": [{"name": "server", **(server or {"state": {"running": {}}})}],
        },
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found = find(status["conditions"], kind)
    assert found is not None
    return found


def summary(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_ready_when_rolled_out() -> None:
    model = mlmodel()
    deployment = live_deployment(model)
    status = compute_status(model, {"Deployment": deployment}, [pod(deployment, "iris-a")], NOW)
    assert summary(status) == {
        "Ready": ("True", "Available"),
        "Reconciling": ("False", "ReconciliationSucceeded"),
        "Stalled": ("False", "ReconciliationSucceeded"),
    }
    assert status["observedGeneration"] == 1
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])
    assert status["url"] == "http://iris.models.svc.cluster.local"
    assert status["selector"] == "app.kubernetes.io/instance=iris,app.kubernetes.io/name=mlmodel"
    assert (status["servingDigest"], status["servingVersion"], status["unverified"]) == (DIGEST, "1.2.0", False)
    assert status["format"] == "joblib" and status["ingressURL"] == ""
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)


def test_no_deployment_yet_is_reconciling() -> None:
    status = compute_status(mlmodel(), {"Deployment": None}, [], NOW)
    assert summary(status)["Ready"] == ("Unknown", "RollingOut")
    assert summary(status)["Reconciling"][0] == "True" and summary(status)["Stalled"][0] == "False"
    assert status["replicas"] == 0 and status["servingDigest"] == ""


def test_rollout_in_progress_keeps_reporting_the_old_version() -> None:
    model = mlmodel()
    deployment = live_deployment(model, replicas=2, updated=1, available=2, total=3)
    pods = [
        pod(deployment, "iris-new", ready=False),
        pod(deployment, "iris-old-1", current=False),
        pod(deployment, "iris-old-2", current=False),
    ]
    status = compute_status(model, {"Deployment": deployment}, pods, NOW)
    assert summary(status)["Ready"] == ("Unknown", "RollingOut")
    assert summary(status)["Reconciling"][0] == "True"
    assert summary(status)["Stalled"][0] == "False"
    assert status["servingVersion"] == "1.1.0" and status["servingDigest"] == "a" * 64


def test_spec_not_yet_applied_is_not_ready() -> None:
    applied = mlmodel()
    deployment = live_deployment(applied)
    changed = mlmodel(generation=2)
    changed["spec"]["model"]["sha256"] = "b" * 64
    status = compute_status(changed, {"Deployment": deployment}, [pod(deployment, "iris-a")], NOW)
    assert summary(status)["Ready"] == ("Unknown", "RollingOut")
    assert condition(status, "Ready")["observedGeneration"] == 2


def test_digest_mismatch_stalls_and_names_the_old_pods() -> None:
    model = mlmodel()
    deployment = live_deployment(model, replicas=1, updated=1, available=1, total=2)
    failing = pod(
        deployment,
        "iris-new",
        ready=False,
        init={
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 10, "message": f"sha256 mismatch: expected {DIGEST}, got 9a9a"}},
        },
    )
    status = compute_status(
        model, {"Deployment": deployment}, [failing, pod(deployment, "iris-old", current=False)], NOW
    )
    ready = condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ArtifactDigestMismatch")
    assert f"sha256 mismatch: expected {DIGEST}, got 9a9a" in ready["message"]
    assert "previous version still serves (1 ready pod)" in ready["message"]
    assert summary(status)["Stalled"] == ("True", "ArtifactDigestMismatch")
    assert summary(status)["Reconciling"][0] == "False"
    assert status["servingVersion"] == "1.1.0"


def test_fetch_terminated_non_zero_is_a_failure() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    failing = pod(
        deployment,
        "iris-a",
        ready=False,
        init={"state": {"terminated": {"exitCode": 11, "message": "not found: https://models.example.com/x"}}},
    )
    status = compute_status(model, {"Deployment": deployment}, [failing], NOW)
    assert summary(status)["Ready"] == ("False", "ArtifactNotFound")
    assert summary(status)["Stalled"] == ("True", "ArtifactNotFound")


def test_a_password_in_a_termination_message_never_reaches_a_condition_or_event() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    leaked = "not found: //alice:hunter2-password@models.example.com/x.joblib"
    failing = pod(
        deployment, "iris-a", ready=False, init={"state": {"terminated": {"exitCode": 11, "message": leaked}}}
    )
    status = compute_status(model, {"Deployment": deployment}, [failing], NOW)
    failure = ReconcileFailure("InvalidChild", 'Deployment "iris" is invalid: value "https://bob:pw-123@h/m"')
    rejected = compute_status(model, {"Deployment": None}, [], NOW, failure=failure)

    for written in (status, rejected):
        messages = [c["message"] for c in written["conditions"]]
        messages += [event.message for event in events_for_transition({}, written)]
        assert not [m for m in messages if "hunter2" in m or "alice" in m or "bob" in m or "pw-123" in m]
    assert "//REDACTED@models.example.com/x.joblib" in condition(status, "Ready")["message"]


def test_server_crash_loop_with_load_failure() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    failing = pod(
        deployment,
        "iris-a",
        ready=False,
        server={
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {"terminated": {"exitCode": 22, "message": "scikit-learn 1.3.2 pickled, 1.6.1 installed"}},
        },
    )
    status = compute_status(model, {"Deployment": deployment}, [failing], NOW)
    assert summary(status)["Ready"] == ("False", "SklearnVersionMismatch")
    assert "1.3.2" in condition(status, "Ready")["message"]


def test_missing_secret_key_is_a_config_failure() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    failing = pod(
        deployment,
        "iris-a",
        ready=False,
        server={"state": {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "db" not found'}}},
    )
    status = compute_status(model, {"Deployment": deployment}, [failing], NOW)
    assert summary(status)["Stalled"] == ("True", "ContainerConfigError")


def test_progress_deadline_exceeded_stalls() -> None:
    model = mlmodel()
    deployment = live_deployment(model, updated=0, available=0, deadline_exceeded=True)
    status = compute_status(model, {"Deployment": deployment}, [], NOW)
    assert summary(status)["Ready"] == ("False", "ProgressDeadlineExceeded")
    assert "timed out progressing" in condition(status, "Stalled")["message"]


def test_lost_replicas_after_ready_is_false_not_unknown_and_does_not_flap() -> None:
    model = mlmodel()
    deployment = live_deployment(model, replicas=2, updated=2, available=2)
    ready = compute_status(model, {"Deployment": deployment}, [], NOW)
    degraded_deployment = live_deployment(model, replicas=2, updated=2, available=1)
    first = compute_status(mlmodel(status=ready), {"Deployment": degraded_deployment}, [], LATER)
    second = compute_status(
        mlmodel(status=first), {"Deployment": degraded_deployment}, [], LATER + timedelta(minutes=1)
    )
    assert summary(first)["Ready"] == ("False", "ReplicasUnavailable") == summary(second)["Ready"]
    assert first == second


def test_no_op_resync_is_identical() -> None:
    model = mlmodel()
    deployment = live_deployment(model)
    children = {"Deployment": deployment}
    first = compute_status(model, children, [pod(deployment, "iris-a")], NOW)
    second = compute_status(mlmodel(status=copy.deepcopy(first)), children, [pod(deployment, "iris-a")], LATER)
    assert first == second


def test_transition_time_changes_only_with_status() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    rolling = compute_status(model, {"Deployment": deployment}, [], NOW)
    ready = compute_status(mlmodel(status=rolling), {"Deployment": live_deployment(model)}, [], LATER)
    assert condition(ready, "Ready")["lastTransitionTime"] == "2026-11-30T12:05:00Z"
    assert condition(ready, "Stalled")["lastTransitionTime"] == "2026-11-30T12:00:00Z"  # False both times


def test_reconcile_failure_from_the_caller() -> None:
    failure = ReconcileFailure("ApplyFailed", 'Ingress "iris" is invalid: spec.rules[0].host: Invalid value')
    status = compute_status(mlmodel(), {"Deployment": None}, [], NOW, failure=failure)
    assert summary(status)["Stalled"] == ("True", "ApplyFailed")
    temporary = compute_status(
        mlmodel(), {"Deployment": None}, [], NOW, failure=ReconcileFailure("Conflict", "retrying", permanent=False)
    )
    assert summary(temporary)["Reconciling"] == ("True", "Conflict")


def test_ingress_url_and_unverified() -> None:
    model = load_mlmodel(HERE / "samples" / "autoscaled-ingress-tls.yaml")
    status = compute_status(model, {"Deployment": None}, [], NOW, cluster_domain="corp.local")
    assert status["ingressURL"] == "https://fraud.example.com"
    assert status["url"] == "http://fraud.models.svc.corp.local"
    assert status["unverified"] is True and status["format"] == "skops"


def test_events_only_on_transitions() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    rolling = compute_status(model, {"Deployment": deployment}, [], NOW)
    assert [e.reason for e in events_for_transition(None, rolling)] == ["RolloutStarted"]
    assert events_for_transition(rolling, rolling) == []
    failing = pod(
        deployment,
        "iris-a",
        ready=False,
        init={
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 10, "message": "sha256 mismatch:\nexpected x, got y"}},
        },
    )
    stalled = compute_status(mlmodel(status=rolling), {"Deployment": deployment}, [failing], LATER)
    events = events_for_transition(rolling, stalled)
    assert [(e.type, e.reason) for e in events] == [("Warning", "ArtifactDigestMismatch")]
    assert "\n" not in events[0].message
    assert events_for_transition(stalled, stalled) == []
    ready = compute_status(mlmodel(status=stalled), {"Deployment": live_deployment(model)}, [], LATER)
    assert [(e.type, e.reason) for e in events_for_transition(stalled, ready)] == [("Normal", "ModelReady")]


def test_status_matches_the_crd_status_schema(openapi_schema) -> None:
    import jsonschema

    model = mlmodel()
    deployment = live_deployment(model)
    skewed = pod(deployment, "iris-a", init={"state": {"terminated": {"exitCode": 0, "message": SKEW_LINE}}})
    for status in (
        compute_status(model, {"Deployment": deployment}, [pod(deployment, "iris-a")], NOW),
        compute_status(model, {"Deployment": deployment}, [skewed], NOW),
        compute_status(model, {"Deployment": None}, [], NOW),
    ):
        jsonschema.validate(status, openapi_schema["properties"]["status"])
        assert set(status) == set(openapi_schema["properties"]["status"]["properties"])


def test_a_permanent_failure_with_nothing_observed_is_stalled_and_one_event() -> None:
    status = compute_status(
        mlmodel(), {"Deployment": None}, [], NOW, failure=ReconcileFailure("InvalidChild", "Ingress rejected")
    )
    assert summary(status)["Ready"] == ("False", "InvalidChild")
    assert summary(status)["Stalled"] == ("True", "InvalidChild")
    ((event_type, reason, message),) = events_for_transition({}, status)
    assert (event_type, reason, message) == ("Warning", "InvalidChild", "Ingress rejected")


def test_an_unschedulable_pod_names_the_schedulers_message() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    pending = pod(deployment, "iris-a", ready=False)
    pending["status"] = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available.",
            }
        ],
    }
    status = compute_status(model, {"Deployment": deployment}, [pending], NOW)
    assert summary(status)["Ready"] == ("False", "Unschedulable")
    assert "0/3 nodes are available: 3 Insufficient memory." in condition(status, "Ready")["message"]


@pytest.mark.parametrize("waiting", ["ContainerCreating", "CrashLoopBackOff"])  # the first kill, and later ones
def test_an_oom_killed_server_is_reported_at_every_kill(waiting: str) -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    restarting = pod(
        deployment,
        "iris-a",
        ready=False,
        server={
            "ready": False,
            "state": {"waiting": {"reason": waiting}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        },
    )
    status = compute_status(model, {"Deployment": deployment}, [restarting], NOW)
    assert summary(status)["Ready"] == ("False", "OOMKilled")
    assert "spec.resources.limits.memory" in condition(status, "Ready")["message"]
    # Killed once, running and ready again since: not a failure any more.
    recovered = pod(
        deployment,
        "iris-a",
        server={
            "ready": True,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        },
    )
    assert (
        summary(compute_status(model, {"Deployment": live_deployment(model)}, [recovered], NOW))["Ready"][0] == "True"
    )


def test_an_image_pull_failure_is_reported_from_the_first_error() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    failing = pod(
        deployment,
        "iris-a",
        ready=False,
        server={
            "state": {
                "waiting": {
                    "reason": "ErrImagePull",
                    "message": 'failed to pull image "example.invalid/x:1": not found',
                }
            }
        },
    )
    status = compute_status(model, {"Deployment": deployment}, [failing], NOW)
    assert summary(status)["Ready"] == ("False", "ImagePullFailed")
    assert "example.invalid/x:1" in condition(status, "Ready")["message"]


def test_a_quota_refusal_of_the_replicaset_is_reported_with_the_api_servers_message() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0, updated=0)
    refusal = (
        'pods "iris-7d9c-x" is forbidden: exceeded quota: compute, requested: limits.memory=2Gi, '
        "used: limits.memory=0, limited: limits.memory=1Gi"
    )
    deployment["status"]["conditions"].append(
        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": refusal}
    )
    status = compute_status(model, {"Deployment": deployment}, [], NOW)
    assert summary(status)["Ready"] == ("False", "QuotaExceeded")
    assert summary(status)["Stalled"] == ("True", "QuotaExceeded")
    assert "exceeded quota: compute" in condition(status, "Ready")["message"]
    deployment["status"]["conditions"][-1]["message"] = (
        'pods "x" is forbidden: violates PodSecurity "restricted:latest"'
    )
    assert summary(compute_status(model, {"Deployment": deployment}, [], NOW))["Ready"] == ("False", "FailedCreate")


SKEW_LINE = "SklearnVersionMismatch: model.joblib was written with scikit-learn 1.0.2 but this image runs 1.9.1"


def fetched_with(message: str, exit_code: int = 0) -> dict:
    return {"state": {"terminated": {"exitCode": exit_code, "reason": "Completed", "message": message + "\n"}}}


def test_a_version_skew_from_a_successful_fetch_is_a_condition_while_ready_stays_true() -> None:
    model = mlmodel()
    deployment = live_deployment(model)
    status = compute_status(
        model, {"Deployment": deployment}, [pod(deployment, "iris-a", init=fetched_with(SKEW_LINE))], NOW
    )
    assert summary(status) == {
        "Ready": ("True", "Available"),
        "Reconciling": ("False", "ReconciliationSucceeded"),
        "Stalled": ("False", "ReconciliationSucceeded"),
        "VersionSkew": ("True", "SklearnVersionMismatch"),
    }
    skew = condition(status, "VersionSkew")
    assert skew["message"] == (
        "model.joblib was written with scikit-learn 1.0.2 but this image runs 1.9.1 (fetch container of pod iris-a)"
    )
    assert skew["observedGeneration"] == 1


def test_no_version_skew_condition_without_a_skew_line_or_from_old_pods() -> None:
    model = mlmodel()
    deployment = live_deployment(model, total=2)
    pods = [
        pod(deployment, "iris-a", init=fetched_with("something else")),
        pod(deployment, "iris-old", current=False, init=fetched_with(SKEW_LINE)),
    ]
    assert "VersionSkew" not in summary(compute_status(model, {"Deployment": deployment}, pods, NOW))


def test_a_version_skew_event_is_posted_once_per_transition_and_redacted() -> None:
    model = mlmodel()
    deployment = live_deployment(model)
    ready = compute_status(model, {"Deployment": deployment}, [pod(deployment, "iris-a")], NOW)
    leaky = SKEW_LINE + " //alice:hunter2@h"
    skewed = compute_status(
        mlmodel(status=ready), {"Deployment": deployment}, [pod(deployment, "iris-a", init=fetched_with(leaky))], LATER
    )
    ((event_type, reason, message),) = events_for_transition(ready, skewed)
    assert (event_type, reason) == ("Warning", "SklearnVersionMismatch")
    assert "scikit-learn 1.0.2" in message and "hunter2" not in message and "hunter2" not in str(skewed)
    assert events_for_transition(skewed, skewed) == []
    assert [e.reason for e in events_for_transition(None, skewed)] == ["SklearnVersionMismatch", "ModelReady"]
    healed = compute_status(mlmodel(status=skewed), {"Deployment": deployment}, [pod(deployment, "iris-a")], LATER)
    assert "VersionSkew" not in summary(healed) and events_for_transition(skewed, healed) == []


def test_policy_error_reports_the_mismatch_once_as_the_ready_failure() -> None:
    model = mlmodel()
    deployment = live_deployment(model, available=0)
    refused = pod(
        deployment,
        "iris-a",
        ready=False,
        init=fetched_with(SKEW_LINE),
        server={
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {
                "terminated": {
                    "exitCode": 22,
                    "message": "model.joblib was written with scikit-learn 1.0.2 but this server runs 1.9.1; refusing",
                }
            },
        },
    )
    status = compute_status(model, {"Deployment": deployment}, [refused], NOW)
    assert summary(status)["Ready"] == ("False", "SklearnVersionMismatch")
    assert summary(status)["VersionSkew"] == ("True", "SklearnVersionMismatch")
    assert [e.reason for e in events_for_transition(None, status)] == ["SklearnVersionMismatch"]
