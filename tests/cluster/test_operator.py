"""The operator against the real local cluster, running as its own ServiceAccount with the RBAC it ships."""

from __future__ import annotations

import json
import time

import localcluster
import pytest
import yaml
from kube_helpers import OPERATOR_TEST_IMAGE, get_json, wait_for

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
    found = get_json(
        kubectl,
        "deployments,services,ingresses,horizontalpodautoscalers,networkpolicies,poddisruptionbudgets",
        "-n",
        namespace,
        "-l",
        "app.kubernetes.io/managed-by=mlmodel-operator",
    )
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

    apply(
        kubectl,
        namespace,
        mlmodel(model={"uri": "https://models.example.com/iris-2.joblib", "sha256": DIGEST_B, "version": "2.0.0"}),
    )
    seen_reconciling = wait_for(
        lambda: (
            condition(get_json(kubectl, "mlmodel", "iris", "-n", namespace), "Reconciling").get("status") == "True"
            or ready(kubectl, namespace)
        ),
        timeout=30,
        interval=0.1,
        what="Reconciling or Ready",
    )
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
    wait_for(
        lambda: get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["replicas"] == 3, what="3 replicas"
    )
    wait_for(lambda: "PodDisruptionBudget" in children(kubectl, namespace), what="a PDB once replicas > 1")
    wait_for(
        lambda: ready(kubectl, namespace) and ready(kubectl, namespace)["status"]["readyReplicas"] == 3, what="3 ready"
    )

    apply(
        kubectl,
        namespace,
        mlmodel(
            autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5},
            ingress={"enabled": True, "host": "iris.example.com"},
        ),
    )
    wait_for(
        lambda: {"HorizontalPodAutoscaler", "Ingress"} <= set(children(kubectl, namespace)), what="HPA and Ingress"
    )
    hpa = get_json(kubectl, "hpa", "iris", "-n", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    deployment = get_json(kubectl, "deployment", "iris", "-n", namespace, "--show-managed-fields")
    assert deployment["spec"]["replicas"] == 3, "handing replicas to the HPA must not reset them"
    ours = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "mlmodel-operator"]
    assert ours and all("f:replicas" not in json.dumps(m["fieldsV1"].get("f:spec", {})) for m in ours), (
        "with autoscaling on, the operator must not own spec.replicas"
    )

    # The HPA (here: a person playing it) changes replicas; the operator must leave it alone.
    kubectl("patch", "deployment", "iris", "-n", namespace, "--type=merge", "-p", '{"spec":{"replicas":4}}')
    time.sleep(12)  # two resync periods
    assert get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["replicas"] == 4

    without_ingress = mlmodel(
        autoscaling={"enabled": True, "minReplicas": 2, "maxReplicas": 5}, ingress={"enabled": False}
    )
    apply(kubectl, namespace, without_ingress)
    wait_for(lambda: "Ingress" not in children(kubectl, namespace), what="the Ingress to be deleted")

    kubectl("delete", "mlmodel", "iris", "-n", namespace, "--wait=true", "--timeout=30s")
    wait_for(
        lambda: not children(kubectl, namespace) and not get_json(kubectl, "pods", "-n", namespace)["items"],
        what="every child garbage-collected",
    )


def test_drift_is_repaired_within_ten_seconds(kubectl, namespace, operator):
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    image = get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]

    kubectl("delete", "service", "iris", "-n", namespace)
    kubectl("set", "image", "deployment/iris", "-n", namespace, "server=example.invalid/hand-edited:1")
    started = time.monotonic()
    wait_for(lambda: get_json(kubectl, "service", "iris", "-n", namespace), timeout=10, what="the Service restored")
    wait_for(
        lambda: (
            get_json(kubectl, "deployment", "iris", "-n", namespace)["spec"]["template"]["spec"]["containers"][0][
                "image"
            ]
            == image
        ),
        timeout=10 - (time.monotonic() - started) + 0.5,
        what="the Deployment's image restored",
    )


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
    broken = mlmodel(
        model={"uri": "https://models.example.com/iris-2.joblib", "sha256": DIGEST_B, "version": "2.0.0"},
        podLabels={"mlmodel.test/fail": "fetch"},
        podAnnotations={"mlmodel.test/exit-code": "10", "mlmodel.test/message": message},
    )
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
    still_running = {
        p["metadata"]["name"]
        for p in pods
        if p["status"]["phase"] == "Running" and all(c.get("ready") for c in p["status"].get("containerStatuses", []))
    }
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
    wait_for(
        lambda: (get_json(kubectl, "deployment", "iris", "-n", namespace) or {}).get("spec", {}).get("replicas") == 2,
        timeout=30,
        what="the operator to act on a change made after the restart",
    )
    # Ready needs the Deployment controller too, which resumes on its own schedule after the restart (19 s of
    # silence once, on a loaded machine): the operator's own part was the wait above.
    wait_for(lambda: ready(kubectl, namespace), timeout=90, what="Ready=True on the new generation")
    operator.assert_alive()


def _pending_writes(cluster, namespace: str, name: str = "iris") -> list[str]:
    """What the operator's next resync would write for the MLModel, from the live objects as its indexes
    keep them (the real plan on the real managedFields): empty once converged."""
    from mlmodel_operator.drift import fields_worth_keeping
    from mlmodel_operator.kube import FIELD_MANAGER
    from mlmodel_operator.reconcile import compact, plan
    from mlmodel_operator.render import render_children
    from mlmodel_operator.settings import Settings

    mlmodel_obj = json.loads(
        localcluster.kubectl(cluster, "get", "mlmodel", name, "-n", namespace, "-o", "json").stdout
    )
    settings = Settings(default_image=OPERATOR_TEST_IMAGE)
    desired = compact(render_children(mlmodel_obj, settings))
    live = {}
    for obj in desired:
        found = json.loads(
            localcluster.kubectl(
                cluster,
                "get",
                obj["kind"].lower(),
                name,
                "-n",
                namespace,
                "--show-managed-fields",
                "-o",
                "json",
                check=False,
            ).stdout
            or "null"
        )
        if found:
            found["metadata"]["managedFields"] = fields_worth_keeping(found["metadata"]["managedFields"], FIELD_MANAGER)
            live[obj["kind"]] = found
    todo = plan(desired, live)
    return (
        [f"repair {o['kind']}" for o, _ in todo.repair]
        + [f"apply {o['kind']}" for o in todo.apply]
        + [f"delete {kind}" for kind, _ in todo.delete]
    )


HAND_EDITS = {
    # what a person does: (kind, kubectl arguments after the object, the JSON path that must come back)
    "scalar": (
        "deployment",
        ["patch", "--type=merge", "-p", '{"spec":{"progressDeadlineSeconds":99}}'],
        lambda d: d["spec"]["progressDeadlineSeconds"],
    ),
    "pod-template-label-added": (
        "deployment",
        ["patch", "--type=merge", "-p", '{"spec":{"template":{"metadata":{"labels":{"team":"x"}}}}}'],
        lambda d: d["spec"]["template"]["metadata"]["labels"],
    ),
    "selector-entry-added": (
        "service",
        ["patch", "--type=merge", "-p", '{"spec":{"selector":{"team":"x"}}}'],
        lambda s: s["spec"]["selector"],
    ),
    "env-entry-added": (
        "deployment",
        ["set-env", "DEBUG=1"],
        lambda d: d["spec"]["template"]["spec"]["containers"][0].get("env"),
    ),
    "field-added-in-a-container": (
        "deployment",
        [
            "patch",
            "--type=strategic",
            "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"server","workingDir":"/tmp"}]}}}}',
        ],
        lambda d: d["spec"]["template"]["spec"]["containers"][0].get("workingDir"),
    ),
    "port-added": (
        "service",
        ["patch", "--type=json", "-p", '[{"op":"add","path":"/spec/ports/-","value":{"name":"debug","port":9999}}]'],
        lambda s: s["spec"]["ports"],
    ),
    "service-port-changed": (
        "service",
        ["patch", "--type=json", "-p", '[{"op":"replace","path":"/spec/ports/0/port","value":81}]'],
        lambda s: s["spec"]["ports"],
    ),
}


@pytest.mark.parametrize("edit", list(HAND_EDITS))
def test_a_hand_edit_is_reverted_within_seconds_and_the_resync_then_writes_nothing(
    cluster, kubectl, namespace, operator, edit
):
    kind, arguments, field = HAND_EDITS[edit]
    apply(kubectl, namespace, mlmodel())
    wait_for(lambda: ready(kubectl, namespace), what="Ready=True")
    wait_for(lambda: not _pending_writes(cluster, namespace), timeout=20, what="converged before the edit")
    rendered = field(get_json(kubectl, kind, "iris", "-n", namespace))
    service = get_json(kubectl, "service", "iris", "-n", namespace)

    if arguments[0] == "set-env":
        edited = kubectl("set", "env", f"{kind}/iris", "-n", namespace, *arguments[1:], "-o", "json")
    else:
        edited = kubectl(arguments[0], kind, "iris", "-n", namespace, *arguments[1:], "-o", "json")
    assert field(json.loads(edited.stdout)) != rendered, "the edit did not land"  # (the object the edit wrote)

    wait_for(
        lambda: field(get_json(kubectl, kind, "iris", "-n", namespace)) == rendered, timeout=10, what=f"{edit} reverted"
    )
    wait_for(lambda: not _pending_writes(cluster, namespace), timeout=10, what="nothing left to write")
    after = get_json(kubectl, "service", "iris", "-n", namespace)
    assert after["spec"]["clusterIP"] == service["spec"]["clusterIP"], "the allocated clusterIP must stay"
    wait_for(lambda: ready(kubectl, namespace), timeout=30, what="Ready=True after the repair")
    obj = get_json(kubectl, "mlmodel", "iris", "-n", namespace)
    assert condition(obj, "Ready")["reason"] != "InvalidChild"


def test_a_password_in_a_pod_termination_message_reaches_no_condition_event_or_log(kubectl, namespace, operator):
    """The URI is refused with userinfo at admission, but a message can carry one from elsewhere (here the
    fetcher's termination message, as the simulated kubelet reports it): the operator redacts it."""
    leaked = "not found: //alice:hunter2-password@models.example.com/iris.joblib"
    apply(
        kubectl,
        namespace,
        mlmodel(
            podLabels={"mlmodel.test/fail": "fetch"},
            podAnnotations={"mlmodel.test/exit-code": "11", "mlmodel.test/message": leaked},
        ),
    )

    def stalled():
        obj = get_json(kubectl, "mlmodel", "iris", "-n", namespace)
        return obj if condition(obj, "Ready").get("reason") == "ArtifactNotFound" else None

    obj = wait_for(stalled, what="Ready=False ArtifactNotFound")
    events = get_json(kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=iris")["items"]
    ours = [e for e in events if e["source"].get("component") == "mlmodel-operator"]
    assert ours, events
    written = json.dumps(obj["status"]) + json.dumps(ours) + operator.log()
    assert "hunter2-password" not in written and "alice" not in written
    assert "//REDACTED@models.example.com/iris.joblib" in condition(obj, "Ready")["message"]


def test_the_repair_of_a_hand_edit_writes_once_and_a_converged_resync_writes_nothing(cluster, kubectl, namespace, crd):
    """The reconciler in this process, with the operator's own client and its `writes` counter, against the
    real API server: a hand-changed Service port costs one repair and one apply, and the resync after that
    (and after a reconcile with nothing to do) makes no write at all."""
    import logging

    from kubernetes import config as kube_config

    from mlmodel_operator.drift import fields_worth_keeping
    from mlmodel_operator.kube import CHILD_TYPES, FIELD_MANAGER, MLMODEL_TYPE, Kube
    from mlmodel_operator.reconcile import Observed, Reconciler
    from mlmodel_operator.settings import Settings
    from mlmodel_operator.status_writer import StatusWriter

    kube = Kube(kube_config.new_client_from_config(config_file=cluster.kubeconfig))
    reconciler = Reconciler(
        kube,
        Settings(default_image=OPERATOR_TEST_IMAGE),
        StatusWriter(kube, kube.post_event),
        logging.getLogger("test"),
        workers=1,
    )

    def observe() -> Observed:
        children = {}
        for kind, resource in CHILD_TYPES.items():
            for item in kube.list(resource, namespace):
                item["metadata"]["managedFields"] = fields_worth_keeping(
                    item["metadata"].get("managedFields") or [], FIELD_MANAGER
                )
                children[kind] = {**item, "kind": kind, "apiVersion": resource.api_version}  # (a list omits both)
        return Observed(children=children)

    def resync() -> dict[str, int]:
        before = dict(kube.writes)
        owner = next(m for m in kube.list(MLMODEL_TYPE, namespace) if m["metadata"]["name"] == "iris")
        reconciler.reconcile({**owner, "kind": "MLModel", "apiVersion": "serving.mlops.dev/v1alpha1"}, observe)
        return {k: v - before.get(k, 0) for k, v in kube.writes.items() if v != before.get(k, 0)}

    try:
        apply(kubectl, namespace, mlmodel())
        first = resync()
        assert first.get("apply/Service") == 1 and first.get("apply/Deployment") == 1, first
        resync()  # the status settles
        assert {k: v for k, v in resync().items() if not k.startswith(("status/", "create/Event"))} == {}

        kubectl(
            "patch",
            "service",
            "iris",
            "-n",
            namespace,
            "--type=json",
            "-p",
            '[{"op":"replace","path":"/spec/ports/0/port","value":81}]',
        )
        repaired = resync()
        assert {k: v for k, v in repaired.items() if k.endswith("/Service")} == {
            "repair/Service": 1,
            "apply/Service": 1,
        }
        assert [p["port"] for p in get_json(kubectl, "service", "iris", "-n", namespace)["spec"]["ports"]] == [80]
        assert resync() == {}
        assert resync() == {}
    finally:
        reconciler.shutdown()
