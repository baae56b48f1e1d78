"""Explicit checks of what the golden files contain: the pod contract (docs/pod-contract.md) and rollout rules."""

from __future__ import annotations

import copy
from typing import Any

from operator_cases import HERE, load_mlmodel

from mlmodel_operator.labels import ARTIFACT_ANNOTATION, TEMPLATE_HASH_ANNOTATION
from mlmodel_operator.render import render_child, render_children
from mlmodel_operator.settings import Settings


def deployment(mlmodel: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    return render_child("Deployment", mlmodel, settings or Settings())


def sample(name: str) -> dict[str, Any]:
    return load_mlmodel(HERE / "samples" / f"{name}.yaml")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


def test_autoscaled_deployment_leaves_replicas_to_the_hpa() -> None:
    assert "replicas" not in deployment(sample("autoscaled-ingress-tls"))["spec"]
    assert deployment(sample("s3-credentials"))["spec"]["replicas"] == 2


def test_pod_follows_the_contract() -> None:
    pod = deployment(sample("api-key"))["spec"]["template"]["spec"]
    (fetch,), (server,) = pod["initContainers"], pod["containers"]
    assert (fetch["name"], fetch["command"]) == ("fetch", ["mlmodel-server", "fetch"])
    assert (server["name"], server["command"]) == ("server", ["mlmodel-server", "serve"])
    fetch_env, server_env = env_of(fetch), env_of(server)
    assert fetch_env["MLMODEL_DEST"] == "/models" and fetch_env["MLMODEL_FORMAT"] == "joblib"
    # The credentials Secret must exist (a missing one is reported at once as ContainerConfigError); its keys are optional.
    assert fetch["envFrom"] == [{"secretRef": {"name": "artifact-token", "optional": False}}]
    assert "AWS_ACCESS_KEY_ID" not in fetch_env
    assert server_env["MLMODEL_NAME"] == "pricing" and server_env["MLMODEL_PATH"] == "/models"
    assert server_env["MLMODEL_API_KEY_FILE"] == "/var/run/secrets/mlmodel/api-key/token"
    assert server_env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/metrics"
    assert server_env["MLMODEL_HTTP_SERVER"] == "eventloop"  # the default stack, spec.server.httpServer
    assert {"name": "models", "mountPath": "/models", "readOnly": True} in server["volumeMounts"]
    assert server["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/health"
    assert "startupProbe" in server
    for container in (fetch, server):
        assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
        assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert (
        pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    )


def test_pvc_is_mounted_read_only_in_the_fetcher_only() -> None:
    pod = deployment(sample("pvc"))["spec"]["template"]["spec"]
    assert {"name": "model-pvc", "persistentVolumeClaim": {"claimName": "model-store", "readOnly": True}} in pod[
        "volumes"
    ]
    assert {"name": "model-pvc", "mountPath": "/mnt/pvc/model-store", "readOnly": True} in pod["initContainers"][0][
        "volumeMounts"
    ]
    assert all(m["name"] != "model-pvc" for m in pod["containers"][0]["volumeMounts"])


def test_a_new_digest_changes_the_pod_template() -> None:
    old = sample("iris-http")
    new = copy.deepcopy(old)
    new["spec"]["model"]["sha256"] = "f" * 64
    old_meta = deployment(old)["spec"]["template"]["metadata"]["annotations"]
    new_meta = deployment(new)["spec"]["template"]["metadata"]["annotations"]
    assert new_meta[ARTIFACT_ANNOTATION] == "sha256:" + "f" * 64
    assert old_meta[TEMPLATE_HASH_ANNOTATION] != new_meta[TEMPLATE_HASH_ANNOTATION]


def test_rendering_is_deterministic_and_does_not_mutate_its_input() -> None:
    mlmodel = sample("autoscaled-ingress-tls")
    before = copy.deepcopy(mlmodel)
    assert render_children(mlmodel, Settings()) == render_children(mlmodel, Settings())
    assert mlmodel == before


def test_selectors_never_include_changing_labels() -> None:
    for child in render_children(sample("autoscaled-ingress-tls"), Settings()):
        selector = child["spec"].get("selector", {})
        selector = selector.get("matchLabels", selector)
        assert set(selector) <= {"app.kubernetes.io/name", "app.kubernetes.io/instance"}
        assert child["metadata"]["ownerReferences"][0]["controller"] is True


def test_settings_supply_image_and_ingress_namespace() -> None:
    settings = Settings(default_image="img:1", ingress_namespace="gw")
    mlmodel = sample("iris-http")
    assert deployment(mlmodel, settings)["spec"]["template"]["spec"]["containers"][0]["image"] == "img:1"
    policy = render_child("NetworkPolicy", mlmodel, settings)
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gw"}}} in policy["spec"]["ingress"][
        0
    ]["from"]


def test_a_monitoring_namespace_is_admitted_to_the_pods_port() -> None:
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    mlmodel = sample("iris-http")
    assert monitoring not in render_child("NetworkPolicy", mlmodel, Settings())["spec"]["ingress"][0]["from"]
    settings = Settings(monitoring_namespace="monitoring")
    (rule,) = render_child("NetworkPolicy", mlmodel, settings)["spec"]["ingress"]
    assert monitoring in rule["from"] and rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_rate_limit_becomes_nginx_annotations() -> None:
    ingress = render_child("Ingress", sample("autoscaled-ingress-tls"), Settings())
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rps"] == "100"
    assert ingress["spec"]["tls"] == [{"hosts": ["fraud.example.com"], "secretName": "fraud-example-com-tls"}]


def egress_ports(uri: str) -> list[list[int]]:
    mlmodel = sample("api-key")
    mlmodel["spec"]["model"]["uri"] = uri
    policy = render_child("NetworkPolicy", mlmodel, Settings())
    return [[p["port"] for p in rule["ports"]] for rule in policy["spec"]["egress"] if "to" not in rule]


def test_egress_opens_only_the_artifact_stores_port() -> None:
    assert egress_ports("http://artifacts.models.svc.cluster.local:8000/iris.joblib") == [[53, 53], [8000]]
    assert egress_ports("http://models.example.com/iris.joblib") == [[53, 53], [80]]
    assert egress_ports("https://models.example.com:8443/iris.joblib") == [[53, 53], [8443]]
    assert egress_ports("s3://bucket/iris.joblib") == [[53, 53], [443]]
    assert egress_ports("pvc://claim/iris.joblib") == [[53, 53]]


def test_server_drains_before_sigterm() -> None:
    pod = deployment(sample("api-key"))["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    drain = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = int(env_of(server)["MLMODEL_GRACEFUL_TIMEOUT_SECONDS"])
    assert drain > 0 and pod["terminationGracePeriodSeconds"] > drain + graceful
