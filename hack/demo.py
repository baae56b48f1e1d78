"""`make demo`: the whole path from an MLModel to real predictions, on the local cluster's real node.

1. start (or reuse) the local cluster with its real node (hack/realnode.py); build the images
   (`make images`, reused when unchanged) and import them into the node's containerd;
2. install the CRD and the operator's RBAC; run the operator under its ServiceAccount's identity,
   with the locally built server image as its default (it keeps running with the cluster);
3. train the iris model and serve it from an artifact server *in the cluster* (a Deployment and a
   Service on port 8000, which the MLModel's NetworkPolicy opens because the URI names it);
4. apply deploy/samples/iris.yaml pointing at it; the pods fetch, verify and load the model on the
   real node and become Ready through the kubelet's probes;
5. predictions through the MLModel's Service: its ClusterIP from the host (classic and V2), its DNS
   name from a pod; `kubectl logs` of a model pod;
6. a broken artifact (a wrong digest): Ready=False with the pod's own message, the old version
   still answering; then the good artifact again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import localcluster
import node_workloads
import operator_env
import yaml

NAMESPACE = "demo"
SAMPLE = localcluster.REPO_ROOT / "deploy" / "samples" / "iris.yaml"
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
ARTIFACT = "iris-1.2.0.joblib"


def apply(kubectl: list[str], manifest: dict, namespace: str | None = None) -> None:
    """kubectl apply, quietly: the demo shows what the objects do, not the apply output."""
    where = ["-n", namespace] if namespace else []
    subprocess.run(
        [*kubectl, "apply", *where, "-f", "-"], input=json.dumps(manifest), text=True, check=True, capture_output=True
    )


def curl_post(url: str, body: str) -> list[str]:
    """The curl command line the demo shows for a JSON POST."""
    return ["curl", "-sS", "-X", "POST", url, "-H", "Content-Type: application/json", "-d", body]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def show(argv: list[str], shown: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run a command the reader could type, printing it (kubectl without its --kubeconfig, or `shown`) and its output."""
    printable = [Path(argv[0]).name, *argv[3:]] if Path(argv[0]).name == "kubectl" else argv
    print(f"    $ {shown or shlex.join(printable)}", flush=True)
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    for line in (result.stdout + result.stderr).rstrip().splitlines():
        print(f"    {line}")
    if result.returncode != 0:
        raise SystemExit(f"demo: {shlex.join(printable)} failed (exit {result.returncode})")
    return result


def iris_artifact() -> bytes:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), buffer)
    return buffer.getvalue()


def start_background(state: localcluster.ClusterState, name: str, argv: list[str], env: dict | None = None) -> int:
    """A process that lives with the cluster: `make cluster-down` stops it."""
    log = open(state.path(f"logs/{name}.log"), "ab")
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
    )
    localcluster.add_companion(state, name, process.pid)
    return process.pid


def ready_condition(kubectl: list[str]) -> dict:
    status = (
        json.loads(
            subprocess.run(
                [*kubectl, "get", "mlmodel", "iris", "-n", NAMESPACE, "-o", "json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        ).get("status")
        or {}
    )
    return next((c for c in status.get("conditions", []) if c["type"] == "Ready"), {})


def main() -> int:
    say("Local cluster with a real node")
    state, _ = localcluster.up(localcluster.state_dir_from_env(), log=lambda m: print(f"    {m}", flush=True))
    if not localcluster.has_real_node(state):
        raise SystemExit(
            "demo: this cluster has no real node (another cluster on this machine runs it, or "
            f"{localcluster.REAL_NODE_ENV}=0); run `make cluster-down` there first"
        )
    kubectl = [state.kubectl, "--kubeconfig", state.kubeconfig]
    show([*kubectl, "get", "nodes", "-o", "wide"])

    say("The images (make images; reused when unchanged), imported into the node's containerd")
    subprocess.run([str(localcluster.REPO_ROOT / "hack" / "images.sh"), "all"], check=True)
    localcluster.load_images(state, log=lambda m: print(f"    {m}", flush=True))

    say("CRD, RBAC and the operator (as ServiceAccount mlmodel-system/mlmodel-operator)")
    workdir = Path(state.state_dir) / "demo"
    operator_kubeconfig = operator_env.prepare(state, workdir / "operator.kubeconfig")
    if not localcluster.companion_running(state, "mlmodel-operator"):
        start_background(
            state,
            "mlmodel-operator",
            [str(Path(sys.executable).parent / "mlmodel-operator"), "--all-namespaces", "--log-format", "plain"],
            env={
                **os.environ,
                "KUBECONFIG": str(operator_kubeconfig),
                "MLMODEL_OPERATOR_DEFAULT_IMAGE": node_workloads.LOCAL_SERVER_IMAGE,
            },
        )
    print(
        f"    operator log: {state.path('logs/mlmodel-operator.log')}; default server image {node_workloads.LOCAL_SERVER_IMAGE}"
    )

    say(
        f"An artifact server in the cluster: Deployment + Service {node_workloads.ARTIFACT_SERVER}:{node_workloads.ARTIFACT_PORT}"
    )
    artifact = iris_artifact()
    digest = hashlib.sha256(artifact).hexdigest()
    apply(kubectl, node_workloads.namespace_manifest(NAMESPACE))
    manifests = node_workloads.artifact_server_manifests(NAMESPACE, {ARTIFACT: artifact})
    apply(kubectl, {"apiVersion": "v1", "kind": "List", "items": manifests})
    show(
        [
            *kubectl,
            "rollout",
            "status",
            "-n",
            NAMESPACE,
            f"deployment/{node_workloads.ARTIFACT_SERVER}",
            "--timeout=120s",
        ]
    )
    uri = node_workloads.artifact_uri(NAMESPACE, ARTIFACT)
    print(f"    {uri}  sha256 {digest}")

    say(f"kubectl apply -n {NAMESPACE} -f deploy/samples/iris.yaml (uri and sha256 set to the artifact above)")
    mlmodel = yaml.safe_load(SAMPLE.read_text())
    mlmodel["spec"]["model"].update(uri=uri, sha256=digest)
    subprocess.run([*kubectl, "apply", "-n", NAMESPACE, "-f", "-"], input=json.dumps(mlmodel), text=True, check=True)
    started = time.monotonic()
    show([*kubectl, "wait", "-n", NAMESPACE, "--for=condition=Ready", "mlmodel/iris", "--timeout=300s"])
    print(f"    Ready after {time.monotonic() - started:.0f} s: the kubelet's readiness probes passed on every pod")
    show([*kubectl, "get", "mlmodels", "-n", NAMESPACE])
    show([*kubectl, "get", "pods", "-n", NAMESPACE, "-o", "wide"])

    say("Predictions through the MLModel's Service")
    cluster_ip = show(
        [*kubectl, "get", "service", "iris", "-n", NAMESPACE, "-o", "jsonpath={.spec.clusterIP}"]
    ).stdout.strip()
    classic = show(curl_post(f"http://{cluster_ip}/predict", json.dumps({"features": IRIS_ROW}))).stdout
    if json.loads(classic).get("status") != "success":
        raise SystemExit("demo: the Service did not answer with a prediction")
    v2 = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]}
    show(curl_post(f"http://{cluster_ip}/v2/models/iris/infer", json.dumps(v2)))
    client = node_workloads.client_pod_manifest(NAMESPACE)
    apply(kubectl, client)
    subprocess.run(
        [
            *kubectl,
            "wait",
            "-n",
            NAMESPACE,
            f"pod/{node_workloads.CLIENT_POD}",
            "--for=condition=Ready",
            "--timeout=120s",
        ],
        check=True,
        capture_output=True,
    )
    print(f"    from pod {NAMESPACE}/{node_workloads.CLIENT_POD}, by DNS name:")
    url, body = f"http://iris.{NAMESPACE}.svc.cluster.local/predict", json.dumps({"features": IRIS_ROW})
    show(
        [
            *kubectl,
            "exec",
            "-n",
            NAMESPACE,
            node_workloads.CLIENT_POD,
            "--",
            "python",
            "-c",
            node_workloads.POST_SCRIPT,
            url,
            body,
        ],
        shown=f"kubectl exec -n {NAMESPACE} {node_workloads.CLIENT_POD} -- python -c '<POST with urllib>' {url} '{body}'",
    )
    show([*kubectl, "logs", "-n", NAMESPACE, "deployment/iris", "-c", "server", "--tail=3"])

    say("A broken artifact: the same URI with a wrong digest (version 1.2.1)")
    broken = json.loads(json.dumps(mlmodel))
    broken["spec"]["model"].update(sha256=hashlib.sha256(b"not this artifact").hexdigest(), version="1.2.1")
    apply(kubectl, broken, namespace=NAMESPACE)
    deadline = time.monotonic() + 120
    while (condition := ready_condition(kubectl)).get("status") != "False" and time.monotonic() < deadline:
        time.sleep(1)
    print(f"    Ready={condition.get('status')} reason={condition.get('reason')}")
    print(f"    message: {condition.get('message')}")
    print("    the old version keeps answering:")
    show(curl_post(f"http://{cluster_ip}/predict", json.dumps({"features": IRIS_ROW})))
    apply(kubectl, mlmodel, namespace=NAMESPACE)
    show([*kubectl, "wait", "-n", NAMESPACE, "--for=condition=Ready", "mlmodel/iris", "--timeout=300s"])
    print("    the good artifact is back (version 1.2.0)")

    say("Done. The cluster, its real node and the operator keep running:")
    print(f"    export KUBECONFIG={state.kubeconfig}")
    print(f"    {state.kubectl} get mlmodels,pods -n {NAMESPACE}")
    print(f"    {state.kubectl} logs -n {NAMESPACE} deployment/iris")
    print("    make cluster-down   # stops everything and restores the host")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (localcluster.ClusterError, subprocess.CalledProcessError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        sys.exit(1)
