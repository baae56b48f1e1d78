"""One idempotent reconcile: desired children from the spec, applied only where they drifted,
unwanted children deleted, status computed from what is live.

Create, update, resume and the resync timer all call `reconcile`; what it needs to know about the
live children comes from the operator's in-memory indexes, so a resync with nothing to do makes no
API call at all.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from mlmodel_operator import render, status
from mlmodel_operator.drift import has_drifted, releases_replicas
from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, HANDOVER_FIELD_MANAGER, Kube, KubeError
from mlmodel_operator.settings import Settings


@dataclass
class Observed:
    """The live state of one MLModel's children and pods, as the indexes last saw it."""

    children: dict[str, dict] = field(default_factory=dict)  # kind -> object
    pods: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Plan:
    handover: list[dict]  # applied first, by the handover field manager
    apply: list[dict]
    delete: list[tuple[str, str]]  # (kind, name)


def plan(desired: list[dict], live: dict[str, dict]) -> Plan:
    """What to write so that the live children match the desired ones (pure)."""
    desired_kinds = {obj["kind"] for obj in desired}
    handover = [_replicas_only(live[obj["kind"]]) for obj in desired
                if releases_replicas(obj, live.get(obj["kind"]), FIELD_MANAGER)]
    return Plan(
        handover=handover,
        apply=[obj for obj in desired
               if has_drifted(obj, live.get(obj["kind"])) or releases_replicas(obj, live.get(obj["kind"]), FIELD_MANAGER)],
        delete=[(kind, obj["metadata"]["name"]) for kind, obj in sorted(live.items())
                if kind in CHILD_TYPES and kind not in desired_kinds],
    )


def _replicas_only(deployment: dict) -> dict:
    meta = deployment["metadata"]
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
            "spec": {"replicas": deployment["spec"]["replicas"]}}


@dataclass(frozen=True)
class Outcome:
    status: dict
    events: list[tuple[str, str, str]]  # (type, reason, message)
    writes: int


def reconcile(mlmodel: dict, observed: Observed, kube: Kube, settings: Settings,
              now: datetime.datetime | None = None) -> Outcome:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    namespace = mlmodel["metadata"]["namespace"]
    children = dict(observed.children)
    desired = render.render_children(mlmodel, settings)
    todo = plan(desired, children)
    for obj in todo.handover:
        kube.apply(obj, field_manager=HANDOVER_FIELD_MANAGER)
    for obj in todo.apply:
        children[obj["kind"]] = kube.apply(obj)
    for kind, name in todo.delete:
        kube.delete(kind, namespace, name)
        children.pop(kind, None)
    new_status = status.compute_status(mlmodel, children, observed.pods, now, cluster_domain=settings.cluster_domain)
    old_status = mlmodel.get("status") or {}
    return Outcome(
        status=new_status,
        events=status.events_for_transition(old_status, new_status),
        writes=len(todo.handover) + len(todo.apply) + len(todo.delete),
    )


def is_retryable(error: KubeError) -> bool:
    """Conflicts, throttling and server-side trouble pass; anything else is a problem with the spec."""
    return error.status in (0, 409, 429) or error.status >= 500
