"""Every kopf decorator of the operator, and nothing else: the logic lives in reconcile.py."""

from __future__ import annotations

import copy
import logging

import kopf

from mlmodel_operator import labels, status
from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, Kube, KubeError, load_api_client
from mlmodel_operator.reconcile import Observed, apply_children, is_retryable, status_of
from mlmodel_operator.settings import Settings
from mlmodel_operator.status_writer import StatusWriter

GROUP, VERSION, PLURAL = "serving.mlops.dev", "v1alpha1", "mlmodels"
RESYNC_INTERVAL_SECONDS = 5.0  # drift on a child is repaired within two intervals
MANAGED = {"app.kubernetes.io/managed-by": labels.MANAGED_BY}
INSTANCE_LABEL = "app.kubernetes.io/instance"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.reporting_component = FIELD_MANAGER
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 8
    memo.kube = Kube(load_api_client())
    memo.settings = Settings.from_env()
    memo.status_writer = StatusWriter(memo.kube, _post_event)


# --- indexes: the live children and pods of each MLModel, kept current by watches -------------


def _slim(body: kopf.Body) -> dict:
    """A plain copy keeping only the operator's own managedFields entry (the rest are large and unused)."""
    obj = copy.deepcopy(dict(body))
    meta = obj.get("metadata", {})
    meta["managedFields"] = [m for m in meta.get("managedFields") or [] if m.get("manager") == FIELD_MANAGER]
    return obj


def _register_child_index(kind: str) -> None:
    resource = CHILD_TYPES[kind]
    group, _, version = resource.group_version.rpartition("/")

    def index_child(namespace: str, labels: kopf.Labels, body: kopf.Body, **_):
        return {(namespace, labels[INSTANCE_LABEL]): _slim(body)}

    kopf.index(group or "", version, resource.plural, labels={**MANAGED, INSTANCE_LABEL: kopf.PRESENT},
               id=f"live_{resource.plural}")(index_child)


for _kind in CHILD_TYPES:
    _register_child_index(_kind)


@kopf.index("", "v1", "pods", labels={**MANAGED, INSTANCE_LABEL: kopf.PRESENT})
def live_pods(namespace: str, labels: kopf.Labels, body: kopf.Body, **_):
    return {(namespace, labels[INSTANCE_LABEL]): _slim(body)}


@kopf.index(GROUP, VERSION, PLURAL)
def live_mlmodels(namespace: str, name: str, body: kopf.Body, **_):
    return {(namespace, name): _slim(body)}


def _observed(namespace: str, name: str, indexes: dict) -> Observed:
    key = (namespace, name)
    children = {}
    for kind, resource in CHILD_TYPES.items():
        found = list(indexes[f"live_{resource.plural}"].get(key, []))
        if found:
            children[kind] = found[0]
    return Observed(children=children, pods=list(indexes["live_pods"].get(key, [])))


# --- the reconcile loop ------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
@kopf.timer(GROUP, VERSION, PLURAL, interval=RESYNC_INTERVAL_SECONDS)
def reconcile_mlmodel(body: kopf.Body, namespace: str, name: str, memo: kopf.Memo,
                      logger: logging.Logger, **indexes) -> None:
    mlmodel = _plain(body)
    observed = _observed(namespace, name, indexes)
    try:
        children = apply_children(mlmodel, observed.children, memo.kube, memo.settings)
        compute = status_of(children, observed.pods, memo.settings)
    except KubeError as error:
        if is_retryable(error):
            raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=5) from error
        logger.error("cannot apply the serving stack: %s", error)
        compute = status_of(observed.children, observed.pods, memo.settings,
                            status.ReconcileFailure("InvalidChild", str(error)))
    memo.status_writer.update(mlmodel, compute)


@kopf.on.event("apps", "v1", "deployments", labels={**MANAGED, INSTANCE_LABEL: kopf.PRESENT})
@kopf.on.event("", "v1", "pods", labels={**MANAGED, INSTANCE_LABEL: kopf.PRESENT})
def child_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **indexes) -> None:
    """A rollout moved: refresh the owner's status now rather than at the next resync."""
    name = labels[INSTANCE_LABEL]
    owners = list(indexes["live_mlmodels"].get((namespace, name), []))
    if not owners or owners[0]["metadata"].get("deletionTimestamp"):
        return
    observed = _observed(namespace, name, indexes)
    memo.status_writer.update(owners[0], status_of(observed.children, observed.pods, memo.settings))


@kopf.on.event(GROUP, VERSION, PLURAL)
def mlmodel_event(event: kopf.RawEvent, namespace: str, name: str, memo: kopf.Memo, **_) -> None:
    if event["type"] == "DELETED":
        memo.status_writer.forget(namespace, name)


def _plain(body: kopf.Body) -> dict:
    return copy.deepcopy(dict(body))


def _post_event(mlmodel: dict, event_type: str, reason: str, message: str) -> None:
    kopf.event(mlmodel, type=event_type, reason=reason, message=message)
