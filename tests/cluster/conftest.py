"""Fixtures for tests against the local cluster: the CRD, the operator's own identity, the operator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import operator_env
from kube_helpers import OPERATOR_TEST_IMAGE


@pytest.fixture(scope="session")
def crd(cluster):
    operator_env.install_crd(cluster)
    return operator_env.CRD_NAME


@pytest.fixture(scope="session")
def operator_kubeconfig(cluster, crd, tmp_path_factory) -> Path:
    """A kubeconfig for the operator's ServiceAccount, bound by exactly the RBAC the project ships."""
    operator_env.install_rbac(cluster)
    return operator_env.write_operator_kubeconfig(cluster, tmp_path_factory.mktemp("operator") / "kubeconfig")


@dataclass
class OperatorProcess:
    """The real `mlmodel-operator` console script, as a process, watching one namespace."""

    kubeconfig: Path
    namespace: str
    log_path: Path
    process: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)
    verbose: bool = True

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "MLMODEL_OPERATOR_DEFAULT_IMAGE": OPERATOR_TEST_IMAGE}
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlmodel-operator"), "-n", self.namespace, "--log-format", "plain",
             *(["-v"] if self.verbose else []), *self.extra_args],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
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


@pytest.fixture
def operator(operator_kubeconfig, namespace, tmp_path, request):
    handle = OperatorProcess(operator_kubeconfig, namespace, tmp_path / "operator.log")
    handle.start()
    yield handle
    handle.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        sys.stderr.write(f"\n--- operator log ---\n{handle.log()[-8000:]}\n")
    assert "Traceback" not in handle.log(), f"the operator logged a traceback:\n{handle.log()[-6000:]}"


@pytest.fixture
def start_operator(operator_kubeconfig, namespace, tmp_path):
    """Start more operator processes (each with its own log); all are stopped and checked at the end."""
    started: list[OperatorProcess] = []

    def start(*extra_args: str, verbose: bool = False, kubeconfig: Path | None = None) -> OperatorProcess:
        handle = OperatorProcess(kubeconfig or operator_kubeconfig, namespace, tmp_path / f"operator-{len(started)}.log",
                                 extra_args=list(extra_args), verbose=verbose)
        handle.start()
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
    for handle in started:
        assert "Traceback" not in handle.log(), f"an operator logged a traceback:\n{handle.log()[-6000:]}"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
