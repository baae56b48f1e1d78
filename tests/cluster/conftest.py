"""Fixtures for tests against the local cluster: the CRD, the operator's own identity, the operator."""

from __future__ import annotations

import sys
from pathlib import Path

import operator_env
import pytest
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


@pytest.fixture
def operator(operator_kubeconfig, namespace, tmp_path, request):
    # the kwok node runs no image: a name no registry has shows that nothing pulls it
    handle = operator_env.OperatorProcess(
        operator_kubeconfig, namespace, tmp_path / "operator.log", default_image=OPERATOR_TEST_IMAGE
    )
    handle.start()
    yield handle
    handle.stop()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        sys.stderr.write(f"\n--- operator log ---\n{handle.log()[-8000:]}\n")
    assert "Traceback" not in handle.log(), f"the operator logged a traceback:\n{handle.log()[-6000:]}"


@pytest.fixture
def start_operator(operator_kubeconfig, namespace, tmp_path):
    """Start more operator processes (each with its own log); all are stopped and checked at the end."""
    started: list[operator_env.OperatorProcess] = []

    def start(*extra_args: str, verbose: bool = False, kubeconfig: Path | None = None) -> operator_env.OperatorProcess:
        handle = operator_env.OperatorProcess(
            kubeconfig or operator_kubeconfig,
            namespace,
            tmp_path / f"operator-{len(started)}.log",
            default_image=OPERATOR_TEST_IMAGE,
            extra_args=list(extra_args),
            verbose=verbose,
        )
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
