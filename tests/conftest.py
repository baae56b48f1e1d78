"""Session-wide fixtures. The local cluster is started lazily, only when a test asks for it."""

import os
import uuid
from pathlib import Path

import localcluster
import pytest


@pytest.fixture(scope="session")
def cluster() -> localcluster.ClusterState:
    """The local control plane (hack/localcluster.py): reused when already running, else started
    for this session and stopped at its end. If it cannot start, every test using it fails loudly."""
    state_dir = Path(os.environ.get("MLMODEL_CLUSTER_DIR") or localcluster.DEFAULT_STATE_DIR)
    try:
        state, started_now = localcluster.up(state_dir)
    except localcluster.ClusterError as error:
        pytest.fail(f"the local Kubernetes cluster could not start: {error}", pytrace=False)
    localcluster.stop_companions(state)  # e.g. `make demo`'s operator would reconcile the tests' objects too
    yield state
    if started_now:
        localcluster.down(state_dir)


@pytest.fixture
def kubectl(cluster):
    """Run the cluster's own kubectl (same version as the server) as the admin user."""

    def run(*args: str, input: str | None = None, check: bool = True):
        return localcluster.kubectl(cluster, *args, input=input, check=check)

    return run


def _test_namespace_name(request) -> str:
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-{uuid.uuid4().hex[:6]}"
    return "".join(c for c in name if c.isalnum() or c == "-")


@pytest.fixture
def namespace(cluster, kubectl, request) -> str:
    """A fresh namespace per test whose pods run on the kwok node (fake pods, kwok's stages; see
    localcluster.KWOK_NAMESPACE_ANNOTATIONS), deleted afterwards (without waiting for it to finish).
    Tests on real pods use tests/e2e's `node_namespace` instead."""
    name = _test_namespace_name(request)
    localcluster.create_kwok_namespace(cluster, name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)
