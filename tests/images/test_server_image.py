"""The built server image (Dockerfile.server, via hack/images.sh), run with buildah as the operator's pod
runs it: the init container's and the server container's command and environment come from the Deployment
that mlmodel_operator.render.render_children makes for a sample MLModel."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests

from mlmodel_operator.render import render_children
from mlmodel_operator.settings import Settings

from .buildah_support import SERVER_IMAGE, Volume, assert_exited_cleanly, image_config, stop, writable_dir

pytestmark = pytest.mark.timeout(1800)  # the first test may build the images from nothing

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rendered_pod(uri: str, sha256: str) -> dict:
    mlmodel = {
        "apiVersion": "serving.mlops.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {
            "name": "iris",
            "namespace": "models",
            "uid": "00000000-0000-0000-0000-000000000001",
            "generation": 1,
        },
        "spec": {"model": {"uri": uri, "sha256": sha256, "version": "1.0.0"}},
    }
    [deployment] = [
        c for c in render_children(mlmodel, Settings(default_image=SERVER_IMAGE)) if c["kind"] == "Deployment"
    ]
    return deployment["spec"]["template"]["spec"]


def container_env(container: dict) -> dict[str, str]:
    env = {}
    for item in container.get("env") or []:
        assert "valueFrom" not in item, f"this sample sets plain values only, got {item}"
        env[item["name"]] = item["value"]
    assert not container.get("envFrom")
    return env


def mounts(container: dict, volumes: dict[str, Path]) -> list[Volume]:
    """The container's volumeMounts, each emptyDir a host directory."""
    return [Volume(volumes[m["name"]], m["mountPath"], bool(m.get("readOnly"))) for m in container["volumeMounts"]]


def wait_ready(url: str, process, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text(errors='replace')[-4000:]}")
        try:
            if requests.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    pytest.fail(f"the server was not ready after {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


def test_image_config_matches_the_pod(images):
    config = image_config(SERVER_IMAGE)
    pod = rendered_pod("http://127.0.0.1:1/iris.joblib", "0" * 64)
    uid = pod["securityContext"]["runAsUser"]
    assert config["User"] == f"{uid}:{pod['securityContext']['runAsGroup']}" and uid != 0
    assert config["Entrypoint"] == ["mlmodel-server"] and config["Cmd"] == ["serve"]
    assert [c["command"][0] for c in pod["initContainers"] + pod["containers"]] == ["mlmodel-server"] * 2


def test_runs_as_non_root_without_compilers_or_package_caches(images, container_factory):
    container = container_factory(SERVER_IMAGE)
    # No --user: the image's own USER.
    ran = container.run(["sh", "-c", "id -u; id -g; command -v mlmodel-server"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["10001", "10001", "/usr/local/bin/mlmodel-server"]

    root = container.rootfs()
    compilers = [
        p
        for pattern in (
            "usr/bin/*gcc*",
            "usr/bin/cc",
            "usr/bin/c++",
            "usr/bin/*g++*",
            "usr/bin/clang*",
            "usr/bin/ld",
            "usr/lib/gcc/*/*/cc1",
            "usr/local/bin/*gcc*",
        )
        for p in root.glob(pattern)
    ]
    assert not compilers, f"compilers left in the image: {compilers}"
    apt_lists = [p.name for p in (root / "var/lib/apt/lists").glob("*") if p.name not in ("lock", "partial")]
    assert not apt_lists, f"apt lists left in the image: {apt_lists}"
    apt_cache = [p.name for p in (root / "var/cache/apt").rglob("*") if p.is_file()]
    assert not apt_cache, f"apt caches left in the image: {apt_cache}"
    pip_caches = [p for p in root.glob("**/.cache") if p.is_dir()] + list(root.glob("root/.cache/pip"))
    assert not pip_caches, f"caches left in the image: {pip_caches}"
    leftovers = [p for p in ("wheels", "wheelhouse", "src", "tmp/pip-*") if list(root.glob(p))]
    assert not leftovers, f"build leftovers in the image: {leftovers}"
    assert not list(root.glob("**/*.whl")), "wheels left in the image"


@pytest.mark.parametrize("read_only", [False, True], ids=["root-writable", "root-read-only"])
def test_fetches_then_serves_with_the_pods_command_and_environment(
    images, container_factory, model_http, tmp_path, read_only
):
    """read_only: the root filesystem is mounted read-only, so the only writable paths are the pod's
    emptyDirs, /models and /tmp (readOnlyRootFilesystem: true in the manifests)."""
    pod = rendered_pod(model_http["uri"], model_http["sha256"])
    uid = pod["securityContext"]["runAsUser"]
    [fetch] = pod["initContainers"]
    [server] = pod["containers"]
    assert fetch["securityContext"]["readOnlyRootFilesystem"] and server["securityContext"]["readOnlyRootFilesystem"]
    emptydirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    assert emptydirs == {"models", "tmp"}
    volumes = {name: writable_dir(tmp_path / name, uid) for name in emptydirs}
    container = container_factory(SERVER_IMAGE)

    if read_only:  # the mount really is read-only, even for root
        probe = container.run(["touch", "/usr/probe"], user="0:0", read_only=True)
        assert probe.returncode != 0 and "Read-only file system" in probe.stderr, probe.stderr

    # Init container: fetch from the host's http server over the host network, verify the sha256.
    fetched = container.run(
        fetch["command"] + fetch.get("args", []),
        env=container_env(fetch),
        volumes=mounts(fetch, volumes),
        read_only=read_only,
    )
    assert fetched.returncode == 0, f"fetch exited {fetched.returncode}:\n{fetched.stdout}\n{fetched.stderr}"
    manifest = json.loads((volumes["models"] / "model.json").read_text())
    assert manifest["verified"] is True and manifest["sha256"] == model_http["sha256"]
    assert (volumes["models"] / "model.joblib").read_bytes() == model_http["path"].read_bytes()

    # Server container. Two changes to the pod's environment, both because the host network is shared:
    # a free port instead of 8080, and the loopback address instead of 0.0.0.0.
    port = free_port()
    env = {**container_env(server), "MLMODEL_PORT": str(port), "MLMODEL_HOST": "127.0.0.1"}
    log = tmp_path / "server.log"
    process = container.start(
        server["command"] + server.get("args", []), log, env=env, volumes=mounts(server, volumes), read_only=read_only
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        predicted = requests.post(f"{url}/predict", json={"features": IRIS_ROW}, timeout=10)
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["prediction"] == 0

        infer = requests.post(
            f"{url}/v2/models/iris/infer",
            timeout=10,
            json={
                "inputs": [
                    {"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": [*IRIS_ROW, 6.7, 3.0, 5.2, 2.3]}
                ]
            },
        )
        assert infer.status_code == 200, infer.text
        outputs = {o["name"]: o for o in infer.json()["outputs"]}
        assert outputs["predict"]["data"] == [0, 2]
        assert infer.json()["model_name"] == "iris" and infer.json().get("model_version") == "1.0.0"

        metrics = requests.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert "mlmodel_model_info{" in metrics.text and 'name="iris"' in metrics.text
        assert "mlmodel_http_requests_total{" in metrics.text and 'route="/predict"' in metrics.text
    finally:
        code = stop(process)
    assert_exited_cleanly(code, log, container, "server")
    # The multiprocess metrics went to the /tmp emptyDir, as PROMETHEUS_MULTIPROC_DIR says.
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/metrics" and (volumes["tmp"] / "metrics").is_dir()


FOREST_CHECK = """
import importlib.util, shutil
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from mlmodel_server.kernels import build_kernels
from mlmodel_server.signature import signature_of
X, y = make_classification(300, 8, random_state=0)
forest = RandomForestClassifier(20, random_state=0).fit(X, y)
kernels = build_kernels(forest, signature_of(forest), compiled=True)
assert np.array_equal(kernels.predict_proba(X), forest.predict_proba(X))
print(importlib.util.find_spec("numba") is None, shutil.which("cc") is None, kernels.fast_kernel)
"""


def python_as_the_pod(container_factory, tmp_path, script: str) -> list[str]:
    """Run `script` in the server image with the rendered pod's user, env and volumes on a read-only root; its
    output's words."""
    pod = rendered_pod("http://127.0.0.1:1/iris.joblib", "0" * 64)
    [server] = pod["containers"]
    user = f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    volumes = {
        "tmp": writable_dir(tmp_path / "tmp", pod["securityContext"]["runAsUser"]),
        "models": writable_dir(tmp_path / "models", pod["securityContext"]["runAsUser"]),
    }
    container = container_factory(SERVER_IMAGE)
    ran = container.run(
        ["python3", "-c", script], env=container_env(server), volumes=mounts(server, volumes), user=user, read_only=True
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.split()


def test_the_compiled_tree_walk_serves_as_the_pods_user_on_a_read_only_root(images, container_factory, tmp_path):
    """The C tree walk ships in the project's wheel: it serves forests in the image as the pod's own user, with the
    library's outputs, and the image has neither numba nor a C compiler."""
    assert python_as_the_pod(container_factory, tmp_path, FOREST_CHECK) == [
        "True",
        "True",
        "forest-classifier-compiled",
    ]


NATIVE_RUNTIMES_CHECK = """
import lightgbm, onnxruntime, xgboost
print(lightgbm.__version__ != "", onnxruntime.get_available_providers()[-1], xgboost.__version__ != "")
"""


def test_the_native_formats_runtimes_load_as_the_pods_user_on_a_read_only_root(images, container_factory, tmp_path):
    """XGBoost, LightGBM (with the system's OpenMP runtime, libgomp1) and onnxruntime import in the image."""
    assert python_as_the_pod(container_factory, tmp_path, NATIVE_RUNTIMES_CHECK) == [
        "True",
        "CPUExecutionProvider",
        "True",
    ]
