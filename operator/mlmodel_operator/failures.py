"""Why an MLModel's pods cannot serve, read from what the kubelet and the Deployment controller report (pure).

Only failures that will not heal by waiting count: a container's exit code (the fetch and server exit codes
of docs/pod-contract.md), the kernel's OOM kill, an image or configuration the kubelet cannot use, a pod no
node fits, a ReplicaSet whose pods the API server refuses. A restart in progress is not a failure.
A successful `fetch` may also report a scikit-learn version skew: a warning, not a failure (`version_skew`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlmodel_contract import exit_codes, pod
from mlmodel_contract.exit_codes import VERSION_SKEW_MESSAGE_PREFIX as SKEW_MARKER

FETCH_CONTAINER = pod.FETCH_CONTAINER
SERVER_CONTAINER = pod.SERVER_CONTAINER
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
class PodFailure:
    """A failure that will not heal by waiting; pod and container are "" when it is the ReplicaSet's."""

    reason: str
    message: str
    pod: str
    container: str


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


def replica_failure(deployment: dict[str, Any]) -> PodFailure | None:
    """The ReplicaSet could not create pods (a ResourceQuota, a LimitRange, Pod Security admission, ...): the
    Deployment controller copies the ReplicaSet's ReplicaFailure condition, with the API server's refusal."""
    for condition in (deployment.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            message = condition.get("message") or "the ReplicaSet could not create pods"
            reason = "QuotaExceeded" if "exceeded quota" in message else condition.get("reason") or "FailedCreate"
            return PodFailure(reason, message, "", "")
    return None
