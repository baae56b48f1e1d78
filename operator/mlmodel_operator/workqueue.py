"""The operator's own work queue: work on an MLModel, asked for by many watch events, run once per burst.

Watch events do not reconcile in kopf's handler: they `request` work for the MLModel they concern, and the
requests for one MLModel coalesce while they wait; a few worker threads run them, one at a time per MLModel
(the resync takes the same per-MLModel lock). A periodic resync (`resync_forever`) is the level-triggered
safety net. Why not kopf's own mechanisms:

- kopf queues events per watched object, and one MLModel's work is asked for by a dozen other objects:
  creating one produces our own applies coming back, the Deployment controller's status updates, pods
  being scheduled and started. Run as they come, each in a thread of kopf's executor, they used to fill
  every thread with handlers waiting on the same MLModel's lock while other MLModels waited for one.
- kopf's timers and daemons (its periodic work) put a finalizer on every MLModel: it could then not be
  deleted while the operator is down. Owner references delete the children without one.
- kopf's create/update/resume handlers store the last handled configuration in an annotation of every
  MLModel: one more write and one more watch event per change, and after a restart a burst of such patches,
  each on a TLS connection of its own (kopf's client pool is unbounded). The MLModel's own watch events say
  all that is needed: a generation not reconciled yet (a create, a spec change, every MLModel after a restart).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable

from mlmodel_operator import metrics

Key = tuple[str, str]  # (namespace, name) of an MLModel
Run = Callable[[bool], None]  # does the work; True: a full reconcile was asked for, False: a status refresh


class WorkQueue:
    def __init__(self, workers: int, logger: logging.Logger):
        self._logger = logger
        self._guard = threading.Lock()
        self._locks: dict[Key, threading.Lock] = {}
        self._pending: dict[Key, bool] = {}  # requested and not started yet -> whether a full reconcile is wanted
        self._executor = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="mlmodel-reconcile")

    def lock(self, key: Key) -> threading.Lock:
        """The MLModel's lock: whoever works on it (a worker, the resync) holds it."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def request(self, key: Key, run: Run, *, full: bool) -> None:
        """Run soon, in a worker thread. Requests made while one is waiting to start join it (full if any of
        them is), so a burst of watch events costs one run, not one run each."""
        with self._guard:
            if key in self._pending:
                self._pending[key] = self._pending[key] or full
                return
            self._pending[key] = full
            metrics.QUEUE_DEPTH.set(len(self._pending))
        self._executor.submit(self._run, key, run, time.monotonic())

    def _run(self, key: Key, run: Run, requested_at: float) -> None:
        with self.lock(key):
            with self._guard:  # from here on, a new request queues a new run: it may carry news this one misses
                full = self._pending.pop(key, False)
                metrics.QUEUE_DEPTH.set(len(self._pending))
            metrics.QUEUE_WAIT.observe(time.monotonic() - requested_at)
            try:
                run(full)
            except Exception:  # a worker thread has nobody else to report to
                self._logger.exception("reconcile of %s/%s failed", *key)

    def forget(self, key: Key) -> None:
        with self._guard:
            self._locks.pop(key, None)

    def shutdown(self, *, wait: bool = False) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=not wait)


async def resync_forever(interval: float, wake: asyncio.Event, resync: Callable[[], None]) -> None:
    """Call `resync` (in a thread) every `interval` seconds, or at once when `wake` is set."""
    while True:
        try:
            await asyncio.wait_for(wake.wait(), interval)
        except TimeoutError:
            pass
        wake.clear()
        await asyncio.to_thread(resync)
