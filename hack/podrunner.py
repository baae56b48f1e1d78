"""Run a pod template's containers as local processes, the way a kubelet would run them.

The pod-contract tests (tests/contract) use it to prove, without a node, that what the operator
renders for every sample really works with the server (the demo and tests/e2e run real pods on the
local cluster's real node instead): the init containers and the server container are
started with exactly the pod template's command, args and env (ConfigMap and Secret references
resolved, emptyDirs and Secret volumes as temporary directories, each mount path mapped to its
directory), the probes are called as the template declares them, and the server is queried.

Only two things differ from a node, both forced by running on a shared host: the server listens on
127.0.0.1 and on a free port (the pod's port and MLMODEL_PORT must agree; the port is then moved
consistently), and termination-message files go to the pod's work directory.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlmodel_contract import pod as contract
from mlmodel_contract.pod import ServeEnv

VENV_BIN = Path(sys.executable).parent


class PodContractError(AssertionError):
    """The pod template and the server disagree (a wrong port, env name, probe path, argument, ...)."""


@dataclass
class Objects:
    """The ConfigMaps and Secrets (name -> {key: value}) and PVC directories the pod may reference."""

    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    claims: dict[str, Path] = field(default_factory=dict)

    @staticmethod
    def secret_data(secret: dict) -> dict[str, str]:
        """A Secret manifest's values, from `stringData` or base64 `data`."""
        values = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
        values.update(secret.get("stringData") or {})
        return values


def _volume_dirs(pod_spec: dict, objects: Objects, workdir: Path) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for volume in pod_spec.get("volumes") or []:
        name = volume["name"]
        target = workdir / "volumes" / name
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
        elif "secret" in volume:
            data = objects.secrets.get(volume["secret"]["secretName"])
            if data is None:
                raise PodContractError(f"volume {name}: Secret {volume['secret']['secretName']!r} is not provided")
            target.mkdir(parents=True, exist_ok=True)
            items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    raise PodContractError(f"volume {name}: Secret has no key {item['key']!r}")
                (target / item["path"]).write_text(data[item["key"]])
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            if claim not in objects.claims:
                raise PodContractError(f"volume {name}: claim {claim!r} is not provided")
            target = objects.claims[claim]
        else:
            raise PodContractError(f"volume {name}: unsupported volume type {sorted(volume)}")
        dirs[name] = target
    return dirs


def _mount_map(container: dict, volume_dirs: dict[str, Path]) -> list[tuple[str, Path]]:
    mounts = []
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volume_dirs:
            raise PodContractError(f"container {container['name']}: mount of unknown volume {mount['name']!r}")
        mounts.append((mount["mountPath"].rstrip("/"), volume_dirs[mount["name"]] / mount.get("subPath", "")))
    return sorted(mounts, key=lambda m: len(m[0]), reverse=True)


def _map_paths(value: str, mounts: list[tuple[str, Path]], workdir: Path) -> str:
    """A path inside the container as the host sees it. A directory above some mounts (e.g. the
    PVC root /mnt/pvc above /mnt/pvc/<claim>) becomes a directory of links to them."""
    for mount_path, host_dir in mounts:
        if value == mount_path or value.startswith(mount_path + "/"):
            return str(host_dir) + value[len(mount_path) :]
    below = [(m, d) for m, d in mounts if value.startswith("/") and m.startswith(value.rstrip("/") + "/")]
    if not below:
        return value
    root = workdir / "roots" / value.strip("/").replace("/", "_")
    for mount_path, host_dir in below:
        link = root / mount_path[len(value.rstrip("/")) + 1 :]
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(host_dir)
    return str(root)


def _env(container: dict, objects: Objects, mounts: list[tuple[str, Path]], workdir: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            ref, store = source["configMapRef"], objects.config_maps
        else:
            ref, store = source["secretRef"], objects.secrets
        if ref["name"] not in store:
            if ref.get("optional"):
                continue
            raise PodContractError(f"container {container['name']}: envFrom {ref['name']!r} is not provided")
        env.update({source.get("prefix", "") + k: v for k, v in store[ref["name"]].items()})
    for var in container.get("env") or []:
        if "value" in var:
            env[var["name"]] = _map_paths(var["value"], mounts, workdir)
            continue
        source = var.get("valueFrom") or {}
        ref = source.get("secretKeyRef") or source.get("configMapKeyRef")
        if ref is None:
            raise PodContractError(f"env {var['name']}: unsupported valueFrom {sorted(source)}")
        store = objects.secrets if "secretKeyRef" in source else objects.config_maps
        value = store.get(ref["name"], {}).get(ref["key"])
        if value is None:
            if ref.get("optional"):
                continue
            raise PodContractError(f"env {var['name']}: {ref['name']}/{ref['key']} is not provided")
        env[var["name"]] = value
    return env


def _command(container: dict, mounts: list[tuple[str, Path]], workdir: Path) -> list[str]:
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    if not argv:
        raise PodContractError(f"container {container['name']}: no command (the image's entry point is not used here)")
    executable = VENV_BIN / argv[0]
    if not executable.exists():
        raise PodContractError(
            f"container {container['name']}: command {argv[0]!r} is not a console script of the project"
        )
    return [str(executable), *(_map_paths(a, mounts, workdir) for a in argv[1:])]


def _process_env(env: dict[str, str], container: dict, workdir: Path) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k in ("PATH", "LANG", "LC_ALL", "HOME", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
    }
    base["PATH"] = f"{VENV_BIN}:{base.get('PATH', '/usr/bin:/bin')}"
    message_file = workdir / f"termination-{container['name']}.log"
    return {**base, **env, contract.TERMINATION_MESSAGE_PATH_ENV: str(message_file)}


@dataclass
class RunningPod:
    process: subprocess.Popen
    base_url: str
    log_path: Path
    probes: dict[str, str] = field(default_factory=dict)  # probe kind -> path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _http_status(url: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _http_probe_port(container: dict, probe: dict) -> int:
    port = probe["httpGet"]["port"]
    if isinstance(port, int):
        return port
    for declared in container.get("ports") or []:
        if declared.get("name") == port:
            return declared["containerPort"]
    raise PodContractError(f"probe port {port!r} names no port of container {container['name']}")


def run_pod(
    pod_spec: dict,
    objects: Objects,
    workdir: Path,
    host_port: int,
    server_container: str = "server",
    ready_timeout: float = 90,
) -> RunningPod:
    """Run the init containers to completion, then start the server container and wait until its
    readiness probe passes. Raises PodContractError with the reason when anything disagrees."""
    workdir.mkdir(parents=True, exist_ok=True)
    volume_dirs = _volume_dirs(pod_spec, objects, workdir)

    for init in pod_spec.get("initContainers") or []:
        mounts = _mount_map(init, volume_dirs)
        result = subprocess.run(
            _command(init, mounts, workdir),
            env=_process_env(_env(init, objects, mounts, workdir), init, workdir),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            message = workdir / f"termination-{init['name']}.log"
            detail = message.read_text().strip() if message.exists() else result.stderr.strip()[-2000:]
            raise PodContractError(f"init container {init['name']} exited {result.returncode}: {detail}")

    container = next((c for c in pod_spec["containers"] if c["name"] == server_container), None)
    if container is None:
        raise PodContractError(f"no container named {server_container!r}")
    mounts = _mount_map(container, volume_dirs)
    env = _env(container, objects, mounts, workdir)
    readiness = container.get("readinessProbe")
    if not readiness or "httpGet" not in readiness:
        raise PodContractError("the server container has no HTTP readiness probe")
    probe_port = _http_probe_port(container, readiness)
    listens_on = env.get(ServeEnv.PORT, str(contract.SERVER_PORT))
    if listens_on != str(probe_port):
        raise PodContractError(f"the readiness probe targets port {probe_port}, the server listens on {listens_on}")
    env[ServeEnv.PORT], env[ServeEnv.HOST] = str(host_port), "127.0.0.1"

    log_path = workdir / f"{container['name']}.log"
    process = subprocess.Popen(
        _command(container, mounts, workdir),
        env=_process_env(env, container, workdir),
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    pod = RunningPod(
        process,
        f"http://127.0.0.1:{host_port}",
        log_path,
        {
            kind: container[kind]["httpGet"]["path"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if "httpGet" in (container.get(kind) or {})
        },
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            message = workdir / f"termination-{container['name']}.log"
            detail = message.read_text().strip() if message.exists() else pod.log()[-2000:]
            raise PodContractError(f"the server container exited {process.returncode}: {detail}")
        if _http_status(pod.base_url + pod.probes["readinessProbe"], readiness.get("timeoutSeconds", 1)) == 200:
            break
        time.sleep(0.2)
    else:
        pod.stop()
        raise PodContractError(
            f"the readiness probe {pod.probes['readinessProbe']} did not pass in {ready_timeout} s:\n{pod.log()[-2000:]}"
        )
    for kind, path in pod.probes.items():
        if _http_status(pod.base_url + path, 5) != 200:
            pod.stop()
            raise PodContractError(f"the {kind} {path} does not answer 200")
    return pod


def cleanup(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
