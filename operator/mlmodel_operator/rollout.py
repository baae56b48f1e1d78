"""Where a Deployment's rollout stands, judged from its status as `kubectl rollout status` judges it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import conditions as cond
from .labels import ARTIFACT_ANNOTATION, MODEL_VERSION_ANNOTATION, artifact_identity


@dataclass(frozen=True)
class Rollout:
    state: str  # "progressing", "complete" or "stalled"
    message: str


def pod_is_ready(pod: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


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


def replicas_lost(deployment: dict[str, Any], was_ready: dict[str, Any] | None, generation: int) -> bool:
    """Whether a progressing Deployment lost replicas of a rollout that was complete, rather than rolling out:
    its MLModel was Ready for this generation (or already degraded from it), and every replica is updated."""
    status = deployment.get("status") or {}
    return (
        was_ready is not None
        and was_ready.get("observedGeneration") == generation
        and (was_ready.get("status") == cond.TRUE or was_ready.get("reason") == "ReplicasUnavailable")
        and status.get("updatedReplicas", 0) >= deployment.get("spec", {}).get("replicas", 1)
        and status.get("replicas", 0) <= status.get("updatedReplicas", 0)
    )


def applied_model_matches(deployment: dict[str, Any], model: dict[str, Any]) -> bool:
    """Whether the live Deployment already carries the spec's artifact and version (not stale)."""
    annotations = ((deployment.get("spec") or {}).get("template") or {}).get("metadata", {}).get("annotations") or {}
    return annotations.get(ARTIFACT_ANNOTATION) == artifact_identity(model) and annotations.get(
        MODEL_VERSION_ANNOTATION, ""
    ) == model.get("version", "")
