"""The built operator image (Dockerfile.operator, via hack/images.sh), run with buildah as the operator's
Deployment (deploy/base/deployment.yaml) runs it, against the local cluster, under the operator's own
ServiceAccount and the RBAC the project ships (hack/operator_env.py): it reconciles a sample MLModel to Ready."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import operator_env
import pytest
import requests
import yaml

from .buildah_support import (
    OPERATOR_IMAGE,
    REPO,
    SERVER_IMAGE,
    Volume,
    assert_exited_cleanly,
    image_config,
    stop,
    writable_dir,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(1800)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manifest_container() -> tuple[dict, dict]:
    deployment = yaml.safe_load((REPO / "deploy" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    return pod, container


def wait_for(predicate, timeout: float, what: str, log: Path | None = None, process=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"the operator exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log else ""
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last: {last!r})\n{tail}")


@pytest.fixture(scope="module")
def operator_kubeconfig_text(cluster, tmp_path_factory) -> str:
    """CRD, namespace, ServiceAccount, RBAC, and a kubeconfig with that ServiceAccount's token."""
    return operator_env.prepare(cluster, tmp_path_factory.mktemp("operator-image") / "kubeconfig").read_text()


def test_image_config_matches_the_manifest(images):
    pod, container = manifest_container()
    config = image_config(OPERATOR_IMAGE)
    security = container["securityContext"]
    assert config["User"] == f"{security['runAsUser']}:{security['runAsGroup']}" and security["runAsUser"] != 0
    assert config["Entrypoint"] == container["command"]
    assert [v["name"] for v in pod["volumes"] if "emptyDir" in v] == ["tmp"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]


@pytest.mark.parametrize("read_only", [False, True], ids=["root-writable", "root-read-only"])
def test_reconciles_a_sample_to_ready(
    images, container_factory, kubectl, namespace, operator_kubeconfig_text, tmp_path, read_only
):
    """read_only: the root filesystem is mounted read-only; /tmp (the manifest's emptyDir) is the one writable path."""
    _pod, manifest = manifest_container()
    uid = manifest["securityContext"]["runAsUser"]
    assert manifest["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = writable_dir(tmp_path / "tmp", uid)
    # The kubeconfig goes where the pod keeps its only writable files; in a cluster the in-cluster token is used.
    (tmp / "kubeconfig").write_text(operator_kubeconfig_text)
    (tmp / "kubeconfig").chmod(0o400)
    os.chown(tmp / "kubeconfig", uid, uid)

    # The manifest's command, args and env, with three changes for a shared host network and a shared
    # cluster: this test's namespace instead of -A, the liveness endpoint on a free loopback port instead
    # of 0.0.0.0:8080, and the image the pods should run is the one built here.
    args = list(manifest["args"])
    assert args[0] == "-A" and args[1] == "--liveness" and args[2] == "http://0.0.0.0:8080/healthz"
    port = free_port()
    args = ["-n", namespace, "--liveness", f"http://127.0.0.1:{port}/healthz"]
    env = {item["name"]: item["value"] for item in manifest["env"]}
    env.update({"MLMODEL_OPERATOR_DEFAULT_IMAGE": SERVER_IMAGE, "KUBECONFIG": "/tmp/kubeconfig"})

    container = container_factory(OPERATOR_IMAGE)
    log = tmp_path / "operator.log"
    process = container.start(
        manifest["command"] + args,
        log,
        env=env,
        volumes=[Volume(tmp, m["mountPath"]) for m in manifest["volumeMounts"]],
        read_only=read_only,
    )
    try:

        def healthy():
            try:
                return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        wait_for(healthy, 120, "the liveness endpoint", log, process)
        sample = yaml.safe_load((REPO / "deploy" / "samples" / "iris.yaml").read_text())
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(sample))

        def ready():
            result = kubectl("get", "mlmodel", "iris", "-n", namespace, "-o", "json", check=False)
            if result.returncode != 0:
                return None
            obj = json.loads(result.stdout)
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if (
                    cond["type"] == "Ready"
                    and cond["status"] == "True"
                    and cond.get("observedGeneration") == obj["metadata"]["generation"]
                ):
                    return obj
            return None

        obj = wait_for(ready, 120, "MLModel iris Ready=True", log, process)
        assert obj["status"]["readyReplicas"] == sample["spec"]["replicas"]
        deployment = json.loads(kubectl("get", "deployment", "iris", "-n", namespace, "-o", "json").stdout)
        pod_spec = deployment["spec"]["template"]["spec"]
        assert {c["image"] for c in pod_spec["initContainers"] + pod_spec["containers"]} == {SERVER_IMAGE}
    finally:
        code = stop(process)
    assert_exited_cleanly(code, log, container, "operator")
