"""What a platform team sees of the operator on the local cluster: its log lines through an API server
outage, and its Prometheus metrics scraped while it works."""

from __future__ import annotations

import json
import re
import urllib.request

import localcluster
import pytest
from kube_helpers import get_json, wait_for
from prometheus_client.parser import text_string_to_metric_families
from test_operator import apply, mlmodel, ready

pytestmark = pytest.mark.cluster

OUTAGE = "the API server is unreachable"
RECOVERY = "the API server answers again"


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def leading(process) -> bool:
    return "leading: acquired the Lease" in process.log()


def warnings_and_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)", line)]


def test_an_api_server_outage_is_one_line_and_its_end_another(cluster, kubectl, namespace, start_operator):
    operator = start_operator()
    wait_for(lambda: leading(operator), 30, what="the operator to lead")
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    before = len(operator.log().splitlines())

    localcluster.restart_apiserver(cluster, downtime_seconds=4)
    apply(kubectl, namespace, mlmodel(replicas=2))
    wait_for(
        lambda: (get_json(kubectl, "deployment", "iris", "-n", namespace) or {}).get("spec", {}).get("replicas") == 2,
        timeout=40,
        what="the operator to act on a change made after the outage",
    )
    wait_for(lambda: RECOVERY in operator.log(), 20, what="the recovery line")
    operator.assert_alive()

    during = "\n".join(operator.log().splitlines()[before:])
    assert "Traceback" not in during
    assert during.count(OUTAGE) == 1 and during.count(RECOVERY) == 1, during
    # Besides the two lines, only a change of leadership may be worth a warning (an outage longer than the
    # renew deadline makes the leader step down until it can renew again).
    others = [
        line
        for line in warnings_and_errors(during)
        if OUTAGE not in line and RECOVERY not in line and "no longer leading" not in line
    ]
    assert not others, during
    assert "Request attempt" not in during


def test_metrics_are_scraped_while_the_operator_works(kubectl, namespace, start_operator):
    port = localcluster.free_port()
    operator = start_operator("--metrics-address", f"127.0.0.1:{port}")
    wait_for(lambda: leading(operator), 30, what="the operator to lead")
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    wait_for(
        lambda: value(scrape(port), "mlmodel_operator_mlmodels", ready="True", reason="Available") == 1,
        20,
        what="the MLModel counted as Ready",
    )
    samples = scrape(port)
    assert value(samples, "mlmodel_operator_reconciles_total", result="changed") >= 1
    assert value(samples, "mlmodel_operator_reconcile_duration_seconds_count") >= 1
    assert (
        value(samples, "mlmodel_operator_api_requests_total", verb="apply", kind="Deployment", code="200")
        + value(samples, "mlmodel_operator_api_requests_total", verb="apply", kind="Deployment", code="201")
        >= 1
    )
    assert value(samples, "mlmodel_operator_api_requests_total", verb="patch", kind="MLModel/status", code="200") >= 1
    assert value(samples, "mlmodel_operator_api_requests_total", verb="update", kind="Lease", code="200") >= 1
    assert value(samples, "mlmodel_operator_workqueue_wait_seconds_count") >= 1
    assert ("mlmodel_operator_workqueue_depth", ()) in samples
    assert value(samples, "mlmodel_operator_leader") == 1
    assert [key for key in samples if key[0] == "mlmodel_operator_build_info"]
    assert value(samples, "mlmodel_operator_drift_repairs_total", kind="Deployment") == 0

    kubectl("set", "image", "deployment/iris", "-n", namespace, "server=example.invalid/hand-edited:1")
    wait_for(
        lambda: value(scrape(port), "mlmodel_operator_drift_repairs_total", kind="Deployment") == 1,
        20,
        what="the drift repair counted",
    )
    assert "Deployment drift repaired" in operator.log()
    # One line per reconcile that changed something; none for the resyncs that found nothing to do.
    reconciled = [line for line in operator.log().splitlines() if "reconciled " in line]
    assert len(reconciled) == 2, reconciled


def test_json_logs_are_one_object_a_line_with_the_changes_as_fields(kubectl, namespace, start_operator):
    operator = start_operator("--log-format", "json")
    wait_for(lambda: leading(operator), 30, what="the operator to lead")
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    wait_for(lambda: "ModelReady" in operator.log(), 10, what="the ModelReady line")
    lines = [json.loads(line) for line in operator.log().splitlines() if line.strip()]  # every line is JSON
    assert all({"message", "timestamp", "severity"} <= line.keys() for line in lines)
    (reconciled,) = [line for line in lines if line["message"].startswith("reconciled ")]
    assert reconciled["mlmodel"] == f"{namespace}/iris"
    assert reconciled["children"] == {"Deployment": "created", "NetworkPolicy": "created", "Service": "created"}
    (became_ready,) = [line for line in lines if line.get("reason") == "ModelReady"]
    assert became_ready["severity"] == "info" and became_ready["mlmodel"] == f"{namespace}/iris"
