"""The chart's monitoring (off by default, one value each): PodMonitors, the alerts (every expression parsed
by a real PromQL parser, promql-parser), the Grafana dashboard (its JSON, every panel's query parsed)."""

from __future__ import annotations

import json
import re

import promql_parser
import pytest
from packaging_support import CHART, MONITORING_ON, documents, one, run

ALL_ON = [
    *MONITORING_ON,
    "--set",
    "monitoring.labels.release=kube-prometheus-stack",
]
OPERATOR_METRICS = {
    "mlmodel_operator_mlmodels",
    "mlmodel_operator_mlmodels_stalled",
    "mlmodel_operator_reconciles_total",
    "mlmodel_operator_leader",
    "mlmodel_operator_reconcile_duration_seconds_bucket",
    "mlmodel_operator_workqueue_wait_seconds_bucket",
    "mlmodel_operator_workqueue_depth",
    "mlmodel_operator_api_requests_total",
    "mlmodel_operator_drift_repairs_total",
}
SERVER_METRICS = {
    "mlmodel_http_requests_total",
    "mlmodel_http_request_duration_seconds_bucket",
    "mlmodel_predicted_rows_total",
    "mlmodel_batch_rows_bucket",
    "mlmodel_batch_requests_bucket",
}


def template(helm_bin: str, *args: str) -> list[dict]:
    return documents(run(helm_bin, "template", "mlmodel-operator", str(CHART), "--namespace", "mlmodel-system", *args))


def metric_names(expr: str) -> set[str]:
    return {name for name in re.findall(r"\b(mlmodel_[a-z_]+)\b", expr)}


def test_monitoring_is_off_by_default(helm_bin):
    kinds = {doc["kind"] for doc in template(helm_bin)}
    assert not kinds & {"PodMonitor", "PrometheusRule", "ConfigMap"}


def test_each_part_has_its_own_value(helm_bin):
    for value, kinds in (
        ("podMonitors", {"PodMonitor"}),
        ("prometheusRule", {"PrometheusRule"}),
        ("grafanaDashboard", {"ConfigMap"}),
    ):
        rendered = {doc["kind"] for doc in template(helm_bin, "--set", f"monitoring.{value}=true")}
        assert rendered & {"PodMonitor", "PrometheusRule", "ConfigMap"} == kinds, value


def test_pod_monitors_scrape_the_operator_and_every_mlmodel(helm_bin):
    docs = [doc for doc in template(helm_bin, *ALL_ON) if doc["kind"] == "PodMonitor"]
    operator, models = sorted(docs, key=lambda d: d["metadata"]["name"])
    assert operator["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "path": "/metrics"}]
    assert (
        operator["spec"]["selector"]["matchLabels"]
        == one(template(helm_bin), "Deployment")["spec"]["selector"]["matchLabels"]
    )
    assert models["spec"]["namespaceSelector"] == {"any": True}
    assert models["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/managed-by": "mlmodel-operator",
        "app.kubernetes.io/name": "mlmodel",
    }
    (endpoint,) = models["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["relabelings"][0]["targetLabel"] == "mlmodel"
    assert all(doc["metadata"]["labels"]["release"] == "kube-prometheus-stack" for doc in docs)
    watched = [
        doc for doc in template(helm_bin, *ALL_ON, "--set", "watchNamespaces={models}") if doc["kind"] == "PodMonitor"
    ]
    assert max(watched, key=lambda d: d["metadata"]["name"])["spec"]["namespaceSelector"] == {"matchNames": ["models"]}


def test_every_alert_parses_and_names_metrics_that_exist(helm_bin):
    rule = one(template(helm_bin, *ALL_ON, "--set-json", "monitoring.p99LatencySeconds=0.5"), "PrometheusRule")
    rules = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {r["alert"] for r in rules} == {
        "MLModelNotReady",
        "MLModelStalled",
        "MLModelOperatorReconcileErrors",
        "MLModelOperatorNoLeader",
        "MLModelHighErrorRate",
        "MLModelHighLatency",
    }
    for alert in rules:
        promql_parser.parse(alert["expr"])  # raises ValueError on a syntax error
        assert metric_names(alert["expr"]) <= OPERATOR_METRICS | SERVER_METRICS, alert["alert"]
        assert re.fullmatch(r"\d+m", alert["for"]) and alert["labels"]["severity"] in {"warning", "critical"}
        assert "{{" in alert["annotations"]["summary"] or alert["alert"].startswith("MLModelOperator")
    by_name = {r["alert"]: r for r in rules}
    assert by_name["MLModelNotReady"]["for"] == "10m"
    assert "> 0.5" in by_name["MLModelHighLatency"]["expr"]


def test_a_broken_expression_is_refused_by_the_parser():
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (le (rate(mlmodel_http_requests_total[5m]))")


def test_the_dashboard_is_valid_json_with_parsable_queries(helm_bin):
    config_map = one(template(helm_bin, *ALL_ON), "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["mlmodel.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "mlmodel.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            promql_parser.parse(target["expr"])
            used |= metric_names(target["expr"])
    assert used <= OPERATOR_METRICS | SERVER_METRICS
    # Requests, latency, errors, batch sizes and rows per model, and the operator's own panels.
    assert {
        "mlmodel_http_requests_total",
        "mlmodel_http_request_duration_seconds_bucket",
        "mlmodel_batch_rows_bucket",
        "mlmodel_predicted_rows_total",
        "mlmodel_operator_reconciles_total",
        "mlmodel_operator_mlmodels",
    } <= used


def test_the_monitoring_namespace_reaches_the_operator(helm_bin):
    (container,) = one(template(helm_bin, "--set", "monitoring.namespace=monitoring"), "Deployment")["spec"][
        "template"
    ]["spec"]["containers"]
    assert {"name": "MLMODEL_OPERATOR_MONITORING_NAMESPACE", "value": "monitoring"} in container["env"]
