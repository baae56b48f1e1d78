"""Operator benchmark on the local cluster: how fast MLModels become their serving stacks.

For 1 and for 200 MLModels applied at once it measures the time from apply to every child
created and to every MLModel Ready, next to the floor measured in the same run: a bare client
applying the very same child objects itself (what the API server and the controllers allow at
best). It also counts API writes per reconcile (while creating, and in a steady-state resync,
which should write nothing) and the operator's memory with 200 and 1000 MLModels.

    .venv/bin/python bench/operator/run.py [--counts 1,200] [--memory-counts 200,1000]

MLMODEL_CLUSTER_DIR=<dir> runs it on a cluster of its own in <dir> (as `hack/localcluster.py` does), away
from whatever else shares the default cluster (other operators watching every namespace, tests that
restart the API server or reinstall the CRD).

Figures are printed, never asserted: this is a benchmark, not a timed test.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "hack"))

import localcluster  # noqa: E402
import operator_env  # noqa: E402
from kubernetes import client as kube_client  # noqa: E402
from kubernetes import config as kube_config  # noqa: E402

from mlmodel_contract import api  # noqa: E402
from mlmodel_operator.kube import CHILD_TYPES, MLMODEL_TYPE, Kube  # noqa: E402
from mlmodel_operator.render import render_children  # noqa: E402
from mlmodel_operator.settings import Settings  # noqa: E402

WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY"}
OUR_RESOURCES = {
    "mlmodels",
    "deployments",
    "services",
    "networkpolicies",
    "poddisruptionbudgets",
    "horizontalpodautoscalers",
    "ingresses",
}
CLIENT_THREADS = 8  # the same parallelism the operator's handlers get
RESYNC_WAIT_SECONDS = 12  # more than two resync intervals


def mlmodel(name: str) -> dict:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {"model": {"uri": f"https://models.example.com/{name}.joblib", "sha256": "a" * 64, "version": "1"}},
    }


class Cluster:
    def __init__(self, state: localcluster.ClusterState):
        self.state = state
        api_client = kube_config.new_client_from_config(config_file=state.kubeconfig)
        self.kube = Kube(api_client)
        self.custom = kube_client.CustomObjectsApi(api_client)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True):
        return localcluster.kubectl(self.state, *args, input=input, check=check)

    def list(self, kinds: str, namespace: str) -> list[dict]:
        """Objects of the given kinds ("Deployment,Service") in a namespace; no kubectl process per poll."""
        items = []
        for kind in kinds.split(","):
            items += self.kube.list(MLMODEL_TYPE if kind == "MLModel" else CHILD_TYPES[kind], namespace)
        return items

    def writes(self) -> int:
        """Write requests the API server has served on MLModels and their child kinds (not their status by
        other controllers), from its own /metrics."""
        context = ssl.create_default_context(cafile=str(self.state.path("pki/ca.crt")))
        context.load_cert_chain(str(self.state.path("pki/admin.crt")), str(self.state.path("pki/admin.key")))
        with urllib.request.urlopen(self.state.api_url + "/metrics", context=context, timeout=30) as response:
            text = response.read().decode()
        total = 0
        for line in text.splitlines():
            if not line.startswith("apiserver_request_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels.get("verb") not in WRITE_VERBS or labels.get("resource") not in OUR_RESOURCES:
                continue
            if labels.get("subresource") == "status" and labels.get("resource") != "mlmodels":
                continue  # Deployment status belongs to the controller-manager
            total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def fresh_namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        localcluster.create_kwok_namespace(self.state, name)  # the benchmark's 1000 models run on kwok
        return name

    def drop_namespace(self, name: str) -> None:
        """Delete and wait: the garbage collector's deletes must not be counted in the next run's writes."""
        self.kubectl("delete", "namespace", name, "--timeout=600s", check=False)


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic()
        time.sleep(interval)
    raise SystemExit(f"benchmark: timed out after {timeout:.0f} s waiting for {what}")


def all_available(cluster: Cluster, namespace: str, count: int) -> bool:
    deployments = cluster.list("Deployment", namespace)
    return len(deployments) == count and all(
        d.get("status", {}).get("availableReplicas") == d["spec"]["replicas"] for d in deployments
    )


def children_count(cluster: Cluster, namespace: str) -> int:
    return len(cluster.list("Deployment,Service,NetworkPolicy", namespace))


def run_floor(cluster: Cluster, count: int) -> dict:
    """A bare client applying the same children the operator renders (no owner, no status)."""
    namespace = cluster.fresh_namespace("bench-floor")
    objects = []
    for i in range(count):
        model = mlmodel(f"m{i}")
        model["metadata"].update(namespace=namespace, uid=str(uuid.uuid4()), generation=1)
        for child in render_children(model, Settings()):
            child["metadata"].pop("ownerReferences", None)
            objects.append(child)
    before = cluster.writes()
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(cluster.kube.apply, objects))
    created = time.monotonic()
    ready = wait_until(lambda: all_available(cluster, namespace, count), 600, "the floor's Deployments")
    result = {
        "children_s": created - started,
        "ready_s": ready - started,
        "writes": cluster.writes() - before,
        "objects": len(objects),
    }
    cluster.drop_namespace(namespace)
    return result


def start_operator(kubeconfig: Path, namespace: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    liveness = f"http://127.0.0.1:{localcluster.free_port()}/healthz"
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlmodel-operator"),
            "-n",
            namespace,
            "--log-format",
            "plain",
            "--liveness",
            liveness,
        ],
        env=env,
        stdout=open(log, "wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    wait_until(lambda: _responds(liveness), 60, "the operator's liveness endpoint")
    time.sleep(1)  # its watches are open; the clock starts at the first apply
    return process


def _responds(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def all_ready(cluster: Cluster, namespace: str, count: int) -> bool:
    models = cluster.list("MLModel", namespace)
    return len(models) == count and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in (m.get("status") or {}).get("conditions", []))
        for m in models
    )


def run_operator(cluster: Cluster, kubeconfig: Path, count: int, workdir: Path) -> dict:
    namespace = cluster.fresh_namespace("bench-op")
    process = start_operator(kubeconfig, namespace, workdir / f"operator-{count}.log")
    try:
        before = cluster.writes()
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENT_THREADS) as pool:
            list(
                pool.map(
                    lambda i: cluster.custom.create_namespaced_custom_object(
                        api.GROUP, api.VERSION, namespace, api.PLURAL, mlmodel(f"m{i}")
                    ),
                    range(count),
                )
            )
        children = wait_until(lambda: children_count(cluster, namespace) == 3 * count, 900, "every child")
        ready = wait_until(lambda: all_ready(cluster, namespace, count), 900, "every MLModel Ready")
        time.sleep(RESYNC_WAIT_SECONDS / 2)  # let the last status refreshes land
        settled = cluster.writes()
        time.sleep(RESYNC_WAIT_SECONDS)
        steady = cluster.writes() - settled
        return {
            "children_s": children - started,
            "ready_s": ready - started,
            "writes": settled - before,
            "steady_writes": steady,
            "rss_mib": rss_mib(process.pid),
        }
    finally:
        stop(process)
        cluster.drop_namespace(namespace)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", default="1,200")
    parser.add_argument("--memory-counts", default="1000", help="extra runs only for the operator's memory")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",") if c]
    memory_counts = [int(c) for c in args.memory_counts.split(",") if c]

    state_dir = Path(os.environ.get("MLMODEL_CLUSTER_DIR") or localcluster.DEFAULT_STATE_DIR)
    state, started_now = localcluster.up(state_dir, log=lambda m: print(f">> {m}", file=sys.stderr))
    localcluster.stop_companions(state)  # only the operator under test may reconcile
    workdir = Path(tempfile.mkdtemp(prefix="bench-operator-"))
    try:
        kubeconfig = operator_env.prepare(state, workdir / "kubeconfig")
        cluster = Cluster(state)
        rows = []
        for count in counts:
            floor = run_floor(cluster, count)
            ours = run_operator(cluster, kubeconfig, count, workdir)
            rows.append((count, floor, ours))
            print(
                f"{count:>5} MLModels | children: operator {ours['children_s']:6.2f} s, floor {floor['children_s']:6.2f} s"
                f" ({ours['children_s'] / floor['children_s']:.2f}x) | Ready: operator {ours['ready_s']:6.2f} s,"
                f" floor {floor['ready_s']:6.2f} s ({ours['ready_s'] / floor['ready_s']:.2f}x)"
                f" | writes/model: operator {ours['writes'] / count:.1f}, floor {floor['writes'] / count:.1f}"
                f" | steady-state writes in {RESYNC_WAIT_SECONDS} s: {ours['steady_writes']}"
                f" | operator RSS {ours['rss_mib']:.0f} MiB",
                flush=True,
            )
        memory = {}
        for count in memory_counts:
            memory[count] = run_operator(cluster, kubeconfig, count, workdir)
            print(
                f"{count:>5} MLModels | operator RSS {memory[count]['rss_mib']:.0f} MiB, Ready after"
                f" {memory[count]['ready_s']:.1f} s, steady-state writes {memory[count]['steady_writes']}",
                flush=True,
            )

        print("\nTargets")
        for count, floor, ours in rows:
            if count >= 200:
                ratio = ours["ready_s"] / floor["ready_s"]
                print(
                    f"  {count} MLModels to Ready ≤ 1.5x the floor: {ratio:.2f}x  {'PASS' if ratio <= 1.5 else 'MISS'}"
                )
            print(
                f"  {count} MLModels: 0 writes in a steady-state resync: {ours['steady_writes']}"
                f"  {'PASS' if ours['steady_writes'] == 0 else 'MISS'}"
            )
        for count, result in memory.items():
            if count >= 1000:
                print(
                    f"  operator memory at {count} MLModels ≤ 200 MiB: {result['rss_mib']:.0f} MiB"
                    f"  {'PASS' if result['rss_mib'] <= 200 else 'MISS'}"
                )
    finally:
        if started_now:
            localcluster.down(Path(state.state_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
