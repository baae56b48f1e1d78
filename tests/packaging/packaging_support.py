"""Helpers for the packaging tests (a module of its own: conftest modules cannot be imported by name)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from polling import wait_for  # noqa: F401 (re-exported for this folder's tests)

from mlmodel_contract import api

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "crds" / api.CRD_FILE_NAME
CHART = REPO / "deploy" / "helm" / "mlmodel-operator"
# Helm values that turn every monitoring object of the chart on.
MONITORING_ON = ["--set", "monitoring.podMonitors=true,monitoring.prometheusRule=true,monitoring.grafanaDashboard=true"]


def tool_bin_dir(tool_set: str) -> Path:
    """Build (first time only, cached outside the repo) and locate a tool set of hack/build-tools.sh."""
    result = subprocess.run(["bash", str(REPO / "hack" / "build-tools.sh"), tool_set], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"hack/build-tools.sh {tool_set} failed (exit {result.returncode}):\n{result.stderr[-3000:]}", pytrace=False
        )
    return Path(result.stdout.split()[-1])


def run(*argv: str, input: str | None = None) -> str:
    result = subprocess.run(list(argv), input=input, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} failed (exit {result.returncode}):\n{result.stderr[-4000:]}\n{result.stdout[-2000:]}",
            pytrace=False,
        )
    return result.stdout


def documents(text: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [doc for doc in docs if doc.get("kind") == kind]


def one(docs: list[dict], kind: str) -> dict:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def assert_restricted(pod: dict, container: dict) -> None:
    """The restricted Pod Security Standard, plus a read-only root filesystem with /tmp as the only writable path."""
    pod_context, context = pod["securityContext"], container["securityContext"]
    assert pod_context["runAsNonRoot"] is True and pod_context["runAsUser"] == 10001
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert context["allowPrivilegeEscalation"] is False
    assert context["readOnlyRootFilesystem"] is True
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert [v["name"] for v in pod["volumes"] if "emptyDir" in v] == ["tmp"]


def deployment_available(kubectl, namespace: str, name: str, replicas: int = 2) -> bool:
    result = kubectl("get", "deployment", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    return json.loads(result.stdout).get("status", {}).get("availableReplicas") == replicas
