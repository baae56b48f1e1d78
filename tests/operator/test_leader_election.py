"""Leader election's rules (operator/mlmodel_operator/leader.py), on an in-memory Lease store with a fake
clock; the real thing, two operator processes on the local cluster, is in tests/cluster."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

import pytest

from mlmodel_operator.kube import KubeError
from mlmodel_operator.leader import LeaderElector, LeaseTiming, claimed_spec, may_claim

NOW = datetime(2026, 12, 1, 9, 0, 0, 123456, tzinfo=UTC)


def test_a_renewal_keeps_the_acquire_time_and_a_takeover_counts_a_transition():
    first = claimed_spec(None, "a", 10, NOW)
    assert first == {
        "holderIdentity": "a",
        "leaseDurationSeconds": 10,
        "acquireTime": "2026-12-01T09:00:00.123456Z",
        "renewTime": "2026-12-01T09:00:00.123456Z",
        "leaseTransitions": 0,
    }
    later = NOW.replace(second=5)
    renewed = claimed_spec(first, "a", 10, later)
    assert renewed["acquireTime"] == first["acquireTime"] and renewed["renewTime"] == "2026-12-01T09:00:05.123456Z"
    assert renewed["leaseTransitions"] == 0
    taken = claimed_spec(renewed, "b", 10, later)
    assert (
        taken["holderIdentity"] == "b" and taken["acquireTime"] == taken["renewTime"] and taken["leaseTransitions"] == 1
    )


@pytest.mark.parametrize(
    "spec, unchanged_for, allowed",
    [
        (None, 0, True),  # no Lease yet
        ({}, 0, True),
        ({"holderIdentity": None, "leaseDurationSeconds": 1}, 0, True),  # released
        ({"holderIdentity": "me", "leaseDurationSeconds": 10}, 0, True),  # our own
        ({"holderIdentity": "other", "leaseDurationSeconds": 10}, 9.9, False),  # still valid
        ({"holderIdentity": "other", "leaseDurationSeconds": 10}, 10.1, True),  # not renewed for its duration
    ],
)
def test_who_may_claim(spec, unchanged_for, allowed):
    assert may_claim(spec, "me", unchanged_for) is allowed


def test_timings_must_leave_the_leader_time_to_stop_before_a_standby_starts():
    with pytest.raises(ValueError):
        LeaseTiming(lease_duration=10, renew_deadline=10, retry_period=2)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LeaseStore:
    """The API server's part: optimistic concurrency on resourceVersion, and an off switch."""

    def __init__(self):
        self.lease: dict | None = None
        self.version = 0
        self.down = False

    def _check(self):
        if self.down:
            raise KubeError(0, "Unavailable", "connection refused")

    def get_lease(self, namespace, name, *, timeout):
        self._check()
        return copy.deepcopy(self.lease)

    def create_lease(self, lease, *, timeout):
        self._check()
        if self.lease is not None:
            raise KubeError(409, "AlreadyExists", "exists")
        return self._store(lease)

    def replace_lease(self, lease, *, timeout):
        self._check()
        if lease["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise KubeError(409, "Conflict", "the object has been modified")
        return self._store(lease)

    def _store(self, lease):
        self.version += 1
        self.lease = copy.deepcopy(lease)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


def elector(store, clock, identity, events):
    return LeaderElector(
        store,
        "mlmodel-system",
        "mlmodel-operator",
        identity,
        logging.getLogger(f"test.{identity}"),
        clock=clock,
        on_started_leading=lambda: events.append(f"{identity} started"),
        on_stopped_leading=lambda: events.append(f"{identity} stopped"),
    )


def test_one_leads_the_other_waits_out_the_lease_then_takes_over():
    store, clock, events = LeaseStore(), Clock(), []
    a, b = elector(store, clock, "a", events), elector(store, clock, "b", events)
    a.try_once()
    b.try_once()
    assert a.is_leader and not b.is_leader and events == ["a started"]
    assert b.healthy()  # a standby that can read the Lease is ready
    for _ in range(10):  # a renews every 2 s: b never takes over
        clock.now += 2
        a.try_once()
        b.try_once()
    assert a.is_leader and not b.is_leader
    # a dies without a word: b takes over once the record stayed unchanged for the lease duration
    for _ in range(5):
        clock.now += 2
        b.try_once()
    assert not b.is_leader  # 10 s: not yet more than the duration
    clock.now += 2
    b.try_once()
    assert b.is_leader and store.lease["spec"]["holderIdentity"] == "b" and store.lease["spec"]["leaseTransitions"] == 1
    assert events == ["a started", "b started"]


def test_a_leader_that_cannot_renew_steps_down_before_the_lease_expires_and_leads_again_after():
    store, clock, events = LeaseStore(), Clock(), []
    a = elector(store, clock, "a", events)
    a.try_once()
    store.down = True
    clock.now += 6
    a.try_once()
    assert a.is_leader  # within the renew deadline (7 s)
    clock.now += 2
    a.try_once()
    assert not a.is_leader and events == ["a started", "a stopped"]
    clock.now += 3
    a.try_once()
    assert not a.healthy()  # no answer about the Lease for more than its duration: not ready
    store.down = False
    clock.now += 2
    a.try_once()  # the Lease still names a: it renews at once
    assert a.is_leader and events == ["a started", "a stopped", "a started"]


def test_a_clean_stop_releases_the_lease_so_a_standby_need_not_wait():
    store, clock, events = LeaseStore(), Clock(), []
    a, b = elector(store, clock, "a", events), elector(store, clock, "b", events)
    a.try_once()
    b.try_once()
    a.stop()
    assert not store.lease["spec"].get("holderIdentity")
    b.try_once()
    assert b.is_leader and events == ["a started", "a stopped", "b started"]


def test_two_claims_of_one_free_lease_make_one_leader():
    store, clock, events = LeaseStore(), Clock(), []
    a, b = elector(store, clock, "a", events), elector(store, clock, "b", events)
    original_get = store.get_lease
    seen = original_get("", "", timeout=1)
    store.get_lease = lambda *args, **kwargs: copy.deepcopy(seen)  # both read "no Lease" before either writes
    a.try_once()
    b.try_once()
    assert [a.is_leader, b.is_leader] == [True, False]


def test_a_leader_that_finds_another_holder_steps_down_at_once():
    store, clock, events = LeaseStore(), Clock(), []
    a = elector(store, clock, "a", events)
    a.try_once()
    store.lease["spec"]["holderIdentity"] = "b"  # b took it (a's renewals were lost on the way)
    store._store(store.lease)
    clock.now += 2
    a.try_once()
    assert not a.is_leader and events == ["a started", "a stopped"]
