"""One idempotent reconcile: desired children from the spec, applied only where they drifted,
unwanted children deleted, status computed from what is live.

Create, update, resume and the resync timer all run it; what it needs to know about the live
children comes from the operator's in-memory indexes, so a resync with nothing to do makes no
API call at all.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mlmodel_operator import render, status
from mlmodel_operator.drift import has_drifted, releases_replicas
from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, HANDOVER_FIELD_MANAGER, Kube, KubeError
from mlmodel_operator.settings import Settings
from mlmodel_operator.status_writer import StatusWriter


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


def apply_children(namespace: str, desired: list[dict], live: dict[str, dict], kube: Kube) -> dict[str, dict]:
    """Make the live children match the desired ones; returns the children as they are now."""
    children = dict(live)
    todo = plan(desired, children)
    for obj in todo.handover:
        kube.apply(obj, field_manager=HANDOVER_FIELD_MANAGER)
    for obj in todo.apply:
        children[obj["kind"]] = kube.apply(obj)
    for kind, name in todo.delete:
        kube.delete(kind, namespace, name)
        children.pop(kind, None)
    return children


def status_of(children: dict[str, dict], pods: list[dict], settings: Settings,
              failure: status.ReconcileFailure | None = None) -> Callable[[dict], dict]:
    """The status computation for a StatusWriter, bound to what was observed."""
    def compute(mlmodel: dict) -> dict:
        return status.compute_status(mlmodel, children, pods, status.utcnow(),
                                     cluster_domain=settings.cluster_domain, failure=failure)
    return compute


class Reconciler:
    """Runs reconciles one at a time per MLModel, whoever asks: kopf's handlers, the resync loop,
    or a watch event of a child. `observe` is called under the lock, so the plan is made from the
    freshest view of the children."""

    def __init__(self, kube: Kube, settings: Settings, status_writer: StatusWriter, logger: logging.Logger):
        self._kube = kube
        self._settings = settings
        self._status_writer = status_writer
        self._logger = logger
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        # Rendering costs milliseconds and child watch events ask for it often: keep the last result per
        # MLModel, keyed by everything rendering reads (name, namespace, uid, spec).
        self._rendered: dict[tuple[str, str], tuple[str, list[dict]]] = {}

    def _desired(self, mlmodel: dict) -> list[dict]:
        meta = mlmodel["metadata"]
        key = (meta["namespace"], meta["name"])
        fingerprint = json.dumps([meta.get("uid"), mlmodel["spec"]], sort_keys=True)
        cached = self._rendered.get(key)
        if cached and cached[0] == fingerprint:
            return cached[1]
        desired = render.render_children(mlmodel, self._settings)
        self._rendered[key] = (fingerprint, desired)
        return desired

    def _lock(self, mlmodel: dict) -> threading.Lock:
        key = (mlmodel["metadata"]["namespace"], mlmodel["metadata"]["name"])
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def reconcile(self, mlmodel: dict, observe: Callable[[], Observed]) -> None:
        """Converge the children and the status; raises KubeError only when a retry may help."""
        with self._lock(mlmodel):
            observed = observe()
            try:
                children = apply_children(mlmodel["metadata"]["namespace"], self._desired(mlmodel),
                                          observed.children, self._kube)
                compute = status_of(children, observed.pods, self._settings)
            except KubeError as error:
                if is_retryable(error):
                    raise
                self._logger.error("cannot apply the serving stack of %s/%s: %s",
                                   mlmodel["metadata"]["namespace"], mlmodel["metadata"]["name"], error)
                compute = status_of(observed.children, observed.pods, self._settings,
                                    status.ReconcileFailure("InvalidChild", str(error)))
            self._status_writer.update(mlmodel, compute)

    def refresh_status(self, mlmodel: dict, observe: Callable[[], Observed]) -> None:
        with self._lock(mlmodel):
            observed = observe()
            self._status_writer.update(mlmodel, status_of(observed.children, observed.pods, self._settings))

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)
            self._rendered.pop((namespace, name), None)
        self._status_writer.forget(namespace, name)


def is_retryable(error: KubeError) -> bool:
    """Conflicts, throttling and server-side trouble pass; anything else is a problem with the spec."""
    return error.status in (0, 409, 429) or error.status >= 500
