"""MLModel status as a pure function of the MLModel, its observed children and pods, and the time.

Its parts are judged elsewhere: why pods fail in failures.py, where the rollout stands in rollout.py; the
Events a status change is worth in events.py.

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

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import conditions as cond
from .conditions import Condition
from .defaults import spec_with_defaults
from .failures import VERSION_SKEW_REASON, pod_failure, replica_failure, version_skew
from .labels import ARTIFACT_ANNOTATION, MODEL_VERSION_ANNOTATION, TEMPLATE_HASH_ANNOTATION, selector_string
from .rollout import applied_model_matches, pod_is_ready, replicas_lost, rollout_of


@dataclass(frozen=True)
class ReconcileFailure:
    """A failure the caller met while applying children (e.g. the API server rejected an object)."""

    reason: str
    message: str
    permanent: bool = True


def _annotations(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


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
    children: Mapping[str, dict[str, Any] | None],
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
        elif not applied_model_matches(deployment, model):
            ready_condition = Condition(
                cond.READY, cond.UNKNOWN, "RollingOut", "waiting for the new model to be applied"
            )
            state = "progressing"
        elif rollout.state == "progressing":
            if replicas_lost(deployment, cond.find(previous.get("conditions"), cond.READY), generation):
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
        desired_conditions.append(Condition(cond.VERSION_SKEW, cond.TRUE, VERSION_SKEW_REASON, skews[0]))

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


def utcnow() -> datetime:
    return datetime.now(UTC)
