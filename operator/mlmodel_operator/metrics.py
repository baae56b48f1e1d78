"""The operator's Prometheus metrics (served by endpoint.py on --metrics-address).

One prefix, base units, `_total` counters, `_seconds` histograms; every label value comes from a
fixed set (verbs, child kinds, HTTP codes, the operator's own condition reasons). The requests counted
are the operator's own (applies, status, Events, the Lease); kopf's watch streams are not.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "mlmodel_operator_"

# result: changed (children written), unchanged (nothing to write), invalid (the API server refused a child:
# reported in status, not retried), error (a retry may help: conflicts, throttling, outages).
RECONCILE_RESULTS = ("changed", "unchanged", "invalid", "error")
RECONCILES = Counter(PREFIX + "reconciles_total", "Full reconciles of an MLModel, by result", ["result"])
RECONCILE_DURATION = Histogram(
    PREFIX + "reconcile_duration_seconds",
    "Time one full reconcile took",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
QUEUE_DEPTH = Gauge(PREFIX + "workqueue_depth", "MLModels waiting for a reconcile or a status refresh")
QUEUE_WAIT = Histogram(
    PREFIX + "workqueue_wait_seconds",
    "Time from a reconcile's request to its start",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30),
)
API_REQUESTS = Counter(
    PREFIX + "api_requests_total", "The operator's requests to the API server", ["verb", "kind", "code"]
)
DRIFT_REPAIRS = Counter(PREFIX + "drift_repairs_total", "Children put back after someone changed them", ["kind"])
LEADER = Gauge(PREFIX + "leader", "1 while this replica holds the Lease (or runs without leader election)")
BUILD_INFO = Gauge(PREFIX + "build_info", "The operator's version", ["version", "python_version"])

for _result in RECONCILE_RESULTS:
    RECONCILES.labels(_result)
BUILD_INFO.labels(metadata.version("mlmodel-operator"), platform.python_version()).set(1)

VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "apply": "apply"}


def api_request(method: str, kind: str, status: int) -> None:
    """`status` 0: no answer (connection refused, timeout)."""
    API_REQUESTS.labels(VERBS.get(method, "other"), kind, str(status) if status else "none").inc()


class MLModelsByReadiness(Collector):
    """mlmodel_operator_mlmodels{ready, reason} and mlmodel_operator_mlmodels_stalled{reason}: counted at scrape
    time from the operator's live view."""

    def __init__(self, mlmodels: Callable[[], Iterable[dict]]):
        self._mlmodels = mlmodels

    def collect(self):
        family = GaugeMetricFamily(
            PREFIX + "mlmodels", "MLModels by their Ready condition's status and reason", labels=["ready", "reason"]
        )
        stalled = GaugeMetricFamily(
            PREFIX + "mlmodels_stalled",
            "MLModels whose change cannot progress (Stalled=True), by reason",
            labels=["reason"],
        )
        counts: dict[tuple[str, str], int] = {}
        stalled_counts: dict[str, int] = {}
        for mlmodel in _snapshot(self._mlmodels):
            conditions = (mlmodel.get("status") or {}).get("conditions") or []
            ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
            key = (ready.get("status", "Unknown"), ready.get("reason", "") or "")
            counts[key] = counts.get(key, 0) + 1
            stuck = next((c for c in conditions if c.get("type") == "Stalled" and c.get("status") == "True"), None)
            if stuck:
                stalled_counts[stuck.get("reason", "")] = stalled_counts.get(stuck.get("reason", ""), 0) + 1
        for (status, reason), count in sorted(counts.items()):
            family.add_metric([status, reason], count)
        for reason, count in sorted(stalled_counts.items()):
            stalled.add_metric([reason], count)
        yield family
        yield stalled

    def describe(self):
        return []


def _snapshot(items: Callable[[], Iterable[dict]]) -> list[dict]:
    """A copy of a live view the event loop may change meanwhile (the scrape runs in a thread of its own)."""
    for _attempt in range(5):
        try:
            return list(items())
        except RuntimeError:  # changed size during iteration: look again
            continue
    return []


def watch_mlmodels(mlmodels: Callable[[], Iterable[dict]]) -> MLModelsByReadiness:
    collector = MLModelsByReadiness(mlmodels)
    REGISTRY.register(collector)
    return collector
