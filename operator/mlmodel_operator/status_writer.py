"""Writes an MLModel's status when, and only when, it changed; posts Events on transitions.

Status is refreshed from two directions: a full reconcile (a new generation, a child's change, the
resync) and a status refresh (the watch events of the MLModel's Deployment and pods), so Ready follows
a rollout as it happens instead of at the next resync. One lock per MLModel keeps the two from racing,
and the last status written is remembered so neither compares against a status the watch has not
delivered yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mlmodel_operator.events import events_for_transition
from mlmodel_operator.kube import Kube, KubeError

logger = logging.getLogger(__name__)

EventPoster = Callable[[dict, str, str, str], None]  # (mlmodel, type, reason, message)


class StatusWriter:
    def __init__(self, kube: Kube, post_event: EventPoster):
        self._kube = kube
        self._post_event = post_event
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._written: dict[tuple[str, str], tuple[str, dict]] = {}  # key -> (uid, status)

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def update(self, mlmodel: dict, compute: Callable[[dict], dict]) -> bool:
        """Compute the status from `mlmodel` (with its latest known status) and write it if it changed."""
        meta = mlmodel["metadata"]
        key, uid = (meta["namespace"], meta["name"]), meta.get("uid", "")
        with self._lock(key):
            remembered = self._written.get(key)
            known = remembered[1] if remembered and remembered[0] == uid else (mlmodel.get("status") or {})
            new = compute({**mlmodel, "status": known})
            changes = {k: new.get(k) for k in set(known) | set(new) if known.get(k) != new.get(k)}
            if not changes:
                return False
            self._kube.patch_status(meta["namespace"], meta["name"], changes)
            self._written[key] = (uid, new)
        for event_type, reason, message in events_for_transition(known, new):
            # One line per transition (a failure with its reason, a rollout, Ready again), never per resync.
            logger.log(
                logging.WARNING if event_type == "Warning" else logging.INFO,
                "%s/%s %s: %s",
                *key,
                reason,
                message,
                extra={"mlmodel": "/".join(key), "reason": reason},
            )
            try:
                self._post_event(mlmodel, event_type, reason, message)
            except KubeError as error:  # an Event is a courtesy; the status above is the record
                if error.status != 0:  # an unreachable API server is logged once, as an outage
                    logger.warning("could not post the %s event for %s/%s: %s", reason, *key, error)
        return True

    def forget(self, namespace: str, name: str) -> None:
        with self._guard:
            self._locks.pop((namespace, name), None)
            self._written.pop((namespace, name), None)
