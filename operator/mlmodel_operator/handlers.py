"""Every kopf decorator of the operator, and nothing else: the logic lives in reconcile.py."""

from __future__ import annotations

import copy
import logging

import kopf

from mlmodel_operator import labels, status
from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, Kube, KubeError, load_api_client
from mlmodel_operator.reconcile import Observed, is_retryable, reconcile
from mlmodel_operator.settings import Settings

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
def reconcile_mlmodel(body: kopf.Body, namespace: str, name: str, patch: kopf.Patch, memo: kopf.Memo,
                      logger: logging.Logger, **kwargs) -> None:
    mlmodel = copy.deepcopy(dict(body))
    try:
        outcome = reconcile(mlmodel, _observed(namespace, name, kwargs), memo.kube, memo.settings)
        new_status, events = outcome.status, outcome.events
    except KubeError as error:
        if is_retryable(error):
            raise kopf.TemporaryError(f"Kubernetes API: {error}", delay=5) from error
        new_status = status.failed_status(mlmodel, "InvalidChild", str(error), status.utcnow())
        events = status.events_for_transition(mlmodel.get("status") or {}, new_status)
        logger.error("cannot apply the serving stack: %s", error)
    _write_status(mlmodel.get("status") or {}, new_status, patch)
    for event_type, reason, message in events:
        kopf.event(body, type=event_type, reason=reason, message=message)


def _write_status(old: dict, new: dict, patch: kopf.Patch) -> None:
    """Patch only what changed; a resync that changes nothing writes nothing."""
    for key in set(old) | set(new):
        if old.get(key) != new.get(key):
            patch.status[key] = new.get(key)
