"""MLModel status as a pure function of the MLModel, its observed children and pods, and the time.

Conditions follow the API conventions and kstatus so that `kubectl wait --for=condition=Ready`, Flux and
Argo CD read them unchanged:

| situation                               | Ready              | Reconciling | Stalled |
| --------------------------------------- | ------------------ | ----------- | ------- |
| Deployment missing or rolling out       | Unknown RollingOut | True        | False   |
| rolled out, all replicas available      | True Available     | False       | False   |
| was ready, replicas lost (same spec)    | False              | False       | False   |
| fetch/load failure, crash loop, deadline| False <reason>     | False       | True    |
| unschedulable, OOMKilled, image pull,   | False <reason>     | False       | True    |
| config error, pod creation refused      |                    |             |         |

Ready is Unknown, not False, during a normal rollout: Argo CD shows Ready=False as Degraded.
A fourth condition, VersionSkew, is present (True) only while a current pod's `fetch` reported that the artifact
was written by another scikit-learn than the image's; it never changes Ready (the version policy `error` makes
the server itself refuse to start instead).
Every key of the returned status is always present (empty string or 0 when unknown), so a JSON merge patch
of the whole status also clears stale values, and a no-op resync returns an identical dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from mlmodel_contract import exit_codes
from mlmodel_server.fetch.versions import SKEW_MARKER

from . import conditions as cond
from .conditions import Condition
from .defaults import spec_with_defaults
from .labels import ARTIFACT_ANNOTATION, MODEL_VERSION_ANNOTATION, TEMPLATE_HASH_ANNOTATION, selector_string
from .render import artifact_identity

FETCH_CONTAINER = "fetch"
SERVER_CONTAINER = "server"
VERSION_SKEW = "VersionSkew"
VERSION_SKEW_REASON = exit_codes.SKLEARN_VERSION_MISMATCH.reason  # the same reason as the server's exit under `error`

# Exit codes and their reasons: the pod contract's (docs/pod-contract.md).
FETCH_EXIT_REASONS = exit_codes.reasons(exit_codes.FETCH)
SERVER_EXIT_REASONS = exit_codes.reasons(exit_codes.SERVE)
# Waiting reasons that do not heal without a change (image, missing Secret/ConfigMap key, ...).
WAITING_FAILURES = {
    "ErrImagePull": "ImagePullFailed",
    "ImagePullBackOff": "ImagePullFailed",
    "InvalidImageName": "ImagePullFailed",
    "CreateContainerConfigError": "ContainerConfigError",
    "CreateContainerError": "ContainerConfigError",
}


@dataclass(frozen=True)
class ReconcileFailure:
    """A failure the caller met while applying children (e.g. the API server rejected an object)."""

    reason: str
    message: str
    permanent: bool = True


@dataclass(frozen=True)
class PodFailure:
    reason: str
    message: str
    pod: str
    container: str


@dataclass(frozen=True)
class Rollout:
    state: str  # "progressing", "complete" or "stalled"
    message: str


class Event(NamedTuple):
    """An Event to post on the MLModel; unpacks as (type, reason, message)."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str


# --- pods -------------------------------------------------------------------------------------------------------


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def pod_is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _termination_failure(
    terminated: dict[str, Any], reasons: dict[int, str], default_reason: str, pod: str, container: str
) -> PodFailure | None:
    code = terminated.get("exitCode", 0)
    if code == 0:
        return None
    if terminated.get("reason") == "OOMKilled":  # the kernel's verdict, not the process's: no message of its own
        return PodFailure(
            "OOMKilled",
            f"killed at its memory limit ({container} container of pod {pod}, exit code {code}); "
            "raise spec.resources.limits.memory",
            pod,
            container,
        )
    message = (terminated.get("message") or "").strip() or f"exited with code {code}"
    return PodFailure(
        reasons.get(code, default_reason),
        f"{message} ({container} container of pod {pod}, exit code {code})",
        pod,
        container,
    )


def _container_failure(
    status: dict[str, Any], pod: str, reasons: dict[int, str], default_reason: str, terminated_counts: bool
) -> PodFailure | None:
    container = status.get("name", "")
    state = status.get("state") or {}
    waiting = state.get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated") or {}
    if last.get("reason") == "OOMKilled" and not status.get("ready"):
        # Restarted at once after its first kill and loading again: it will likely be killed again.
        return _termination_failure(last, reasons, default_reason, pod, container)
    if waiting.get("reason") in WAITING_FAILURES:
        message = waiting.get("message") or waiting["reason"]
        return PodFailure(
            WAITING_FAILURES[waiting["reason"]], f"{message} ({container} container of pod {pod})", pod, container
        )
    if waiting.get("reason") == "CrashLoopBackOff":
        last = (status.get("lastState") or {}).get("terminated") or {}
        failure = _termination_failure(last, reasons, default_reason, pod, container)
        return failure or PodFailure(
            default_reason, f"crash-looping ({container} container of pod {pod})", pod, container
        )
    terminated = state.get("terminated")
    if terminated and terminated_counts:
        return _termination_failure(terminated, reasons, default_reason, pod, container)
    return None


def pod_failure(pod: dict[str, Any]) -> PodFailure | None:
    """Why a pod cannot serve, if it is a failure that will not heal by waiting; None otherwise."""
    name = pod.get("metadata", {}).get("name", "")
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "PodScheduled"
            and condition.get("status") == "False"
            and condition.get("reason") == "Unschedulable"
        ):
            return PodFailure("Unschedulable", f"{condition.get('message') or 'no node fits'} (pod {name})", name, "")
    for container in status.get("initContainerStatuses") or []:
        if container.get("name") == FETCH_CONTAINER:
            failure = _container_failure(container, name, FETCH_EXIT_REASONS, "ArtifactFetchFailed", True)
            if failure:
                return failure
    for container in status.get("containerStatuses") or []:
        if container.get("name") == SERVER_CONTAINER:
            # A terminated server counts only with a known load-failure code; others are restarts in progress.
            state_terminated = (container.get("state") or {}).get("terminated") or {}
            known = (
                state_terminated.get("exitCode") in SERVER_EXIT_REASONS or state_terminated.get("reason") == "OOMKilled"
            )
            failure = _container_failure(container, name, SERVER_EXIT_REASONS, "ServerCrashLooping", known)
            if failure:
                return failure
    return None


def version_skew(pod: dict[str, Any]) -> str | None:
    """What a pod's successful `fetch` wrote to its termination message about a scikit-learn version skew."""
    name = pod.get("metadata", {}).get("name", "")
    for container in (pod.get("status") or {}).get("initContainerStatuses") or []:
        terminated = (container.get("state") or {}).get("terminated") or {}
        message = (terminated.get("message") or "").strip()
        if (
            container.get("name") == FETCH_CONTAINER
            and terminated.get("exitCode") == 0
            and message.startswith(SKEW_MARKER)
        ):
            return f"{message.removeprefix(SKEW_MARKER).strip()} ({FETCH_CONTAINER} container of pod {name})"
    return None


# --- deployment -------------------------------------------------------------------------------------------------


def replica_failure(deployment: dict[str, Any]) -> PodFailure | None:
    """The ReplicaSet could not create pods (a ResourceQuota, a LimitRange, Pod Security admission, ...): the
    Deployment controller copies the ReplicaSet's ReplicaFailure condition, with the API server's refusal."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            message = condition.get("message") or "the ReplicaSet could not create pods"
            reason = "QuotaExceeded" if "exceeded quota" in message else condition.get("reason") or "FailedCreate"
            return PodFailure(reason, message, "", "")
    return None


def rollout_of(deployment: dict[str, Any]) -> Rollout:
    """The Deployment's rollout state, as `kubectl rollout status` judges it."""
    generation = deployment.get("metadata", {}).get("generation", 0)
    status = deployment.get("status") or {}
    if status.get("observedGeneration", 0) < generation:
        return Rollout("progressing", "waiting for the Deployment controller to observe the new spec")
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return Rollout("stalled", condition.get("message") or "rollout exceeded its progress deadline")
    desired = (deployment.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    replicas = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < desired:
        return Rollout("progressing", f"{updated} of {desired} replicas updated")
    if replicas > updated:
        return Rollout("progressing", f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return Rollout("progressing", f"{available} of {updated} updated replicas available")
    return Rollout("complete", f"{available} of {desired} replicas available")


def _applied_model_matches(deployment: dict[str, Any], model: dict[str, Any]) -> bool:
    """Whether the live Deployment already carries the spec's artifact and version (not stale)."""
    annotations = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    return annotations.get(ARTIFACT_ANNOTATION) == artifact_identity(model) and annotations.get(
        MODEL_VERSION_ANNOTATION, ""
    ) == model.get("version", "")


# --- status -----------------------------------------------------------------------------------------------------


def _serving_from_pod(pod: dict[str, Any]) -> tuple[str, str]:
    annotations = _annotations(pod)
    artifact = annotations.get(ARTIFACT_ANNOTATION, "")
    digest = artifact.removeprefix("sha256:") if artifact.startswith("sha256:") else ""
    return digest, annotations.get(MODEL_VERSION_ANNOTATION, "")


def _ingress_url(spec: dict[str, Any]) -> str:
    ingress = spec["ingress"]
    if not ingress["enabled"] or not ingress.get("host"):
        return ""
    scheme = "https" if ingress.get("tls") else "http"
    path = "" if ingress["path"] == "/" else ingress["path"]
    return f"{scheme}://{ingress['host']}{path}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def compute_status(
    mlmodel: dict[str, Any],
    children: dict[str, dict[str, Any] | None],
    pods: list[dict[str, Any]],
    now: datetime,
    *,
    cluster_domain: str = "cluster.local",
    failure: ReconcileFailure | None = None,
) -> dict[str, Any]:
    """The whole status of an MLModel.

    children maps a kind ("Deployment", "Service", ...) to the live object or None; pods are the pods matching
    the MLModel's selector (any ReplicaSet). failure is what the caller met while applying, if anything.
    """
    meta = mlmodel["metadata"]
    name, namespace, generation = meta["name"], meta["namespace"], meta.get("generation", 0)
    spec = spec_with_defaults(mlmodel["spec"])
    model = spec["model"]
    previous = mlmodel.get("status") or {}
    deployment = children.get("Deployment")
    deployment_status = (deployment or {}).get("status") or {}

    current_hash = _annotations((deployment or {}).get("spec", {}).get("template")).get(TEMPLATE_HASH_ANNOTATION)
    live_pods = sorted(
        (p for p in pods if not p.get("metadata", {}).get("deletionTimestamp")),
        key=lambda p: p.get("metadata", {}).get("name", ""),
    )
    current = [p for p in live_pods if current_hash and _annotations(p).get(TEMPLATE_HASH_ANNOTATION) == current_hash]
    old = [p for p in live_pods if p not in current]
    old_ready = [p for p in old if pod_is_ready(p)]
    pod_failures = [f for f in (pod_failure(p) for p in current) if f]
    skews = [s for s in (version_skew(p) for p in current) if s]
    creation_failure = replica_failure(deployment or {})
    if creation_failure:
        pod_failures.insert(0, creation_failure)

    still_serving = ""
    if old_ready:
        still_serving = f"; the previous version still serves ({_plural(len(old_ready), 'ready pod')})"

    ready_condition: Condition
    if failure is not None and failure.permanent:
        ready_condition = Condition(cond.READY, cond.FALSE, failure.reason, failure.message + still_serving)
        state = "stalled"
    elif failure is not None:
        ready_condition = Condition(cond.READY, cond.UNKNOWN, failure.reason, failure.message)
        state = "progressing"
    elif deployment is None:
        ready_condition = Condition(cond.READY, cond.UNKNOWN, "RollingOut", "waiting for the Deployment to be created")
        state = "progressing"
    else:
        rollout = rollout_of(deployment)
        if pod_failures or rollout.state == "stalled":
            if pod_failures:
                reason, message = pod_failures[0].reason, pod_failures[0].message
            else:
                reason, message = "ProgressDeadlineExceeded", rollout.message
            ready_condition = Condition(cond.READY, cond.FALSE, reason, message + still_serving)
            state = "stalled"
        elif not _applied_model_matches(deployment, model):
            ready_condition = Condition(
                cond.READY, cond.UNKNOWN, "RollingOut", "waiting for the new model to be applied"
            )
            state = "progressing"
        elif rollout.state == "progressing":
            was_ready = cond.find(previous.get("conditions"), cond.READY)
            # Ready for this generation before (or already degraded from it): replicas were lost, not rolling out.
            rolled_out_before = (
                was_ready is not None
                and was_ready.get("observedGeneration") == generation
                and (was_ready.get("status") == cond.TRUE or was_ready.get("reason") == "ReplicasUnavailable")
                and deployment_status.get("updatedReplicas", 0) >= deployment.get("spec", {}).get("replicas", 1)
                and deployment_status.get("replicas", 0) <= deployment_status.get("updatedReplicas", 0)
            )
            if rolled_out_before:
                ready_condition = Condition(cond.READY, cond.FALSE, "ReplicasUnavailable", rollout.message)
                state = "degraded"
            else:
                ready_condition = Condition(cond.READY, cond.UNKNOWN, "RollingOut", rollout.message + still_serving)
                state = "progressing"
        else:
            desired = deployment.get("spec", {}).get("replicas", 1)
            version = f" version {model['version']}" if model.get("version") else ""
            if desired == 0:
                ready_condition = Condition(cond.READY, cond.TRUE, "ScaledToZero", "scaled to 0 replicas; not serving")
            else:
                ready_condition = Condition(
                    cond.READY, cond.TRUE, "Available", f"serving{version} with {rollout.message}"
                )
            state = "ready"

    reconciling = {
        "progressing": Condition(cond.RECONCILING, cond.TRUE, ready_condition.reason, ready_condition.message),
        "stalled": Condition(cond.RECONCILING, cond.FALSE, "ReconciliationFailed", "the change cannot progress"),
        "degraded": Condition(cond.RECONCILING, cond.FALSE, "ReconciliationSucceeded", "the spec is applied"),
        "ready": Condition(cond.RECONCILING, cond.FALSE, "ReconciliationSucceeded", "the spec is applied"),
    }[state]
    stalled = {
        "stalled": Condition(cond.STALLED, cond.TRUE, ready_condition.reason, ready_condition.message),
        "progressing": Condition(cond.STALLED, cond.FALSE, "Progressing", "the change is progressing"),
        "degraded": Condition(cond.STALLED, cond.FALSE, "ReconciliationSucceeded", "the spec is applied"),
        "ready": Condition(cond.STALLED, cond.FALSE, "ReconciliationSucceeded", "the spec is applied"),
    }[state]

    desired_conditions = [ready_condition, reconciling, stalled]
    if skews:
        desired_conditions.append(Condition(VERSION_SKEW, cond.TRUE, VERSION_SKEW_REASON, skews[0]))

    if state == "ready":
        serving_digest, serving_version = model.get("sha256", ""), model.get("version", "")
    elif old_ready:
        serving_digest, serving_version = _serving_from_pod(old_ready[0])
    else:
        ready_current = [p for p in current if pod_is_ready(p)]
        serving_digest, serving_version = _serving_from_pod(ready_current[0]) if ready_current else ("", "")

    return {
        "observedGeneration": generation,
        "conditions": cond.merge(previous.get("conditions"), desired_conditions, generation, now),
        "replicas": deployment_status.get("replicas", 0),
        "readyReplicas": deployment_status.get("readyReplicas", 0),
        "updatedReplicas": deployment_status.get("updatedReplicas", 0),
        "availableReplicas": deployment_status.get("availableReplicas", 0),
        "selector": selector_string(name),
        "url": f"http://{name}.{namespace}.svc.{cluster_domain}",
        "ingressURL": _ingress_url(spec),
        "format": model.get("format", ""),
        "servingDigest": serving_digest,
        "servingVersion": serving_version,
        "unverified": not model.get("sha256"),
    }


def failed_status(
    mlmodel: dict[str, Any], reason: str, message: str, now: datetime, *, cluster_domain: str = "cluster.local"
) -> dict[str, Any]:
    """The status when applying the children failed permanently and nothing was observed: Ready=False, Stalled."""
    return compute_status(
        mlmodel,
        {"Deployment": None},
        [],
        now,
        cluster_domain=cluster_domain,
        failure=ReconcileFailure(reason, message, permanent=True),
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- events -----------------------------------------------------------------------------------------------------

MAX_EVENT_MESSAGE = 1024


def _one_line(message: str) -> str:
    return " ".join(message.split())[:MAX_EVENT_MESSAGE]


def events_for_transition(old_status: dict[str, Any] | None, new_status: dict[str, Any]) -> list[Event]:
    """Events worth emitting when the status moves from old to new: transitions only, never on a resync."""
    old_conditions = (old_status or {}).get("conditions")
    new_conditions = new_status.get("conditions")
    old_ready, new_ready = cond.find(old_conditions, cond.READY), cond.find(new_conditions, cond.READY)
    old_stalled, new_stalled = cond.find(old_conditions, cond.STALLED), cond.find(new_conditions, cond.STALLED)
    events: list[Event] = []

    if cond.is_true(new_conditions, cond.RECONCILING) and not cond.is_true(old_conditions, cond.RECONCILING):
        events.append(
            Event("Normal", "RolloutStarted", _one_line(cond.find(new_conditions, cond.RECONCILING)["message"]))
        )

    if (
        new_stalled
        and new_stalled["status"] == cond.TRUE
        and (
            not old_stalled
            or old_stalled.get("status") != cond.TRUE
            or old_stalled.get("reason") != new_stalled["reason"]
        )
    ):
        events.append(Event("Warning", new_stalled["reason"], _one_line(new_stalled["message"])))
    elif (
        new_ready
        and new_ready["status"] == cond.FALSE
        and (not old_ready or old_ready.get("status") != cond.FALSE or old_ready.get("reason") != new_ready["reason"])
    ):
        events.append(Event("Warning", new_ready["reason"], _one_line(new_ready["message"])))

    new_skew = cond.find(new_conditions, VERSION_SKEW)
    if (
        new_skew
        and new_skew["status"] == cond.TRUE
        and not cond.is_true(old_conditions, VERSION_SKEW)
        and all(e.reason != new_skew["reason"] for e in events)
    ):  # policy `error`: Ready=False says it already
        events.append(Event("Warning", new_skew["reason"], _one_line(new_skew["message"])))

    if new_ready and new_ready["status"] == cond.TRUE and not cond.is_true(old_conditions, cond.READY):
        events.append(Event("Normal", "ModelReady", _one_line(new_ready["message"])))
    return events
