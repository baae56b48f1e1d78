"""Two real operator processes against the local cluster: one leads (holds the Lease), the other waits;
SIGKILL the leader and the standby takes over within 15 s; Events are posted once."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import localcluster
import operator_env
import pytest
from kube_helpers import get_json, wait_for
from test_operator import DIGEST_B, apply, condition, mlmodel, ready

pytestmark = pytest.mark.cluster

LEASE = ("lease", "mlmodel-operator", "-n", operator_env.OPERATOR_NAMESPACE)


def holder(kubectl) -> str | None:
    lease = get_json(kubectl, *LEASE)
    return ((lease or {}).get("spec") or {}).get("holderIdentity")


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def leading(process) -> bool:
    return "leading: acquired the Lease" in process.log()


@pytest.fixture
def pair(start_operator):
    """Two operators watching the same namespace, each with its own metrics port: the second one not started."""
    ports = [localcluster.free_port(), localcluster.free_port()]
    first = start_operator("--metrics-address", f"127.0.0.1:{ports[0]}")
    wait_for(lambda: leading(first), 30, what="the first operator to lead")
    return first, lambda: start_operator("--metrics-address", f"127.0.0.1:{ports[1]}"), ports


def standing_by(process) -> bool:
    return "standing by: the Lease" in process.log()


def test_a_second_operator_waits_and_takes_over_within_15_s_of_a_sigkill(kubectl, namespace, pair):
    first, start_second, (first_port, second_port) = pair
    second = start_second()
    wait_for(lambda: standing_by(second), 30, what="the second operator to stand by")
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True (from the leader)")
    wait_for(lambda: readyz(first_port) == 200 and readyz(second_port) == 200, 20, what="both replicas ready")
    time.sleep(3)  # a few renewals and a resync: the standby must stay put
    assert not leading(second)
    standby_lines = [line for line in second.log().splitlines() if "standing by" in line]
    assert len(standby_lines) == 1, second.log()
    assert "reconciled" not in second.log() and "applied" not in second.log()

    leader_before = holder(kubectl)
    first.kill()
    killed = time.monotonic()
    wait_for(lambda: leading(second), 20, interval=0.1, what="the standby to take the Lease")
    took_over = time.monotonic() - killed
    assert took_over < 15, f"failover took {took_over:.1f} s"
    assert holder(kubectl) not in (None, leader_before)
    # The new leader acts: a change made after the failover is applied.
    apply(kubectl, namespace, mlmodel(replicas=2))
    wait_for(
        lambda: (get_json(kubectl, "deployment", "iris", "-n", namespace) or {}).get("spec", {}).get("replicas") == 2,
        timeout=30,
        what="the new leader to apply a change",
    )
    print(f"failover after SIGKILL: {took_over:.1f} s")


def test_a_clean_stop_hands_the_lease_over_at_once(kubectl, namespace, pair):
    first, start_second, _ = pair
    second = start_second()
    wait_for(lambda: standing_by(second), 30, what="the second operator to stand by")
    first.stop()
    assert "released the Lease" in first.log()
    stopped = time.monotonic()
    wait_for(lambda: leading(second), 10, interval=0.1, what="the standby to take the released Lease")
    assert time.monotonic() - stopped < 5


def test_with_two_operators_each_event_is_posted_once(kubectl, namespace, pair):
    _first, start_second, _ = pair
    second = start_second()
    wait_for(lambda: standing_by(second), 30, what="the second operator to stand by")
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    message = f"sha256 mismatch: expected {DIGEST_B}, got {'c' * 64}"
    apply(
        kubectl,
        namespace,
        mlmodel(
            model={"uri": "https://models.example.com/iris-2.joblib", "sha256": DIGEST_B, "version": "2.0.0"},
            podLabels={"mlmodel.test/fail": "fetch"},
            podAnnotations={"mlmodel.test/exit-code": "10", "mlmodel.test/message": message},
        ),
    )
    wait_for(
        lambda: message in condition(get_json(kubectl, "mlmodel", "iris", "-n", namespace), "Ready").get("message", ""),
        what="Ready=False carrying the fetch message",
    )
    time.sleep(5)  # time for a duplicate to arrive
    events = get_json(kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.kind=MLModel")["items"]
    ours = [e for e in events if e["source"].get("component") == "mlmodel-operator"]
    assert ours, events
    by_reason = {}
    for event in ours:
        by_reason.setdefault((event["type"], event["reason"], event["message"]), []).append(event.get("count", 1))
    assert all(counts == [1] for counts in by_reason.values()), by_reason
