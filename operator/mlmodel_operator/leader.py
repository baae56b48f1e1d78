"""Leader election on a coordination.k8s.io/v1 Lease: of several operator replicas, one acts.

Every replica watches and keeps its indexes warm; only the holder of the Lease reconciles, writes
status and posts Events. The holder renews the Lease every `retry_period`; a standby takes it over
once it has seen no renewal for `lease_duration` (measured on its own clock from when it last saw the
record change, so clock skew between machines does not matter). A leader that could not renew for
`renew_deadline` (shorter than `lease_duration`) stops acting before anyone else may start, and
competes again like a standby. On a clean shutdown the leader releases the Lease so a standby takes
over at once.

The same rules as client-go's leaderelection package, written against the one Kube boundary.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlmodel_operator.kube import Kube, KubeError
from mlmodel_operator.reachability import UNAVAILABLE_STATUSES

LEASE_NAME = "mlmodel-operator"
# Where the Lease lives when the operator runs outside a pod (`make run`, the demo): the namespace the shipped
# install uses, so that a local operator and an installed one compete for the same Lease.
DEFAULT_LEASE_NAMESPACE = "mlmodel-system"
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class LeaseTiming:
    lease_duration: float = 10.0  # a standby takes over after this long without a renewal
    renew_deadline: float = 7.0  # a leader that could not renew for this long stops acting
    retry_period: float = 2.0  # how often the leader renews and a standby looks

    def __post_init__(self):
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("leader election needs retry_period < renew_deadline < lease_duration")


def default_identity() -> str:
    """The pod's name (its hostname) plus a random part: two processes on one machine are two candidates."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace() -> str:
    """The pod's namespace, else DEFAULT_LEASE_NAMESPACE (outside a pod)."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE_FILE.read_text().strip() or DEFAULT_LEASE_NAMESPACE
    except OSError:
        return DEFAULT_LEASE_NAMESPACE


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def claimed_spec(current: dict | None, identity: str, lease_duration: float, now: datetime) -> dict:
    """The Lease spec that makes `identity` the holder from `now` (pure): a renewal keeps the acquire time
    and the transition count; a takeover sets a new acquire time and counts one more transition."""
    current = current or {}
    renewing = current.get("holderIdentity") == identity
    transitions = int(current.get("leaseTransitions") or 0)
    return {
        "holderIdentity": identity,
        "leaseDurationSeconds": max(1, round(lease_duration)),
        "acquireTime": current.get("acquireTime") if renewing and current.get("acquireTime") else micro_time(now),
        "renewTime": micro_time(now),
        "leaseTransitions": transitions if renewing or not current else transitions + 1,
    }


def may_claim(spec: dict | None, identity: str, unchanged_for: float) -> bool:
    """Whether `identity` may write itself in as the holder (pure): the Lease is ours, free, or its holder
    has not renewed it for its whole duration (`unchanged_for`: seconds since this record was first seen)."""
    holder = (spec or {}).get("holderIdentity")
    if not holder or holder == identity:
        return True
    return unchanged_for > float((spec or {}).get("leaseDurationSeconds") or 0)


@dataclass
class _Observed:
    record: dict | None = None  # the Lease spec last read or written
    since: float = 0.0  # monotonic time it was first seen in this form
    resource_version: str | None = None
    exists: bool = False
    holder_logged: str | None = None  # the holder last named in a "standing by" line


class LeaderElector:
    """Runs the election in a thread of its own. `on_started_leading` and `on_stopped_leading` are called from
    that thread; `is_leader` is safe to read from anywhere."""

    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        logger: logging.Logger,
        *,
        timing: LeaseTiming = LeaseTiming(),
        on_started_leading: Callable[[], None] = lambda: None,
        on_stopped_leading: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._kube = kube
        self.namespace, self.name, self.identity = namespace, name, identity
        self._logger = logger
        self._timing = timing
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._clock = clock
        self._observed = _Observed()
        self._leading = threading.Event()
        self._stopping = threading.Event()
        self._last_renewal = 0.0
        self._last_answer: float | None = None  # monotonic time the API server last answered about the Lease
        self._thread: threading.Thread | None = None
        self._problem_logged: str | None = None
        self._problem_since: tuple[str, float] | None = None  # the current problem and when it was first met

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    @property
    def lease(self) -> str:
        return f"{self.namespace}/{self.name}"

    def healthy(self) -> bool:
        """Leading, or standing by with a view of the Lease at most one lease duration old."""
        answered = self._last_answer
        return self.is_leader or (answered is not None and self._clock() - answered <= self._timing.lease_duration)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self._thread.start()

    def stop(self, release: bool = True) -> None:
        """Stop competing; a leader gives the Lease up so that a standby need not wait it out."""
        self._stopping.set()
        if self._thread:
            self._thread.join(self._timing.retry_period + 5)
        if self.is_leader:
            self._step_down("shutting down", standing_by=False)
            if release:
                self._release()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.try_once()
            self._stopping.wait(self._timing.retry_period)

    def try_once(self) -> None:
        """One round: read the Lease, claim or renew it when allowed; step down when renewals stopped working."""
        try:
            claimed = self._try_claim()
        except KubeError as error:
            claimed = False
            self._log_problem(error)
        now = self._clock()
        if claimed:
            self._last_renewal = now
            self._problem_logged, self._problem_since = None, None
            if not self.is_leader:
                self._leading.set()
                self._logger.info("leading: acquired the Lease %s as %s; reconciling", self.lease, self.identity)
                self._on_started()
        elif self.is_leader and (holder := (self._observed.record or {}).get("holderIdentity")) not in (
            None,
            self.identity,
        ):
            self._step_down(f"the Lease {self.lease} is held by {holder} now")
        elif self.is_leader and now - self._last_renewal > self._timing.renew_deadline:
            self._step_down(f"could not renew the Lease {self.lease} for {self._timing.renew_deadline:.0f} s")

    def _try_claim(self) -> bool:
        timeout = self._timing.retry_period
        lease = self._kube.get_lease(self.namespace, self.name, timeout=timeout)
        self._answered()
        spec = (lease or {}).get("spec") or {}
        self._see(spec, lease is not None, (lease or {}).get("metadata", {}).get("resourceVersion"))
        if not may_claim(spec, self.identity, self._clock() - self._observed.since):
            self._log_standby(spec.get("holderIdentity"))
            return False
        new_spec = claimed_spec(spec if lease else None, self.identity, self._timing.lease_duration, datetime.now(UTC))
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": new_spec,
        }
        try:
            if lease is None:
                written = self._kube.create_lease(body, timeout=timeout)
            else:
                body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
                written = self._kube.replace_lease(body, timeout=timeout)
        except KubeError as error:
            if error.status == 409:
                return False  # someone else wrote it first: look again next round
            raise
        self._answered()
        self._see(written["spec"], True, written["metadata"].get("resourceVersion"))
        return True

    def _see(self, spec: dict, exists: bool, resource_version: str | None) -> None:
        if spec != self._observed.record or exists != self._observed.exists:
            self._observed.record, self._observed.since, self._observed.exists = dict(spec), self._clock(), exists
        self._observed.resource_version = resource_version

    def _answered(self) -> None:
        self._last_answer = self._clock()

    def _log_standby(self, holder: str | None) -> None:
        if holder != self._observed.holder_logged:
            self._observed.holder_logged = holder
            self._logger.info(
                "standing by: the Lease %s is held by %s; taking over if it is not renewed for %s s",
                self.lease,
                holder,
                (self._observed.record or {}).get("leaseDurationSeconds"),
            )

    def _log_problem(self, error: KubeError) -> None:
        """An unreachable API server is logged once by the Kube boundary; a refusal (RBAC, a missing namespace)
        here, once, when it lasted a lease duration (a restarted API server refuses for a moment)."""
        if error.status in UNAVAILABLE_STATUSES:
            return
        problem, now = f"{error.status} {error.reason}", self._clock()
        if self._problem_since is None or self._problem_since[0] != problem:
            self._problem_since = (problem, now)
        if problem != self._problem_logged and now - self._problem_since[1] >= self._timing.lease_duration:
            self._problem_logged = problem
            self._logger.error("cannot read or write the Lease %s, retrying: %s", self.lease, error)

    def _step_down(self, why: str, standing_by: bool = True) -> None:
        self._leading.clear()
        self._observed.holder_logged = None
        self._logger.warning("no longer leading (%s)%s", why, "; standing by" if standing_by else "")
        self._on_stopped()

    def _release(self) -> None:
        try:
            lease = self._kube.get_lease(self.namespace, self.name, timeout=self._timing.retry_period)
            if not lease or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            lease["spec"] = {
                **lease["spec"],
                "holderIdentity": None,
                "leaseDurationSeconds": 1,
                "renewTime": micro_time(datetime.now(UTC)),
            }
            self._kube.replace_lease(lease, timeout=self._timing.retry_period)
            self._logger.info("released the Lease %s", self.lease)
        except KubeError as error:
            self._logger.warning(
                "could not release the Lease %s (a standby takes over when it expires): %s", self.lease, error
            )
