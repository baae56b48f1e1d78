"""The operator's log lines and metrics, as pure logic: what a reconcile reports, outage folding,
the metrics endpoint. (On the cluster: tests/cluster/test_observability.py.)"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import prometheus_client
import pytest

from mlmodel_operator import endpoint, metrics
from mlmodel_operator.change_log import changes_of
from mlmodel_operator.kube import _kind_of
from mlmodel_operator.logging_setup import KopfRetriesAsOutage
from mlmodel_operator.reachability import Reachability


def deployment(name="iris"):
    return {"kind": "Deployment", "metadata": {"name": name}}


def test_a_reconcile_line_names_each_child_and_why():
    live = {"Deployment": deployment(), "Ingress": {"kind": "Ingress"}}
    changes = changes_of([deployment(), {"kind": "Service"}], [("Ingress", "iris")], live, spec_changed=True)
    assert (
        changes.line("ns", "iris", 3)
        == "reconciled ns/iris (generation 3): Deployment updated for the new spec, Ingress deleted, Service created"
    )
    assert changes.repaired == []
    drift = changes_of([deployment()], [], live, spec_changed=False)
    assert drift.line("ns", "iris", 3) == "reconciled ns/iris (generation 3): Deployment drift repaired"
    assert drift.repaired == ["Deployment"]
    assert not changes_of([], [], live, spec_changed=False)  # a no-op says nothing


class Clock:
    now = 100.0

    def __call__(self):
        return self.now


def test_an_outage_is_one_line_and_its_end_another(caplog):
    clock = Clock()
    reachability = Reachability(logging.getLogger("test.reachability"), clock=clock)
    with caplog.at_level(logging.INFO, logger="test.reachability"):
        reachability.succeeded()
        for _ in range(5):
            reachability.failed("connection refused")
        clock.now += 12
        reachability.succeeded()
        reachability.succeeded()
    assert [r.getMessage() for r in caplog.records] == [
        "the API server is unreachable (connection refused); retrying until it answers",
        "the API server answers again after 12 s unreachable",
    ]


@pytest.mark.parametrize(
    "message, dropped",
    [
        (
            "Request attempt #1/9 failed; will retry: GET https://127.0.0.1:1/api/v1/pods -> "
            "ClientConnectorError(ConnectionKey(host='127.0.0.1'), ConnectionRefusedError(111, 'Connect call failed'))",
            True,
        ),
        (
            "Request attempt #2/9 failed; will retry: GET https://x/apis -> ServerDisconnectedError('Server disconnected')",
            True,
        ),
        (
            "Request attempt #9/9 failed; escalating: GET https://x/apis -> ClientConnectorError()",
            False,
        ),  # still a problem
        ("Request attempt #1/9 failed; will retry: GET https://x/apis -> APIForbiddenError('forbidden')", False),
        ("Handler 'x' failed", False),
    ],
)
def test_kopf_retries_of_an_unreachable_api_server_fold_into_the_outage_line(message, dropped):
    events = []
    reachability = Reachability(logging.getLogger("test.fold"))
    reachability.failed = events.append
    record = logging.LogRecord("kopf._cogs.clients.watching", logging.ERROR, __file__, 1, message, None, None)
    assert KopfRetriesAsOutage(reachability).filter(record) is not dropped
    assert bool(events) is dropped


def test_a_server_error_just_after_the_recovery_belongs_to_the_outage_that_ended(caplog):
    clock = Clock()
    reachability = Reachability(logging.getLogger("test.settling"), clock=clock)
    retry = (
        "Request attempt #1/9 failed; will retry: GET https://x/apis/serving.mlops.dev/v1alpha1/mlmodels -> "
        "APIServerError('etcdserver: leader changed')"
    )

    def kopf_retry() -> bool:
        record = logging.LogRecord("kopf._cogs.clients.watching", logging.ERROR, __file__, 1, retry, None, None)
        return KopfRetriesAsOutage(reachability).filter(record)

    with caplog.at_level(logging.INFO, logger="test.settling"):
        reachability.failed("connection refused")
        clock.now += 18
        reachability.succeeded()
        clock.now += 1
        assert kopf_retry() is False  # folded: no second outage line
        clock.now += 60
        assert kopf_retry() is False  # long after: a new outage
    assert [r.getMessage() for r in caplog.records] == [
        "the API server is unreachable (connection refused); retrying until it answers",
        "the API server answers again after 18 s unreachable",
        "the API server is unreachable (APIServerError on kopf's watch); retrying until it answers",
    ]


@pytest.mark.parametrize(
    "path, kind",
    [
        ("/apis/apps/v1/namespaces/ns/deployments/iris", "Deployment"),
        ("/api/v1/namespaces/ns/services/iris", "Service"),
        ("/apis/serving.mlops.dev/v1alpha1/namespaces/ns/mlmodels/iris/status", "MLModel/status"),
        ("/api/v1/namespaces/ns/events", "Event"),
        ("/apis/coordination.k8s.io/v1/namespaces/mlmodel-system/leases/mlmodel-operator", "Lease"),
        ("/apis/example.com/v1/namespaces/ns/widgets", "other"),
    ],
)
def test_requests_are_counted_by_a_kind_from_a_fixed_set(path, kind):
    assert _kind_of(path) == kind


def test_the_endpoint_serves_metrics_and_readiness():
    ready = [True]
    registry = prometheus_client.CollectorRegistry()
    prometheus_client.Counter("mlmodel_operator_test_total", "a test counter", registry=registry).inc()
    server = endpoint.serve("127.0.0.1:0", registry, lambda: ready[0])
    port = server.server_address[1]
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            assert "mlmodel_operator_test_total 1.0" in response.read().decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            assert response.status == 200
        ready[0] = False
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert refused.value.code == 503
    finally:
        server.shutdown()


def test_mlmodels_are_counted_by_ready_status_and_reason():
    def mlmodel(status, reason):
        return {"status": {"conditions": [{"type": "Ready", "status": status, "reason": reason}]}}

    collector = metrics.MLModelsByReadiness(
        lambda: [
            mlmodel("True", "Ready"),
            mlmodel("False", "ImagePullBackOff"),
            mlmodel("False", "ImagePullBackOff"),
            {},
        ]
    )
    family, stalled = collector.collect()
    assert stalled.samples == []
    assert {tuple(sorted(s.labels.items())): s.value for s in family.samples} == {
        (("ready", "False"), ("reason", "ImagePullBackOff")): 2,
        (("ready", "True"), ("reason", "Ready")): 1,
        (("ready", "Unknown"), ("reason", "")): 1,
    }


def test_stalled_mlmodels_are_counted_by_reason():
    stuck = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "OOMKilled"},
                {"type": "Stalled", "status": "True", "reason": "OOMKilled"},
            ]
        }
    }
    _family, stalled = metrics.MLModelsByReadiness(lambda: [stuck, stuck]).collect()
    assert [(s.labels, s.value) for s in stalled.samples] == [({"reason": "OOMKilled"}, 2)]
