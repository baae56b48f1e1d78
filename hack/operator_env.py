"""Set a cluster up for the operator the way a user's install does: the CRD, the operator's
namespace, ServiceAccount and least-privilege RBAC (deploy/rbac), and a kubeconfig holding that
ServiceAccount's token, so the operator runs under exactly the identity it ships with.
Used by the cluster tests, the operator benchmark and `make demo`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import localcluster

from mlmodel_contract import api

OPERATOR_NAMESPACE = "mlmodel-system"
OPERATOR_SERVICE_ACCOUNT = "mlmodel-operator"
CRD_NAME = api.CRD_NAME


def install_crd(state: localcluster.ClusterState, timeout: float = 60) -> None:
    localcluster.kubectl(
        state,
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(localcluster.REPO_ROOT / "crds" / api.CRD_FILE_NAME),
    )
    # `kubectl wait` fails at once (instead of waiting) while a just-created CRD has no conditions yet
    deadline = time.monotonic() + timeout
    while True:
        result = localcluster.kubectl(
            state,
            "wait",
            "--for=condition=Established",
            f"crd/{CRD_NAME}",
            f"--timeout={max(1, int(deadline - time.monotonic()))}s",
            check=False,
        )
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise localcluster.ClusterError(
                f"CRD {CRD_NAME} not Established within {timeout:.0f} s: {result.stderr.strip()}"
            )
        time.sleep(0.5)


def install_rbac(state: localcluster.ClusterState) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    localcluster.kubectl(state, "apply", "-f", "-", input=json.dumps(namespace))
    localcluster.kubectl(state, "apply", "-k", str(localcluster.REPO_ROOT / "deploy" / "rbac"))


def write_operator_kubeconfig(
    state: localcluster.ClusterState,
    path: Path,
    duration: str = "4h",
    service_account: str = OPERATOR_SERVICE_ACCOUNT,
    namespace: str = OPERATOR_NAMESPACE,
) -> Path:
    """A kubeconfig for the operator's ServiceAccount (a bound token from the TokenRequest API)."""
    token = localcluster.kubectl(
        state, "create", "token", service_account, "-n", namespace, f"--duration={duration}"
    ).stdout.strip()
    admin = json.loads(Path(state.kubeconfig).read_text())
    cluster_name = admin["clusters"][0]["name"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": OPERATOR_SERVICE_ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": cluster_name, "user": OPERATOR_SERVICE_ACCOUNT}}],
        "current-context": "operator",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def prepare(state: localcluster.ClusterState, kubeconfig_path: Path) -> Path:
    install_crd(state)
    install_rbac(state)
    return write_operator_kubeconfig(state, kubeconfig_path)


@dataclass
class OperatorProcess:
    """The real `mlmodel-operator` console script, as a process, watching one namespace."""

    kubeconfig: Path
    namespace: str
    log_path: Path
    default_image: str
    process: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)
    verbose: bool = True

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "MLMODEL_OPERATOR_DEFAULT_IMAGE": self.default_image}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlmodel-operator"),
                "-n",
                self.namespace,
                "--log-format",
                "plain",
                *(["-v"] if self.verbose else []),
                *self.extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        """SIGKILL: no chance to finish what it was doing."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_alive(self) -> None:
        assert self.process and self.process.poll() is None, f"the operator exited:\n{self.log()[-4000:]}"
