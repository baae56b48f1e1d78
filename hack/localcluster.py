"""A real local Kubernetes control plane on loopback, built from Go modules (hack/build-tools.sh).

etcd + kube-apiserver (RBAC, PodSecurity admission) + kube-controller-manager + kube-scheduler
+ kwok, whose fake nodes turn scheduled pods Running/Ready. No containers run: kwok writes the
pod status a kubelet would write. `make cluster`, `make cluster-down` and the pytest session
fixture all use this module.

    python hack/localcluster.py up        # start or reuse; last line: KUBECONFIG=<path>
    python hack/localcluster.py down      # stop every process it started, by pid
    python hack/localcluster.py status
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import realnode
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = Path(
    os.environ.get("MLMODEL_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlmodel-operator"
)
DEFAULT_STATE_DIR = CACHE_ROOT / "cluster"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/17"  # kwok's fake pod IPs; the real node's subnet is realnode.NODE_POD_CIDR
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# The kwok node carries this taint so that ordinary workloads land on the real node; tests written
# for kwok target it through their namespace (KWOK_NAMESPACE_ANNOTATIONS).
KWOK_TAINT = {"key": KWOK_NODE_ANNOTATION, "value": "fake", "effect": "NoSchedule"}
# PodNodeSelector and PodTolerationRestriction admission read these from a namespace: every pod in it
# gets the kwok node's selector and toleration.
KWOK_TOLERATION = {"key": KWOK_TAINT["key"], "operator": "Exists", "effect": "NoSchedule"}
KWOK_NODE_SELECTOR = {"type": "kwok"}
KWOK_NAMESPACE_ANNOTATIONS = {
    "scheduler.alpha.kubernetes.io/node-selector": ",".join(f"{k}={v}" for k, v in KWOK_NODE_SELECTOR.items()),
    "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([KWOK_TOLERATION]),
}
APISERVER_KUBELET_CLIENT = "kube-apiserver-kubelet-client"
# MLMODEL_REAL_NODE: "auto" (default) starts the real node unless another cluster on this machine
# runs it; "1" requires it; "0" starts a kwok-only cluster.
REAL_NODE_ENV = "MLMODEL_REAL_NODE"
START_TIMEOUT_SECONDS = 90


class ClusterError(RuntimeError):
    """The control plane could not be built or started; the message says which part and why."""


@dataclass
class ClusterState:
    """What a running cluster needs to be found again, stored as state.json in its directory."""

    state_dir: str
    kubeconfig: str
    api_url: str
    pids: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    bin_dirs: dict[str, str] = field(default_factory=dict)
    node_pids: dict[str, int] = field(
        default_factory=dict
    )  # the real node's daemons (hack/realnode.py); empty: kwok only
    companions: dict[str, int] = field(default_factory=dict)  # processes that live and die with the cluster

    @property
    def kubectl(self) -> str:
        return str(Path(self.bin_dirs["k8s"]) / "kubectl")

    def path(self, name: str) -> Path:
        return Path(self.state_dir) / name


# ---------------------------------------------------------------------------------------------
# tools


# What `hack/build-tools.sh node` prints, in order: one directory per tool set of the real node.
NODE_TOOL_SETS = ("containerd", "crictl", "kube-router", "coredns", "k8s-node", "pause")


def build_tools(with_node: bool = False) -> dict[str, str]:
    """Build (first time only) and locate the tool sets; returns {"k8s": bin, "etcd": bin, "kwok": bin}
    (with the real node's sets too when asked)."""
    sets = ["k8s", "etcd", "kwok"]
    names = sets + (list(NODE_TOOL_SETS) if with_node else [])
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "build-tools.sh"), *sets, *(["node"] if with_node else [])],
        stdout=subprocess.PIPE,
        stderr=None,
        text=True,
    )
    if result.returncode != 0:
        raise ClusterError(
            f"building the control-plane tools failed (hack/build-tools.sh exit {result.returncode}); see the output above"
        )
    dirs = result.stdout.split()
    if len(dirs) != len(names):
        raise ClusterError(f"hack/build-tools.sh printed {dirs!r}, expected {len(names)} directories")
    return dict(zip(names, dirs, strict=True))


# ---------------------------------------------------------------------------------------------
# certificates


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject_cn: str,
    key,
    issuer: tuple | None,
    *,
    orgs: tuple[str, ...] = (),
    ca: bool = False,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = False,
) -> x509.Certificate:
    import ipaddress

    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, subject_cn),
            *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs),
        ]
    )
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usages = ([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH] if server_names or server_ips else []) + (
            [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names or server_ips:
        sans = [x509.DNSName(n) for n in server_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_pki(pki: Path) -> None:
    """A CA, the API server's serving certificate, one client certificate per component, the service-account key."""
    pki.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_cert = _certificate("mlmodel-local-ca", ca_key, None, ca=True)
    files = {"ca.crt": _pem_cert(ca_cert), "ca.key": _pem_key(ca_key)}
    apiserver_key = _new_key()
    files["apiserver.crt"] = _pem_cert(
        _certificate(
            "kube-apiserver",
            apiserver_key,
            (ca_cert, ca_key),
            server_names=(
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ),
            server_ips=("127.0.0.1", str(next(ipaddress.ip_network(SERVICE_CIDR).hosts()))),
        )
    )
    files["apiserver.key"] = _pem_key(apiserver_key)
    kubelet_key = _new_key()  # the real node's serving certificate, checked by the API server
    files["kubelet-serving.crt"] = _pem_cert(
        _certificate(
            f"system:node:{realnode.NODE_NAME}",
            kubelet_key,
            (ca_cert, ca_key),
            orgs=("system:nodes",),
            server_names=(realnode.NODE_NAME,),
            server_ips=(realnode.BRIDGE_IP,),
        )
    )
    files["kubelet-serving.key"] = _pem_key(kubelet_key)
    clients = {
        "admin": ("kubernetes-admin", ("system:masters",)),
        "controller-manager": ("system:kube-controller-manager", ()),
        "scheduler": ("system:kube-scheduler", ()),
        "kwok": (
            "kwok-controller",
            ("system:masters",),
        ),  # kwok plays every kubelet: it writes nodes, leases and pod status
        # the real node (hack/realnode.py): the Node authorizer and NodeRestriction accept this identity
        "kubelet": (f"system:node:{realnode.NODE_NAME}", ("system:nodes",)),
        "kube-proxy": ("system:kube-proxy", ()),  # bound to system:node-proxier by default
        # node infrastructure of a local cluster, as trusted as kwok
        "kube-router": ("kube-router", ("system:masters",)),
        "coredns": ("coredns", ("system:masters",)),
        # the API server's identity towards kubelets (logs, exec, port-forward), bound to system:kubelet-api-admin
        "apiserver-kubelet-client": (APISERVER_KUBELET_CLIENT, ()),
    }
    for component, (cn, orgs) in clients.items():
        key = _new_key()
        files[f"{component}.crt"] = _pem_cert(_certificate(cn, key, (ca_cert, ca_key), orgs=orgs, client=True))
        files[f"{component}.key"] = _pem_key(key)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files["sa.key"] = _pem_key(sa_key)
    files["sa.pub"] = sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for name, data in files.items():
        target = pki / name
        target.write_bytes(data)
        target.chmod(0o600)


def write_kubeconfig(path: Path, api_url: str, pki: Path, component: str) -> None:
    import base64

    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "mlmodel-local", "cluster": {"server": api_url, "certificate-authority-data": b64("ca.crt")}}
        ],
        "users": [
            {
                "name": component,
                "user": {
                    "client-certificate-data": b64(f"{component}.crt"),
                    "client-key-data": b64(f"{component}.key"),
                },
            }
        ],
        "contexts": [{"name": "mlmodel-local", "context": {"cluster": "mlmodel-local", "user": component}}],
        "current-context": "mlmodel-local",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# ---------------------------------------------------------------------------------------------
# processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


_children: dict[int, subprocess.Popen] = {}  # processes started by this Python process, reaped on stop


def _pid_alive(pid: int) -> bool:
    if pid in _children:
        return _children[pid].poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie of ours is not alive
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _start(state: ClusterState, name: str, argv: list[str]) -> None:
    process = realnode.spawn(state.path("logs"), name, argv, cwd=state.state_dir)
    _children[process.pid] = process
    state.pids[name] = process.pid
    _save(state)


def _log_tail(state: ClusterState, name: str, lines: int = 15) -> str:
    return realnode.log_tail(state.path("logs"), name, lines)


def _wait(state: ClusterState, name: str, what: str, check, timeout: float = START_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(state.pids[name]):
            raise ClusterError(f"{name} exited while waiting for {what}; last log lines:\n{_log_tail(state, name)}")
        if check():
            return
        time.sleep(0.2)
    raise ClusterError(
        f"{name}: timed out after {timeout:.0f} s waiting for {what}; last log lines:\n{_log_tail(state, name)}"
    )


def _https_ok(state: ClusterState, path: str) -> bool:
    context = ssl.create_default_context(cafile=str(state.path("pki/ca.crt")))
    context.load_cert_chain(str(state.path("pki/admin.crt")), str(state.path("pki/admin.key")))
    try:
        with urllib.request.urlopen(state.api_url + path, context=context, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def kubectl(
    state: ClusterState, *args: str, input: str | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [state.kubectl, "--kubeconfig", state.kubeconfig, *args], input=input, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


# ---------------------------------------------------------------------------------------------
# components


def _start_etcd(state: ClusterState) -> None:
    client, peer = state.ports["etcd"], state.ports["etcd-peer"]
    _start(
        state,
        "etcd",
        [
            str(Path(state.bin_dirs["etcd"]) / "etcd"),
            "--name=local",
            f"--data-dir={state.path('etcd')}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true",  # a throwaway test store: durability costs seconds per test and buys nothing
            "--log-level=warn",
        ],
    )
    _wait(state, "etcd", "/health", lambda: realnode.http_ok(f"http://127.0.0.1:{client}/health"))


def _start_apiserver(state: ClusterState) -> None:
    pki = state.path("pki")
    port = state.ports["apiserver"]
    _start(
        state,
        "kube-apiserver",
        [
            str(Path(state.bin_dirs["k8s"]) / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{state.ports['etcd']}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none",  # the kubernetes Service cannot point at a loopback address
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-issuer=https://127.0.0.1:{port}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            # PodSecurity, ServiceAccount etc. are on by default; the last two place kwok tests' pods (KWOK_NAMESPACE_ANNOTATIONS)
            "--enable-admission-plugins=NodeRestriction,PodNodeSelector,PodTolerationRestriction",
            f"--kubelet-client-certificate={pki / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'apiserver-kubelet-client.key'}",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=true",  # so that PodSecurity, not this flag, is what rejects privileged pods
            "--profiling=false",
            "--v=1",
        ],
    )
    _wait(state, "kube-apiserver", "/readyz", lambda: _https_ok(state, "/readyz"))


def _start_controller_manager(state: ClusterState) -> None:
    pki = state.path("pki")
    _start(
        state,
        "kube-controller-manager",
        [
            str(Path(state.bin_dirs["k8s"]) / "kube-controller-manager"),
            f"--kubeconfig={state.path('controller-manager.kubeconfig')}",
            f"--authentication-kubeconfig={state.path('controller-manager.kubeconfig')}",
            f"--authorization-kubeconfig={state.path('controller-manager.kubeconfig')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['controller-manager']}",
            "--leader-elect=false",
            "--use-service-account-credentials=true",  # each controller under its own identity, as in a real cluster
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}",
            f"--cluster-signing-key-file={pki / 'ca.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,-nodeipam",  # kwok hands out pod IPs itself
            "--v=1",
        ],
    )


def _start_scheduler(state: ClusterState) -> None:
    _start(
        state,
        "kube-scheduler",
        [
            str(Path(state.bin_dirs["k8s"]) / "kube-scheduler"),
            f"--kubeconfig={state.path('scheduler.kubeconfig')}",
            f"--authentication-kubeconfig={state.path('scheduler.kubeconfig')}",
            f"--authorization-kubeconfig={state.path('scheduler.kubeconfig')}",
            "--bind-address=127.0.0.1",
            f"--secure-port={state.ports['scheduler']}",
            "--leader-elect=false",
            "--v=1",
        ],
    )


TEST_FAILURE_LABEL = "mlmodel.test/fail"


def kwok_config(state: ClusterState) -> str:
    """kwok's shipped default stages plus the project's test stages (hack/kwok/).

    kwok's pod-ready stage would also match the pods that opted into a simulated failure (they
    stay Pending, as on a real kubelet), so it is narrowed to pods without the failure label."""
    import yaml

    stage_files = sorted((Path(state.bin_dirs["kwok"]).parent / "stages").glob("*.yaml"))
    if not stage_files:
        raise ClusterError("no kwok stages found: rebuild the kwok tool set (hack/build-tools.sh kwok)")
    stages = [doc for f in stage_files for doc in yaml.safe_load_all(f.read_text()) if doc]
    for stage in stages:
        if stage["metadata"]["name"] == "pod-ready":
            stage["spec"]["selector"]["matchExpressions"].append(
                {"key": f'.metadata.labels["{TEST_FAILURE_LABEL}"]', "operator": "DoesNotExist"}
            )
    stages += [
        doc
        for f in sorted((REPO_ROOT / "hack" / "kwok").glob("*.yaml"))
        for doc in yaml.safe_load_all(f.read_text())
        if doc
    ]
    return yaml.safe_dump_all(stages, sort_keys=False)


def _start_kwok(state: ClusterState) -> None:
    config = state.path("kwok.yaml")
    config.write_text(kwok_config(state))
    _start(
        state,
        "kwok",
        [
            str(Path(state.bin_dirs["kwok"]) / "kwok"),
            f"--kubeconfig={state.path('kwok.kubeconfig')}",
            f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}=fake",
            "--node-lease-duration-seconds=40",
            f"--cidr={POD_CIDR}",
            "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{state.ports['kwok']}",
        ],
    )
    _wait(state, "kwok", "/healthz", lambda: realnode.http_ok(f"http://127.0.0.1:{state.ports['kwok']}/healthz"))


def node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
        },
        "spec": {"taints": [KWOK_TAINT]},
        # Fake capacity: room for the operator benchmark's 1000 models on one node.
        "status": {
            "allocatable": {"cpu": "1k", "memory": "4Ti", "pods": "3000"},
            "capacity": {"cpu": "1k", "memory": "4Ti", "pods": "3000"},
        },
    }


def _add_nodes(state: ClusterState, count: int) -> None:
    manifests = [node_manifest(f"kwok-node-{i}") for i in range(count)]
    kubectl(state, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}))
    for manifest in manifests:
        name = manifest["metadata"]["name"]
        _wait(
            state,
            "kwok",
            f"node {name} Ready",
            lambda name=name: (
                kubectl(
                    state,
                    "get",
                    "node",
                    name,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                    check=False,
                ).stdout
                == "True"
            ),
        )


def create_kwok_namespace(state: ClusterState, name: str) -> None:
    """A namespace whose pods all run on the kwok node (its selector and toleration are added on
    admission): for tests and benchmarks that rely on kwok's stages or on fake images."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "annotations": KWOK_NAMESPACE_ANNOTATIONS},
    }
    kubectl(state, "create", "-f", "-", input=json.dumps(manifest))


def mark_kwok_namespace(state: ClusterState, name: str) -> None:
    """Make an existing (or new) namespace a kwok one, with annotations that a later `kubectl apply`
    of the namespace keeps (they are not part of its last-applied configuration)."""
    kubectl(state, "create", "namespace", name, check=False)
    kubectl(
        state,
        "annotate",
        "--overwrite",
        "namespace",
        name,
        *(f"{k}={v}" for k, v in KWOK_NAMESPACE_ANNOTATIONS.items()),
    )


def _wait_default_service_account(state: ClusterState) -> None:
    _wait(
        state,
        "kube-controller-manager",
        "the default ServiceAccount",
        lambda: kubectl(state, "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0,
    )


# ---------------------------------------------------------------------------------------------
# lifecycle


def _save(state: ClusterState) -> None:
    state.path("state.json").write_text(json.dumps(asdict(state), indent=2))


def load_state(state_dir: Path = DEFAULT_STATE_DIR) -> ClusterState | None:
    try:
        return ClusterState(**json.loads((state_dir / "state.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def is_running(state: ClusterState | None) -> bool:
    return bool(
        state
        and state.pids
        and all(_pid_alive(pid) for pid in state.pids.values())
        and (not state.node_pids or realnode.running(state.node_pids))
        and _https_ok(state, "/readyz")
    )


def has_real_node(state: ClusterState) -> bool:
    return bool(state.node_pids)


def real_node_mode() -> str:
    mode = os.environ.get(REAL_NODE_ENV, "auto").strip().lower() or "auto"
    if mode not in ("auto", "1", "0"):
        raise ClusterError(f"{REAL_NODE_ENV} must be auto, 1 or 0, not {mode!r}")
    return mode


def _node_files(state: ClusterState) -> realnode.NodeFiles:
    return realnode.NodeFiles(
        state_dir=Path(state.state_dir),
        pki=state.path("pki"),
        kubelet_kubeconfig=state.path("kubelet.kubeconfig"),
        kube_proxy_kubeconfig=state.path("kube-proxy.kubeconfig"),
        kube_router_kubeconfig=state.path("kube-router.kubeconfig"),
        coredns_kubeconfig=state.path("coredns.kubeconfig"),
    )


def _start_real_node(state: ClusterState, mode: str, log) -> None:
    kubectl(
        state,
        "create",
        "clusterrolebinding",
        "mlmodel-local:apiserver-kubelet-client",
        "--clusterrole=system:kubelet-api-admin",
        f"--user={APISERVER_KUBELET_CLIENT}",
    )
    ports = {name: free_port() for name in ("kubelet-healthz", "kube-proxy-healthz", "kube-proxy-metrics")}
    tools = realnode.tools_from(state.bin_dirs, _versions()["PAUSE_IMAGE"])
    try:
        state.node_pids = realnode.start(
            _node_files(state),
            tools,
            SERVICE_CIDR,
            state.ports["apiserver"],
            lambda *args, check=True: kubectl(state, *args, check=check),
            ports,
            log=log,
        )
    except realnode.NodeBusy as busy:
        if mode == "1":
            raise ClusterError(str(busy)) from None
        log(f"no real node: {busy}; this cluster has the kwok node only")
        return
    except realnode.NodeError as error:
        raise ClusterError(f"the real node did not start: {error}") from None
    state.ports.update(ports)
    _save(state)
    load_images(state, log)


NODE_ARCHIVES_DIR = CACHE_ROOT / "images" / "node-archives"


def load_images(state: ClusterState, log=print) -> None:
    """The images `make images` built, imported into the real node's containerd (new ones only)."""
    if not state.node_pids or not shutil.which("buildah"):
        return
    result = subprocess.run(
        [str(REPO_ROOT / "hack" / "images.sh"), "export", str(NODE_ARCHIVES_DIR)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise ClusterError(f"hack/images.sh export failed: {result.stderr.strip()[-2000:]}")
    tools = realnode.tools_from(state.bin_dirs, _versions()["PAUSE_IMAGE"])
    realnode.import_images(tools, [Path(line) for line in result.stdout.split()], log=log)
    # deploy/overlays/dev names the images without a registry, as `docker build -t mlmodel-operator:dev` does
    for name in realnode.image_names(tools):
        if name.startswith("localhost/") and name.endswith(":dev"):
            realnode.ctr(
                tools, "images", "tag", "--force", name, "docker.io/library/" + name.removeprefix("localhost/")
            )


def _versions() -> dict[str, str]:
    values = {}
    for line in (REPO_ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def up(state_dir: Path = DEFAULT_STATE_DIR, nodes: int = 1, log=print) -> tuple[ClusterState, bool]:
    """Start the cluster, or reuse the one already running there. Returns (state, started_now)."""
    state_dir = Path(state_dir)
    existing = load_state(state_dir)
    if is_running(existing):
        return existing, False
    if existing:
        down(state_dir)
    mode = real_node_mode()
    bin_dirs = build_tools(with_node=mode != "0")
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    for leftover in ("etcd", "state.json"):
        subprocess.run(["rm", "-rf", str(state_dir / leftover)], check=True)
    (state_dir / "logs").mkdir(exist_ok=True)
    ports = {
        name: free_port() for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler", "kwok")
    }
    api_url = f"https://127.0.0.1:{ports['apiserver']}"
    state = ClusterState(
        state_dir=str(state_dir),
        kubeconfig=str(state_dir / "kubeconfig"),
        api_url=api_url,
        ports=ports,
        bin_dirs=bin_dirs,
    )
    write_pki(state.path("pki"))
    write_kubeconfig(Path(state.kubeconfig), api_url, state.path("pki"), "admin")
    for component in ("controller-manager", "scheduler", "kwok", "kubelet", "kube-proxy", "kube-router", "coredns"):
        write_kubeconfig(state.path(f"{component}.kubeconfig"), api_url, state.path("pki"), component)
    try:
        log("starting etcd")
        _start_etcd(state)
        log("starting kube-apiserver")
        _start_apiserver(state)
        log("starting kube-controller-manager, kube-scheduler, kwok")
        _start_controller_manager(state)
        _start_scheduler(state)
        _start_kwok(state)
        _add_nodes(state, nodes)
        _wait_default_service_account(state)
        if mode != "0":
            log("starting the real node (containerd, kubelet, kube-proxy, kube-router, CoreDNS)")
            _start_real_node(state, mode, log)
    except BaseException:
        down(state_dir)
        raise
    log(f"cluster up in {time.monotonic() - started:.1f} s (api {api_url})")
    return state, True


def add_companion(state: ClusterState, name: str, pid: int) -> None:
    """Tie a process (e.g. the demo's operator) to the cluster: `down` stops it first."""
    state.companions[name] = pid
    _save(state)


def companion_running(state: ClusterState, name: str) -> bool:
    return name in state.companions and _pid_alive(state.companions[name])


def stop_companions(state: ClusterState) -> None:
    """Stop the cluster's companions (e.g. the demo's operator), so tests and benchmarks run alone."""
    for pid in state.companions.values():
        _stop_pid(pid)
    state.companions.clear()
    _save(state)


def restart_apiserver(state: ClusterState, downtime_seconds: float = 0) -> None:
    """Stop kube-apiserver and start it again on the same port and data (what an upgrade or a crash does),
    after `downtime_seconds` without it."""
    _stop_pid(state.pids["kube-apiserver"])
    time.sleep(downtime_seconds)
    _start_apiserver(state)


def _stop_pid(pid: int, grace_seconds: float = 15) -> None:
    if _pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    deadline = time.monotonic() + grace_seconds
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _pid_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def down(state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Stop every process this cluster started (by pid, newest first) and drop its data."""
    state = load_state(Path(state_dir))
    if not state:
        return
    for pid in state.companions.values():
        _stop_pid(pid)
    if state.node_pids:
        realnode.stop(state.node_pids)  # before the API server: the kubelet reports to it while stopping
    for pid in reversed(list(state.pids.values())):
        _stop_pid(pid)
    subprocess.run(["rm", "-rf", str(state.path("etcd")), str(state.path("state.json"))], check=False)


def state_dir_from_env() -> Path:
    """MLMODEL_CLUSTER_DIR, else the default cluster directory."""
    return Path(os.environ.get("MLMODEL_CLUSTER_DIR") or DEFAULT_STATE_DIR)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "up"
    state_dir = state_dir_from_env()
    try:
        if command == "up":
            state, started = up(state_dir, log=lambda msg: print(f">> {msg}", file=sys.stderr))
            if not started:
                print(">> reusing the running cluster", file=sys.stderr)
            print(f"KUBECONFIG={state.kubeconfig}")
        elif command == "down":
            down(state_dir)
            print(">> cluster stopped", file=sys.stderr)
        elif command == "status":
            state = load_state(state_dir)
            print("running" if is_running(state) else "stopped")
            return 0 if is_running(state) else 1
        elif command == "kubeconfig":
            state = load_state(state_dir)
            if not is_running(state):
                print("no cluster running: run `make cluster`", file=sys.stderr)
                return 1
            print(state.kubeconfig)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ClusterError as error:
        print(f"local cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
