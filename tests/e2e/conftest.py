"""Fixtures for end-to-end tests on real pods: the local cluster's real node (hack/realnode.py) with
the locally built images imported, a Pod Security `restricted` namespace per test (its pods land on
the real node, not on the tainted kwok node), the operator with the local server image as default,
an in-cluster artifact server and a client pod."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import joblib
import localcluster
import node_workloads
import operator_env
import pytest
import sklearn
from e2e_helpers import Artifact, ClientPod
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

IMAGES_TIMEOUT_SECONDS = 2400


@pytest.fixture(scope="session")
def real_node(cluster) -> localcluster.ClusterState:
    """The cluster's real node, with `make images`' images in its containerd. Fails, never skips."""
    if not localcluster.has_real_node(cluster):
        holder = localcluster.realnode.lock_holder()
        pytest.fail(
            f"the local cluster has no real node ({holder or 'it was started with MLMODEL_REAL_NODE=0'}); "
            "the end-to-end tests need one",
            pytrace=False,
        )
    result = subprocess.run(
        [str(localcluster.REPO_ROOT / "hack" / "images.sh"), "all"],
        capture_output=True,
        text=True,
        timeout=IMAGES_TIMEOUT_SECONDS,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/images.sh failed (exit {result.returncode}):\n{result.stderr[-4000:]}", pytrace=False)
    localcluster.load_images(cluster, log=lambda m: sys.stderr.write(f"{m}\n"))
    return cluster


@pytest.fixture(scope="session")
def e2e_operator_kubeconfig(real_node, tmp_path_factory) -> Path:
    return operator_env.prepare(real_node, tmp_path_factory.mktemp("e2e-operator") / "kubeconfig")


@pytest.fixture
def node_namespace(real_node, kubectl, request) -> str:
    """A fresh namespace under Pod Security `restricted` whose pods run on the real node."""
    name = f"e2e-{request.node.name[:30].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    kubectl("apply", "-f", "-", input=json.dumps(node_workloads.namespace_manifest(name)))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def e2e_operator(e2e_operator_kubeconfig, node_namespace, tmp_path, request):
    """The operator watching the test's namespace, with the locally built server image as its default."""
    handle = operator_env.OperatorProcess(
        e2e_operator_kubeconfig,
        node_namespace,
        tmp_path / "operator.log",
        default_image=node_workloads.LOCAL_SERVER_IMAGE,
    )
    handle.start()
    yield handle
    handle.stop()
    assert "Traceback" not in handle.log(), f"the operator logged a traceback:\n{handle.log()[-6000:]}"


def _joblib_bytes(model) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _claiming_an_old_sklearn(data: bytes) -> bytes:
    """The same pickle, but saying another scikit-learn wrote it (same length keeps the framing valid)."""
    current = sklearn.__version__.encode()
    assert current in data
    return data.replace(current, (b"0." + b"9" * len(current))[: len(current)])


@pytest.fixture(scope="session")
def artifacts() -> dict[str, Artifact]:
    """Two good iris models (different digests), one file that is not a model, and one written by "another"
    scikit-learn."""
    features, labels = load_iris(return_X_y=True)
    v1 = _joblib_bytes(LogisticRegression(max_iter=500).fit(features, labels))
    return {
        "v1": Artifact("iris-v1.joblib", v1),
        "old-sklearn": Artifact("iris-old-sklearn.joblib", _claiming_an_old_sklearn(v1)),
        "v2": Artifact("iris-v2.joblib", _joblib_bytes(DecisionTreeClassifier(random_state=0).fit(features, labels))),
        "garbage": Artifact("garbage.joblib", b"this is not a model\n" * 10),
    }


@pytest.fixture
def artifact_server(kubectl, node_namespace, artifacts) -> str:
    """The artifacts served in the test's namespace on node_workloads.ARTIFACT_PORT; returns the namespace."""
    manifests = node_workloads.artifact_server_manifests(node_namespace, {a.name: a.data for a in artifacts.values()})
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    kubectl("rollout", "status", f"deployment/{node_workloads.ARTIFACT_SERVER}", "-n", node_namespace, "--timeout=90s")
    return node_namespace


@pytest.fixture
def client_pod(kubectl, node_namespace) -> ClientPod:
    return ClientPod(kubectl, node_namespace).start()
