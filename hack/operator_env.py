"""Set a cluster up for the operator the way a user's install does: the CRD, the operator's
namespace, ServiceAccount and least-privilege RBAC (deploy/rbac), and a kubeconfig holding that
ServiceAccount's token, so the operator runs under exactly the identity it ships with.
Used by the cluster tests, the operator benchmark and `make demo`."""

from __future__ import annotations

import json
from pathlib import Path

import localcluster

OPERATOR_NAMESPACE = "mlmodel-system"
OPERATOR_SERVICE_ACCOUNT = "mlmodel-operator"
CRD_NAME = "mlmodels.serving.mlops.dev"


def install_crd(state: localcluster.ClusterState) -> None:
    localcluster.kubectl(state, "apply", "--server-side", "--force-conflicts", "-f", str(localcluster.REPO_ROOT / "crds"))
    localcluster.kubectl(state, "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s")


def install_rbac(state: localcluster.ClusterState) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}
    localcluster.kubectl(state, "apply", "-f", "-", input=json.dumps(namespace))
    localcluster.kubectl(state, "apply", "-k", str(localcluster.REPO_ROOT / "deploy" / "rbac"))


def write_operator_kubeconfig(state: localcluster.ClusterState, path: Path, duration: str = "4h",
                              service_account: str = OPERATOR_SERVICE_ACCOUNT, namespace: str = OPERATOR_NAMESPACE) -> Path:
    """A kubeconfig for the operator's ServiceAccount (a bound token from the TokenRequest API)."""
    token = localcluster.kubectl(state, "create", "token", service_account, "-n", namespace,
                                 f"--duration={duration}").stdout.strip()
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
