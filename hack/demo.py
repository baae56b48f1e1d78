"""`make demo`: the whole path from an MLModel to a real prediction, on the local cluster.

1. start (or reuse) the local cluster; install the CRD and the operator's RBAC;
2. run the operator under its own ServiceAccount's identity (it keeps running with the cluster);
3. train the iris model, serve the artifact over local http, apply deploy/samples/iris.yaml
   pointing at it, wait for Ready and show `kubectl get mlmodels`;
4. kwok runs no containers, so run the generated pod here: the Deployment's init container and
   server container as local processes, exactly as the pod template says (hack/podrunner.py);
5. ask the server for a prediction with curl.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

import localcluster
import operator_env
import podrunner

NAMESPACE = "demo"
SAMPLE = localcluster.REPO_ROOT / "deploy" / "samples" / "iris.yaml"
IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"demo: {url} did not answer within {timeout:.0f} s")


def train_iris(directory: Path) -> Path:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    features, labels = load_iris(return_X_y=True)
    path = directory / "iris-1.2.0.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(features, labels), path)
    return path


def start_background(state: localcluster.ClusterState, name: str, argv: list[str], env: dict | None = None) -> int:
    """A process that lives with the cluster: `make cluster-down` stops it."""
    log = open(state.path(f"logs/{name}.log"), "ab")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    localcluster.add_companion(state, name, process.pid)
    return process.pid


def cluster_objects(state: localcluster.ClusterState) -> podrunner.Objects:
    """The Secrets and ConfigMaps of the namespace, as the kubelet would read them."""
    def items(kind: str) -> list[dict]:
        return json.loads(localcluster.kubectl(state, "get", kind, "-n", NAMESPACE, "-o", "json").stdout)["items"]

    return podrunner.Objects(
        config_maps={c["metadata"]["name"]: c.get("data") or {} for c in items("configmaps")},
        secrets={s["metadata"]["name"]: podrunner.Objects.secret_data(s) for s in items("secrets")},
    )


def main() -> int:
    say("Local cluster")
    state, _ = localcluster.up(log=lambda m: print(f"    {m}", flush=True))
    kubectl = [state.kubectl, "--kubeconfig", state.kubeconfig]
    workdir = Path(state.state_dir) / "demo"

    say("CRD, RBAC and the operator (as ServiceAccount mlmodel-system/mlmodel-operator)")
    operator_kubeconfig = operator_env.prepare(state, workdir / "operator.kubeconfig")
    if not localcluster.companion_running(state, "mlmodel-operator"):
        start_background(state, "mlmodel-operator",
                         [str(Path(sys.executable).parent / "mlmodel-operator"), "--all-namespaces", "--log-format", "plain"],
                         env={**os.environ, "KUBECONFIG": str(operator_kubeconfig)})
    print(f"    operator log: {state.path('logs/mlmodel-operator.log')}")

    say("The iris model, served over local http")
    artifact = train_iris(workdir / "artifacts")
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()
    http_port = localcluster.free_port()
    http_server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(http_port),
                                    "--directory", str(artifact.parent)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pod = None
    try:
        uri = f"http://127.0.0.1:{http_port}/{artifact.name}"
        wait_http(uri)
        print(f"    {uri}  sha256 {digest}")

        say(f"kubectl apply -n {NAMESPACE} -f deploy/samples/iris.yaml (uri and sha256 set to the artifact above)")
        mlmodel = yaml.safe_load(SAMPLE.read_text())
        mlmodel["spec"]["model"].update(uri=uri, sha256=digest)
        subprocess.run([*kubectl, "create", "namespace", NAMESPACE], capture_output=True)
        subprocess.run([*kubectl, "apply", "-n", NAMESPACE, "-f", "-"], input=json.dumps(mlmodel), text=True, check=True)
        subprocess.run([*kubectl, "wait", "-n", NAMESPACE, "--for=condition=Ready", "mlmodel/iris", "--timeout=120s"], check=True)
        subprocess.run([*kubectl, "get", "mlmodels", "-n", NAMESPACE], check=True)
        subprocess.run([*kubectl, "get", "deployments,services,networkpolicies,poddisruptionbudgets,pods", "-n", NAMESPACE], check=True)

        say("Running the generated pod here (kwok runs no containers): fetch, then serve")
        deployment = json.loads(subprocess.run([*kubectl, "get", "deployment", "iris", "-n", NAMESPACE, "-o", "json"],
                                               capture_output=True, text=True, check=True).stdout)
        pod_spec = deployment["spec"]["template"]["spec"]
        for container in [*pod_spec["initContainers"], *pod_spec["containers"]]:
            print(f"    {container['name']}: {shlex.join(container.get('command', []) + container.get('args', []))}")
        pod = podrunner.run_pod(pod_spec, cluster_objects(state), workdir / "pod", localcluster.free_port())
        print(f"    init container fetch: verified and stored the artifact; server ready at {pod.base_url}"
              f" (probes {', '.join(f'{k} {v}' for k, v in pod.probes.items())} pass)")

        say("A real prediction")
        body = json.dumps({"features": IRIS_ROW})
        curl = ["curl", "-sS", "-X", "POST", f"{pod.base_url}/predict", "-H", "Content-Type: application/json", "-d", body]
        print(f"    $ {shlex.join(curl)}")
        answer = subprocess.run(curl, capture_output=True, text=True, check=True).stdout.strip()
        print(f"    {answer}")
        if json.loads(answer).get("status") != "success":
            raise SystemExit("demo: the server did not answer with a prediction")
        v2 = json.dumps({"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROW}]})
        v2_curl = ["curl", "-sS", "-X", "POST", f"{pod.base_url}/v2/models/iris/infer", "-H", "Content-Type: application/json", "-d", v2]
        print(f"    $ {shlex.join(v2_curl)}")
        print(f"    {subprocess.run(v2_curl, capture_output=True, text=True, check=True).stdout.strip()}")
    finally:
        if pod:
            pod.stop()
        http_server.terminate()
        http_server.wait(10)

    say("Done. The cluster and the operator keep running:")
    print(f"    export KUBECONFIG={state.kubeconfig}")
    print(f"    {state.kubectl} get mlmodels -A")
    print(f"    {state.kubectl} describe mlmodel iris -n {NAMESPACE}")
    print("    make cluster-down   # stops the cluster and the operator")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (localcluster.ClusterError, podrunner.PodContractError, subprocess.CalledProcessError) as error:
        print(f"demo failed: {error}", file=sys.stderr)
        sys.exit(1)
