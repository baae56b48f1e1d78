"""Every kopf decorator of the operator, and nothing else: the logic lives in reconcile.py.

No finalizer is ever put on an MLModel (kopf's timers would need one): owner references delete
the children, and an MLModel can be deleted even while the operator is down. The periodic resync
is a task of the operator's own instead.

kopf's create/update/resume handlers are not used either: they made kopf patch an annotation
(its last-handled configuration) onto every MLModel after every change, one more write per change,
one more watch event, and a burst of concurrent requests each opening a TLS connection of its own
(kopf's client pool is unbounded). The MLModel's watch events say all that is needed: a generation
the reconciler has not seen yet (create, a spec change, and every MLModel once after a restart).

Every replica runs the watches and keeps its indexes warm; only the holder of the Lease (leader.py)
acts on them. A replica that becomes the leader reconciles every MLModel at once, since it ignored
their events while it stood by.
"""

from __future__ import annotations

import asyncio
import logging

import kopf
import prometheus_client

from mlmodel_contract import api
from mlmodel_operator import endpoint, labels, leader, metrics
from mlmodel_operator.drift import fields_worth_keeping
from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, Kube, KubeError, load_api_client
from mlmodel_operator.leader import LeaderElector
from mlmodel_operator.reachability import Reachability
from mlmodel_operator.reconcile import Observed, Reconciler, compact
from mlmodel_operator.settings import Settings
from mlmodel_operator.status_writer import StatusWriter

GROUP, VERSION, PLURAL = api.GROUP, api.VERSION, api.PLURAL
RESYNC_INTERVAL_SECONDS = 10.0  # a safety net: children's watch events trigger repairs at once
MANAGED = {"app.kubernetes.io/managed-by": labels.MANAGED_BY}
INSTANCE_LABEL = "app.kubernetes.io/instance"
OWNED = {**MANAGED, INSTANCE_LABEL: kopf.PRESENT}
logger = logging.getLogger("mlmodel_operator")


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **indexes) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.reporting_component = FIELD_MANAGER
    settings.watching.server_timeout = 300
    reachability = memo.get("reachability") or Reachability(logger)
    kube = Kube(load_api_client(), reachability)
    memo.reconciler = Reconciler(kube, Settings.from_env(), StatusWriter(kube, kube.post_event), logger)
    memo.indexes = indexes  # live views, filled by the watches
    memo.wake = asyncio.Event()  # set to resync at once rather than at the next interval
    memo.elector = None
    if memo.get("lease"):
        loop = asyncio.get_running_loop()

        def started_leading() -> None:
            metrics.LEADER.set(1)
            loop.call_soon_threadsafe(memo.wake.set)  # reconcile everything now: the standby ignored all events

        def stopped_leading() -> None:
            metrics.LEADER.set(0)
            memo.reconciler.forget_all()

        memo.elector = LeaderElector(
            # A client of its own: renewals must not queue behind a burst of reconciles.
            Kube(load_api_client(), reachability),
            *memo.lease,
            leader.default_identity(),
            logger,
            on_started_leading=started_leading,
            on_stopped_leading=stopped_leading,
        )
        memo.elector.start()
    else:
        metrics.LEADER.set(1)
    if memo.get("metrics_address"):
        metrics.watch_mlmodels(lambda: [owner for found in indexes["live_mlmodels"].values() for owner in found])
        memo.endpoint = endpoint.serve(memo.metrics_address, prometheus_client.REGISTRY, lambda: _ready(memo))
    memo.resync = asyncio.create_task(_resync_forever(memo))


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_) -> None:
    memo.resync.cancel()
    memo.reconciler.shutdown()
    if memo.elector:
        await asyncio.to_thread(memo.elector.stop)


def _acting(memo: kopf.Memo) -> bool:
    """Whether this replica may write: it holds the Lease (or runs without leader election)."""
    return memo.elector is None or memo.elector.is_leader


def _ready(memo: kopf.Memo) -> bool:
    return memo.elector is None or memo.elector.healthy()


# --- indexes: the live MLModels, children and pods, kept current by watches --------------------


def _slim(body: kopf.Body, *, child: bool = False) -> dict:
    """A compact copy (see `compact`) keeping only the operator's own managedFields entry (the rest are large
    and unused), and of a child what other managers added to it (hand edits to revert)."""
    obj = compact(dict(body))
    meta = obj.get("metadata", {})
    if child:
        meta["managedFields"] = fields_worth_keeping(meta.get("managedFields") or [], FIELD_MANAGER)
    else:
        meta["managedFields"] = [m for m in meta.get("managedFields") or [] if m.get("manager") == FIELD_MANAGER]
    return obj


@kopf.index(GROUP, VERSION, PLURAL)
def live_mlmodels(namespace: str, name: str, body: kopf.Body, **_):
    return {(namespace, name): _slim(body)}


@kopf.index("", "v1", "pods", labels=OWNED)
def live_pods(namespace: str, labels: kopf.Labels, meta: kopf.Meta, status: kopf.Status, **_):
    """Status reads a pod's name, annotations, deletion mark and status; its spec is large and unused."""
    kept_meta = {k: compact(meta.get(k)) for k in ("name", "annotations", "deletionTimestamp") if k in meta}
    return {(namespace, labels[INSTANCE_LABEL]): {"metadata": kept_meta, "status": compact(dict(status))}}


def _child_index(namespace: str, labels: kopf.Labels, body: kopf.Body, **_):
    return {(namespace, labels[INSTANCE_LABEL]): _slim(body, child=True)}


async def _child_changed(event: kopf.RawEvent, namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_) -> None:
    """A child was changed or deleted (by us, a controller or a person): converge its owner soon.

    Most events are our own applies coming back, or a controller updating a child's status: when the
    child still carries everything we want in it, there is nothing to apply. Only the Deployment's
    changes can move the owner's status (a rollout); the other kinds' status is not read.
    """
    instance = labels[INSTANCE_LABEL]
    child = event["object"]
    if event["type"] != "DELETED" and memo.reconciler.child_converged(namespace, instance, child):
        if child.get("kind") == "Deployment":
            _request(memo, namespace, instance, full=False)
        return
    _request(memo, namespace, instance, full=True)


def _request(memo: kopf.Memo, namespace: str, name: str, *, full: bool) -> None:
    if _acting(memo) and _owner(memo.indexes, namespace, name):
        memo.reconciler.request(namespace, name, lambda: _resolve(memo.indexes, namespace, name), full=full)


def _resolve(indexes, namespace: str, name: str):
    """The owner and its observer as the indexes know them when the requested work starts (None: gone)."""
    owner = _owner(indexes, namespace, name)
    return (owner, lambda: _observed(indexes, namespace, name)) if owner else None


for _resource in CHILD_TYPES.values():
    _group, _, _version = _resource.group_version.rpartition("/")
    kopf.index(_group, _version, _resource.plural, labels=OWNED, id=f"live_{_resource.plural}")(_child_index)
    kopf.on.event(_group, _version, _resource.plural, labels=OWNED, id=f"{_resource.plural}_changed")(_child_changed)


def _owner(indexes, namespace: str, name: str) -> dict | None:
    found = list(indexes["live_mlmodels"].get((namespace, name), []))
    if not found or found[0]["metadata"].get("deletionTimestamp"):
        return None
    return found[0]


def _observed(indexes, namespace: str, name: str) -> Observed:
    key = (namespace, name)
    children = {}
    for kind, resource in CHILD_TYPES.items():
        found = list(indexes[f"live_{resource.plural}"].get(key, []))
        if found:
            children[kind] = found[0]
    return Observed(children=children, pods=list(indexes["live_pods"].get(key, [])))


# --- the reconcile triggers --------------------------------------------------------------------


@kopf.on.event("", "v1", "pods", labels=OWNED)
async def pod_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_) -> None:
    """A rollout moved: refresh the owner's status now rather than at the next resync."""
    _request(memo, namespace, labels[INSTANCE_LABEL], full=False)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def mlmodel_event(event: kopf.RawEvent, namespace: str, name: str, memo: kopf.Memo, **_) -> None:
    """Created, changed, or listed at startup: reconcile each generation once (status writes come back
    as events of the same generation and cost nothing)."""
    if event["type"] == "DELETED":
        memo.reconciler.forget(namespace, name)
    elif not memo.reconciler.has_reconciled(event["object"]):
        _request(memo, namespace, name, full=True)


async def _resync_forever(memo: kopf.Memo) -> None:
    while True:
        try:
            await asyncio.wait_for(memo.wake.wait(), RESYNC_INTERVAL_SECONDS)
        except TimeoutError:
            pass
        memo.wake.clear()
        if _acting(memo):
            await asyncio.to_thread(_resync_all, memo)


def _resync_all(memo: kopf.Memo) -> None:
    """Level-triggered safety net: converge every known MLModel (a no-op makes no API call)."""
    for namespace, name in list(memo.indexes["live_mlmodels"].keys()):
        if not _acting(memo):  # stepped down meanwhile
            return
        owner = _owner(memo.indexes, namespace, name)
        if not owner:
            continue
        try:
            memo.reconciler.reconcile(
                owner, lambda namespace=namespace, name=name: _observed(memo.indexes, namespace, name)
            )
        except KubeError as error:
            if error.status != 0:  # an unreachable API server is logged once, as an outage
                logger.warning("resync of %s/%s failed, retrying later: %s", namespace, name, error)
        except Exception:  # one broken object must not stop the resync of the others
            logger.exception("resync of %s/%s failed", namespace, name)
