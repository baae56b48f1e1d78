"""The operator against the real local cluster, running as its own ServiceAccount with the RBAC it ships."""

from __future__ import annotations

import json
import time

import pytest
import yaml

import localcluster
from kube_helpers import get_json, wait_for

pytestmark = pytest.mark.cluster

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def mlmodel(name: str = "iris", **spec) -> dict:
    base = {"model": {"uri": "https://models.example.com/iris.joblib", "sha256": DIGEST_A, "version": "1.0.0"}}
    for key, value in spec.items():
        base[key] = value
    return {"apiVersion": "serving.mlops.dev/v1alpha1", "kind": "MLModel", "metadata": {"name": name}, "spec": base}


def apply(kubectl, namespace: str, obj: dict, check: bool = True):
    return kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(obj), check=check)


def condition(obj: dict | None, kind: str) -> dict:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return {}


def ready(kubectl, namespace: str, name: str = "iris") -> dict | None:
    obj = get_json(kubectl, "mlmodel", name, "-n", namespace)
    cond = condition(obj, "Ready")
    if cond.get("status") == "True" and cond.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def children(kubectl, namespace: str) -> dict[str, list[str]]:
    found = get_json(kubectl, "deployments,services,ingresses,horizontalpodautoscalers,networkpolicies,poddisruptionbudgets",
                     "-n", namespace, "-l", "app.kubernetes.io/managed-by=mlmodel-operator")
    result: dict[str, list[str]] = {}
    for item in found["items"]:
        result.setdefault(item["kind"], []).append(item["metadata"]["name"])
    return result


def test_a_sample_becomes_ready_with_every_child_and_printer_columns(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    assert children(kubectl, namespace) == {"Deployment": ["iris"], "Service": ["iris"], "NetworkPolicy": ["iris"]}

    waited = kubectl("wait", "--for=condition=Ready", "mlmodel/iris", "-n", namespace, "--timeout=10s")
    assert "condition met" in waited.stdout

    deployment = get_json(kubectl, "deployment", "iris", "-n", namespace)
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "MLModel" and owner["controller"] is True
    pod_spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in pod_spec["initContainers"]] == ["fetch"]
    assert [c["name"] for c in pod_spec["containers"]] == ["server"]

    status = get_json(kubectl, "mlmodel", "iris", "-n", namespace)["status"]
    assert status["observedGeneration"] == 1
    assert status["replicas"] == 1 and status["readyReplicas"] == 1
    assert status["url"] == f"http://iris.{namespace}.svc.cluster.local"
    table = kubectl("get", "mlmodels", "-n", namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:6] == ["NAME", "READY", "REASON", "REPLICAS", "VERSION", "URL"]
    assert row[:6] == ["iris", "True", "Available", "1", "1.0.0", status["url"]]


def test_a_new_artifact_rolls_out_and_status_follows(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    first = wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    assert first["status"]["servingDigest"] == DIGEST_A

    apply(kubectl, namespace, mlmodel(model={"uri": "https://models.example.com/iris-2.joblib", "sha256": DIGEST_B, "version": "2.0.0"}))
    seen_reconciling = wait_for(
        lambda: condition(get_json(kubectl, "mlmodel", "iris", "-n", namespace), "Reconciling").get("status") == "True"
        or ready(kubectl, namespace), timeout=30, interval=0.1, what="Reconciling or Ready")
    assert seen_reconciling
    second = wait_for(lambda: ready(kubectl, namespace), what="Ready=True on generation 2")
    assert second["status"]["servingDigest"] == DIGEST_B
    assert second["status"]["servingVersion"] == "2.0.0"
    replica_sets = get_json(kubectl, "replicasets", "-n", namespace)["items"]
    assert len(replica_sets) == 2
    assert sorted(rs["spec"]["replicas"] for rs in replica_sets) == [0, 1]


def test_scale_autoscaling_ingress_and_deletion(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")

    kubectl("scale", "mlmodel/iris", "-n", namespace, "--replicas=3")
    wait_for(lambda: get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["replicas"] == 3, what="3 replicas")
    wait_for(lambda: "PodDisruptionBudget" in children(kubectl, namespace), what="a PDB once replicas > 1")
    wait_for(lambda: ready(kubectl, namespace) and ready(kubectl, namespace)["status"]["readyReplicas"] == 3, what="3 ready")

    apply(kubectl, namespace, mlmodel(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5},
                                      ingress={"enabled": True, "host": "iris.example.com"}))
    wait_for(lambda: {"HorizontalPodAutoscaler", "Ingress"} <= set(children(kubectl, namespace)), what="HPA and Ingress")
    hpa = get_json(kubectl, "hpa", "iris", "-n", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    deployment = get_json(kubectl, "deployment", "iris", "-n", namespace, "--show-managed-fields")
    assert deployment["spec"]["replicas"] == 3, "handing replicas to the HPA must not reset them"
    ours = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "mlmodel-operator"]
    assert ours and all("f:replicas" not in json.dumps(m["fieldsV1"].get("f:spec", {})) for m in ours), \
        "with autoscaling on, the operator must not own spec.replicas"

    # The HPA (here: a person playing it) changes replicas; the operator must leave it alone.
    kubectl("patch", "deployment", "iris", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":4}}')
    time.sleep(12)  # two resync periods
    assert get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["replicas"] == 4

    without_ingress = mlmodel(autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5}, ingress={"enabled": False})
    apply(kubectl, namespace, without_ingress)
    wait_for(lambda: "Ingress" not in children(kubectl, namespace), what="the Ingress to be deleted")

    kubectl("delete", "mlmodel", "iris", "-n", namespace, "--wait=true", "--timeout=30s")
    wait_for(lambda: not children(kubectl, namespace) and not get_json(kubectl, "pods", "-n", namespace)["items"],
             what="every child garbage-collected")


def test_drift_is_repaired_within_ten_seconds(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    image = get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]

    kubectl("delete", "service", "iris", "-n", namespace)
    kubectl("set", "image", "deployment/iris", "-n", namespace, "server=example.invalid/hand-edited:1")
    started = time.monotonic()
    wait_for(lambda: get_json(kubectl, "service", "iris", "-n", namespace), timeout=10, what="the Service restored")
    wait_for(lambda: get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["template"]["spec"]["containers"][0]["image"] == image,
             timeout=10 - (time.monotonic() - started) + 0.5, what="the Deployment's image restored")


def test_a_steady_state_resync_writes_nothing(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    time.sleep(6)  # let the last rollout status settle

    def versions():
        objs = [get_json(kubectl, "mlmodel", "iris", "-n", namespace)]
        objs += get_json(kubectl, "deployments,services,networkpolicies", "-n", namespace)["items"]
        return {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"] for o in objs}

    before = versions()
    time.sleep(12)  # more than two resync periods
    assert versions() == before


def test_operator_killed_mid_reconcile_converges_without_duplicates(kubectl, namespace, operator):
    for i in range(3):
        apply(kubectl, namespace, mlmodel(f"m{i}"))
    time.sleep(0.8)
    operator.kill()
    operator.start()
    for i in range(3):
        wait_for(lambda i=i: ready(kubectl, namespace, f"m{i}"), what=f"m{i} Ready after the restart")
    found = children(kubectl, namespace)
    assert sorted(found["Deployment"]) == ["m0", "m1", "m2"]
    assert sorted(found["Service"]) == ["m0", "m1", "m2"]
    assert len(get_json(kubectl, "replicasets", "-n", namespace)["items"]) == 3


def test_generated_pods_pass_restricted_pod_security(kubectl, namespace, operator):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    apply(kubectl, namespace, mlmodel(replicas=2))
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True under the restricted level")
    pods = get_json(kubectl, "pods", "-n", namespace)["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
    events = kubectl("get", "events", "-n", namespace, "--field-selector", "reason=FailedCreate").stdout
    assert "violates PodSecurity" not in events


def test_a_wrong_digest_reports_the_reason_and_keeps_the_serving_pods(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    serving = {p["metadata"]["name"] for p in get_json(kubectl, "pods", "-n", namespace)["items"]}

    message = f"sha256 mismatch: expected {DIGEST_B}, got {'c' * 64}"
    broken = mlmodel(model={"uri": "https://models.example.com/iris-2.joblib", "sha256": DIGEST_B, "version": "2.0.0"},
                     podLabels={"mlmodel.test/fail": "fetch"},
                     podAnnotations={"mlmodel.test/exit-code": "10", "mlmodel.test/message": message})
    apply(kubectl, namespace, broken)

    def not_ready_with_reason():
        obj = get_json(kubectl, "mlmodel", "iris", "-n", namespace)
        cond = condition(obj, "Ready")
        return obj if cond.get("status") == "False" and message in cond.get("message", "") else None

    obj = wait_for(not_ready_with_reason, what="Ready=False carrying the fetch message")
    ready_condition = condition(obj, "Ready")
    assert ready_condition["observedGeneration"] == obj["metadata"]["generation"]
    assert ready_condition["reason"]
    pods = get_json(kubectl, "pods", "-n", namespace)["items"]
    still_running = {p["metadata"]["name"] for p in pods if p["status"]["phase"] == "Running"
                     and all(c.get("ready") for c in p["status"].get("containerStatuses", []))}
    assert serving <= still_running, "the pods serving the previous artifact must stay"
    assert obj["status"]["servingDigest"] == DIGEST_A
    events = get_json(kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=iris")["items"]
    warnings = [e for e in events if e["type"] == "Warning" and e["source"].get("component") == "mlmodel-operator"]
    assert any(e["reason"] == ready_condition["reason"] and message in e["message"] for e in warnings), events


INVALID_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent / "operator" / "invalid"


def invalid_cases():
    for path in sorted(INVALID_DIR.glob("*.yaml")):
        text = path.read_text()
        field = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("# field:"))
        yield pytest.param(path, field, id=path.stem)


@pytest.mark.parametrize("path, field", list(invalid_cases()))
def test_an_invalid_spec_is_rejected_naming_the_field(kubectl, namespace, crd, path, field):
    obj = yaml.safe_load(path.read_text())
    obj["metadata"]["namespace"] = namespace
    result = kubectl("apply", "-f", "-", input=json.dumps(obj), check=False)
    assert result.returncode != 0, f"{path.name} was accepted"
    assert field in result.stderr, f"{path.name}: the error does not name {field}: {result.stderr}"
    assert not get_json(kubectl, "mlmodels", "-n", namespace)["items"]


def test_the_operator_recovers_by_itself_after_the_api_server_restarts(cluster, kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")

    localcluster.restart_apiserver(cluster)
    apply(kubectl, namespace, mlmodel(replicas=2))
    wait_for(lambda: (get_json(kubectl, "deployment", "iris", "-n", namespace) or {}).get("spec", {}).get("replicas") == 2,
             timeout=30, what="the operator to act on a change made after the restart")
    wait_for(lambda: ready(kubectl, namespace), timeout=30, what="Ready=True on the new generation")
    operator.assert_alive()
