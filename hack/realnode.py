"""One real Kubernetes node on this machine, beside the local control plane (hack/localcluster.py).

containerd + runc run the pods; kubelet (node client certificate, webhook authn/authz) registers
the node; the bridge CNI plugin wires pods onto the bridge `mlmodel0`; kube-proxy (iptables mode)
serves ClusterIPs; kube-router enforces NetworkPolicy (its firewall only); CoreDNS serves
cluster.local on the bridge IP. Every daemon is a process started here (no systemd).

One real node per machine: whoever starts it holds an exclusive lock (flock) on LOCK_PATH in a
holder process that starts nothing (so no daemon hands the lock down to its children); `stop()`
ends it last, and a lock whose cluster has died is taken over by the next start. Pod traffic never leaves the machine: the Service CIDR is routed onto the bridge, and the
filter table drops anything forwarded between the bridge and another interface, and anything to the
bridge IP from outside. `stop()` (and the next `start()` after a crash) undoes every change to the
host: sysctls, iptables chains, ipsets, mounts, cgroups, network namespaces, the bridge.

The machine's quirks (see docs): cgroup v1 (kubelet `failCgroupV1: false`), no CAP_SYS_RESOURCE
(containerd `restrict_oom_score_adj`, kubelet `oomScoreAdj: 0`).
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NODE_NAME = "mlmodel-node"
NODE_LABEL = ("type", "real")
BRIDGE = "mlmodel0"
NODE_POD_CIDR = "10.244.128.0/24"  # the rest of the cluster's pod CIDR is kwok's
BRIDGE_IP = str(next(ipaddress.ip_network(NODE_POD_CIDR).hosts()))
KUBELET_PORT = 10250
CLUSTER_DOMAIN = "cluster.local"
DATA_ROOT = Path("/var/lib/mlmodel-realnode")  # containerd's images survive restarts: warm starts skip imports
RUN_ROOT = Path("/run/mlmodel-realnode")
LOCK_PATH = Path("/run/mlmodel-realnode.lock")
SAVED_SYSCTLS = DATA_ROOT / "saved-sysctls.json"  # written once per dirty period: a crash never overwrites originals
CONTAINERD_SOCKET = RUN_ROOT / "containerd.sock"
CNI_BIN_DIR = "/usr/lib/cni"
ISOLATION_CHAIN = "MLMODEL-NODE-FORWARD"
INPUT_CHAIN = "MLMODEL-NODE-INPUT"
API_CHAIN = "MLMODEL-NODE-API"
# Chains and ipsets the node's components create: kube-proxy and kubelet (KUBE-), the CNI plugins
# (CNI-), kube-router (KUBE-ROUTER-, KUBE-POD-FW-, KUBE-NWPLCY-, KUBE-SRC-, KUBE-DST-), ours.
CHAIN_PREFIXES = ("KUBE-", "CNI-", "MLMODEL-NODE-")
IPSET_PREFIXES = ("KUBE-", "kube-router")
# Sysctls the node's components change (kubelet, the bridge plugin, br_netfilter users, kube-proxy).
TOUCHED_SYSCTLS = (
    "vm/overcommit_memory",
    "kernel/panic",
    "kernel/panic_on_oops",
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "net/netfilter/nf_conntrack_max",
    "net/ipv4/conf/all/route_localnet",
)
START_TIMEOUT_SECONDS = 60


class NodeError(RuntimeError):
    """The real node could not start; the message says which part and why."""


class NodeBusy(NodeError):
    """Another cluster on this machine runs the real node."""


@dataclass
class NodeTools:
    k8s_node: Path  # kubelet, kube-proxy
    containerd: Path  # containerd, containerd-shim-runc-v2, ctr
    crictl: Path
    kube_router: Path
    coredns: Path
    pause_archive: Path
    pause_image: str


def tools_from(bin_dirs: dict[str, str], pause_image: str) -> NodeTools:
    pause_dir = Path(bin_dirs["pause"])
    return NodeTools(
        Path(bin_dirs["k8s-node"]),
        Path(bin_dirs["containerd"]),
        Path(bin_dirs["crictl"]),
        Path(bin_dirs["kube-router"]),
        Path(bin_dirs["coredns"]),
        pause_dir / "pause.oci.tar",
        pause_image,
    )


# ---------------------------------------------------------------------------------------------
# the machine-wide lock


LOCK_HOLDER_MARKER = "mlmodel-realnode lock holder"
# Holds the flock and nothing else: a daemon holding it would hand it down to everything it starts.
LOCK_HOLDER_SCRIPT = f"# {LOCK_HOLDER_MARKER}\nimport signal\nwhile True: signal.pause()"


def _lock_owner() -> dict:
    try:
        return json.loads(LOCK_PATH.read_text())
    except (OSError, ValueError):
        return {}


def _owner_gone(owner: dict) -> bool:
    """The cluster that took the lock no longer runs (its API server is dead or its state is gone): a
    crash or a SIGKILL left only the holder behind."""
    try:
        state = json.loads((Path(owner["state_dir"]) / "state.json").read_text())
        return not _alive(state["pids"]["kube-apiserver"])
    except (OSError, ValueError, KeyError, TypeError):
        return True


def _is_lock_holder(pid: int) -> bool:
    try:
        return LOCK_HOLDER_MARKER in (Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
    except OSError:
        return False


def take_lock(state_dir: Path, logs: Path) -> int:
    """Take the machine's real-node lock in a holder process of its own; returns the holder's pid.
    A lock whose cluster is gone is taken over; one whose cluster runs raises NodeBusy."""
    import sys

    for _ in range(2):
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = _lock_owner()
            if owner and _owner_gone(owner) and _is_lock_holder(owner.get("holder", -1)):
                _kill([owner["holder"]], grace_seconds=2)
                continue
            raise NodeBusy(
                f"the machine's real node is in use by the cluster in {owner.get('state_dir', '?')} "
                "(one real node per machine)"
            ) from None
        try:
            holder = spawn(logs, "lock-holder", [sys.executable, "-c", LOCK_HOLDER_SCRIPT], pass_fds=(fd,)).pid
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"state_dir": str(state_dir), "holder": holder}).encode())
        finally:
            os.close(fd)  # the holder keeps the lock
        return holder
    raise NodeBusy("the machine's real node lock could not be taken over")


def lock_holder() -> str | None:
    """Which cluster holds the lock now (None when free)."""
    try:
        fd = os.open(LOCK_PATH, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return f"the cluster in {_lock_owner().get('state_dir', '?')}"
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# configuration files (pure)


def containerd_config(tools: NodeTools) -> str:
    return f"""version = 3
root = "{DATA_ROOT / "containerd"}"
state = "{RUN_ROOT / "containerd"}"
oom_score = 0

[grpc]
  address = "{CONTAINERD_SOCKET}"

[ttrpc]
  address = "{RUN_ROOT / "containerd-ttrpc.sock"}"

[plugins."io.containerd.grpc.v1.cri"]
  disable_tcp_service = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  # no CAP_SYS_RESOURCE on this machine: a negative oom_score_adj is refused
  restrict_oom_score_adj = true
  disable_apparmor = true
  tolerate_missing_hugetlb_controller = true
  netns_mounts_under_state_dir = true

[plugins."io.containerd.cri.v1.runtime".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = false
  BinaryName = "{shutil.which("runc") or "/usr/sbin/runc"}"

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["{CNI_BIN_DIR}"]
  conf_dir = "{DATA_ROOT / "cni" / "net.d"}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{tools.pause_image}"
"""


def cni_config() -> dict:
    return {
        "cniVersion": "1.0.0",
        "name": "mlmodel",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": NODE_POD_CIDR, "gateway": BRIDGE_IP}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(DATA_ROOT / "cni" / "ipam"),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(pki: Path, healthz_port: int) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this machine has cgroup v1 only
        "failSwapOn": False,
        "cgroupDriver": "cgroupfs",
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE: the default -999 is refused
        "address": BRIDGE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(pki / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(pki / "ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [BRIDGE_IP],
        "resolvConf": str(RUN_ROOT / "resolv.conf"),  # never the host's resolver
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        # imported images cannot be pulled again: never collect them
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {"memory.available": "200Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
        "serializeImagePulls": False,
        "shutdownGracePeriod": "0s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
    }


def kube_proxy_config(kubeconfig: Path, healthz_port: int, metrics_port: int) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "mode": "iptables",
        "clusterCIDR": NODE_POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        # leave the host's conntrack sysctls alone
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "nodePortAddresses": [f"{BRIDGE_IP}/32"],
        "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
    }


def corefile(kubeconfig: Path) -> str:
    return f"""{CLUSTER_DOMAIN}:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {BRIDGE_IP}
    errors
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} mlmodel-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
.:53 {{
    bind {BRIDGE_IP}
    errors
    # nothing outside the cluster is resolvable: pod traffic never leaves the machine
    template ANY ANY {{
        rcode NXDOMAIN
    }}
}}
"""


def isolation_rules() -> dict[str, list[list[str]]]:
    """filter-table chains that keep pod traffic on the machine: nothing is forwarded between the
    bridge and another interface, and the node's own address (kubelet, CoreDNS) answers only the
    bridge and the host itself."""
    return {
        ISOLATION_CHAIN: [
            ["-i", BRIDGE, "!", "-o", BRIDGE, "-j", "DROP"],
            ["!", "-i", BRIDGE, "-o", BRIDGE, "-j", "DROP"],
        ],
        INPUT_CHAIN: [
            ["-i", "lo", "-j", "RETURN"],
            ["-i", BRIDGE, "-j", "RETURN"],
            ["-d", BRIDGE_IP, "-j", "DROP"],
        ],
    }


# ---------------------------------------------------------------------------------------------
# host changes and their undoing


def _run(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(list(argv), capture_output=True, text=True, input=input)
    if check and result.returncode != 0:
        raise NodeError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name


def save_sysctls() -> None:
    if SAVED_SYSCTLS.exists():
        return  # a crashed run's originals: keep them
    values = {}
    for name in TOUCHED_SYSCTLS:
        try:
            values[name] = _sysctl_path(name).read_text().strip()
        except OSError:
            pass  # e.g. br_netfilter's sysctls before its first use
    SAVED_SYSCTLS.parent.mkdir(parents=True, exist_ok=True)
    SAVED_SYSCTLS.write_text(json.dumps(values, indent=2))


def restore_sysctls() -> None:
    try:
        values = json.loads(SAVED_SYSCTLS.read_text())
    except (OSError, ValueError):
        return
    for name, value in values.items():
        try:
            _sysctl_path(name).write_text(value)
        except OSError:
            pass
    SAVED_SYSCTLS.unlink()


def _ours(chain: str) -> bool:
    return chain.startswith(CHAIN_PREFIXES)


def filtered_iptables_save(dump: str) -> str | None:
    """iptables-save output without the node's chains and every rule in or jumping to them;
    None when there is nothing of ours in it."""
    out, changed = [], False
    for line in dump.splitlines():
        if line.startswith(":") and _ours(line[1:].split()[0]):
            changed = True
            continue
        if line.startswith("-A "):
            parts = line.split()
            targets = [parts[i + 1] for i, p in enumerate(parts[:-1]) if p in ("-j", "-g", "--jump", "--goto")]
            if _ours(parts[1]) or any(_ours(t) for t in targets):
                changed = True
                continue
        out.append(line)
    return "\n".join(out) + "\n" if changed else None


def remove_iptables_chains() -> None:
    for save, restore in (("iptables-save", "iptables-restore"), ("ip6tables-save", "ip6tables-restore")):
        if not shutil.which(save):
            continue
        dump = _run(save, check=False).stdout
        filtered = filtered_iptables_save(dump)
        if filtered is not None:
            _run(restore, input=filtered)


def remove_ipsets() -> None:
    if not shutil.which("ipset"):
        return
    names = _run("ipset", "list", "-n", check=False).stdout.split()
    ours = [n for n in names if n.startswith(IPSET_PREFIXES)]
    for name in ours:
        _run("ipset", "flush", name, check=False)
    for _ in range(3):  # sets referenced by other sets (list:set) go first
        for name in ours:
            _run("ipset", "destroy", name, check=False)


def unmount_under(*roots: Path) -> None:
    prefixes = tuple(str(r) for r in roots)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if mount_point.startswith(prefixes):
            mounts.append(mount_point)
    for mount_point in sorted(set(mounts), key=len, reverse=True):
        _run("umount", "-l", mount_point, check=False)


def remove_kubepods_cgroups() -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        top = hierarchy / "kubepods"
        if not top.is_dir():
            continue
        for directory in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                directory.rmdir()
            except OSError:
                pass
        try:
            top.rmdir()
        except OSError:
            pass


def _processes_using(marker: str) -> list[int]:
    """Pids whose command line mentions marker (e.g. our containerd socket), for the shims."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(proc.name))
    return pids


def _kill(pids: list[int], grace_seconds: float = 10) -> None:
    import signal

    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] == "Z"
    except OSError:
        return True


def clean_host(log=lambda _msg: None) -> None:
    """Undo everything a (running, stopped or crashed) real node changed on this machine.
    Only called with the lock held or after containerd is gone."""
    # The node's daemons and the pods' shims and containers, found by the paths only they use.
    leftovers = _processes_using(str(RUN_ROOT)) + _processes_using(str(DATA_ROOT))
    if leftovers:
        log(f"stopping {len(leftovers)} leftover real-node processes")
        _kill(sorted(set(leftovers)))
    kill_pod_processes()
    unmount_under(
        DATA_ROOT / "kubelet",
        RUN_ROOT,
        DATA_ROOT / "containerd" / "io.containerd.runtime.v2.task",
        DATA_ROOT / "containerd" / "io.containerd.grpc.v1.cri",
    )
    remove_kubepods_cgroups()
    _run("ip", "link", "del", BRIDGE, check=False)  # takes the Service CIDR route with it
    remove_iptables_chains()
    remove_ipsets()
    for leftover in ("kubelet", "cni/ipam"):
        shutil.rmtree(DATA_ROOT / leftover, ignore_errors=True)
    shutil.rmtree(RUN_ROOT, ignore_errors=True)
    restore_sysctls()


def _cgroup_v1_pids(pid_cgroup_root: Path) -> list[int]:
    pids = []
    for procs in pid_cgroup_root.rglob("cgroup.procs"):
        try:
            pids += [int(p) for p in procs.read_text().split()]
        except OSError:
            pass
    return pids


def kill_pod_processes() -> None:
    """Every process in a pod's cgroup (the containers themselves; the shims are found by socket)."""
    for hierarchy in ("pids", "memory", "cpu,cpuacct", "cpuset"):
        top = Path("/sys/fs/cgroup") / hierarchy / "kubepods"
        if top.is_dir():
            pids = _cgroup_v1_pids(top)
            if pids:
                _kill(pids, grace_seconds=2)
            return


def api_rule(service_cidr: str, api_port: int) -> list[str]:
    """nat rule: pods reach the API server (on 127.0.0.1 only) through the `kubernetes` Service's IP,
    as in-cluster clients expect (route_localnet on the bridge allows the loopback destination)."""
    kubernetes_ip = str(next(ipaddress.ip_network(service_cidr).hosts()))
    return [
        "-i",
        BRIDGE,
        "-d",
        f"{kubernetes_ip}/32",
        "-p",
        "tcp",
        "--dport",
        "443",
        "-j",
        "DNAT",
        "--to-destination",
        f"127.0.0.1:{api_port}",
    ]


def prepare_host(service_cidr: str, api_port: int) -> None:
    save_sysctls()
    for directory in (DATA_ROOT / "cni" / "net.d", DATA_ROOT / "kubelet", RUN_ROOT):
        directory.mkdir(parents=True, exist_ok=True)
    # The bridge exists before the first pod: kubelet's node IP is its address.
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{BRIDGE_IP}/{ipaddress.ip_network(NODE_POD_CIDR).prefixlen}", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # ClusterIPs resolve to pods behind the bridge: host traffic to them leaves through it, never the default route.
    _run("ip", "route", "add", service_cidr, "dev", BRIDGE, "src", BRIDGE_IP)
    for chain, rules in isolation_rules().items():
        _run("iptables", "-N", chain)
        for rule in rules:
            _run("iptables", "-A", chain, *rule)
    _run("iptables", "-I", "FORWARD", "1", "-j", ISOLATION_CHAIN)
    _run("iptables", "-I", "INPUT", "1", "-j", INPUT_CHAIN)
    _run("iptables", "-t", "nat", "-N", API_CHAIN)
    _run("iptables", "-t", "nat", "-A", API_CHAIN, *api_rule(service_cidr, api_port))
    _run("iptables", "-t", "nat", "-I", "PREROUTING", "1", "-j", API_CHAIN)
    # the bridge's own sysctl: it goes away with the bridge
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet").write_text("1")


# ---------------------------------------------------------------------------------------------
# processes


def spawn(
    logs: Path, name: str, argv: list[str], env: dict | None = None, pass_fds: tuple = (), cwd: Path | None = None
) -> subprocess.Popen:
    """Start `argv` in a session of its own, its output appended to `logs/<name>.log` (the cluster's processes too)."""
    log = open(logs / f"{name}.log", "ab")
    return subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
        pass_fds=pass_fds,
        cwd=cwd,
    )


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and not _zombie(pid)


def log_tail(logs: Path, name: str, lines: int = 15) -> str:
    try:
        return "\n".join((logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(
    logs: Path, pids: dict[str, int], name: str, what: str, check, timeout: float = START_TIMEOUT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pids[name]):
            raise NodeError(f"{name} exited while waiting for {what}; last log lines:\n{log_tail(logs, name)}")
        if check():
            return
        time.sleep(0.2)
    raise NodeError(
        f"{name}: timed out after {timeout:.0f} s waiting for {what}; last log lines:\n{log_tail(logs, name)}"
    )


def http_ok(url: str) -> bool:
    """Whether a GET of url answers 200 within 2 s (health endpoints of the node's and the cluster's processes)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def ctr(tools: NodeTools, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(
        str(tools.containerd / "ctr"), "--address", str(CONTAINERD_SOCKET), "--namespace", "k8s.io", *args, check=check
    )


def image_names(tools: NodeTools) -> set[str]:
    return set(ctr(tools, "images", "list", "--quiet").stdout.split())


def import_image(tools: NodeTools, archive: Path) -> None:
    """Import an OCI archive into the node's containerd (the kubelet never pulls: no registry is reachable)."""
    ctr(tools, "images", "import", "--local", str(archive))


def import_images(tools: NodeTools, archives: list[Path], log=print) -> None:
    """Import the archives not imported before (containerd's store outlives the node: warm starts skip them)."""
    done_dir = DATA_ROOT / "imported"
    done_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        marker = done_dir / archive.name
        if marker.exists():
            continue
        started = time.monotonic()
        import_image(tools, archive)
        marker.touch()
        log(f"imported {archive.name} into the node's containerd in {time.monotonic() - started:.1f} s")


@dataclass
class NodeFiles:
    """What the control plane hands the node: its state directory, the CA and the kubeconfigs."""

    state_dir: Path
    kubelet_kubeconfig: Path
    kube_proxy_kubeconfig: Path
    kube_router_kubeconfig: Path
    coredns_kubeconfig: Path
    pki: Path


def start(
    files: NodeFiles, tools: NodeTools, service_cidr: str, api_port: int, kubectl, ports: dict[str, int], log=print
) -> dict[str, int]:
    """Start the node (cleaning what a crashed run left first); returns {process name: pid}.
    kubectl(*args, check=...) runs the cluster's kubectl as admin."""
    logs = files.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pids: dict[str, int] = {"lock-holder": take_lock(files.state_dir, logs)}
    try:
        clean_host(log)
        prepare_host(service_cidr, api_port)
        config_dir = RUN_ROOT / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "containerd.toml").write_text(containerd_config(tools))
        (DATA_ROOT / "cni" / "net.d" / "10-mlmodel.conflist").write_text(json.dumps(cni_config(), indent=2))
        (RUN_ROOT / "resolv.conf").write_text(f"nameserver {BRIDGE_IP}\n")
        (config_dir / "kubelet.json").write_text(
            json.dumps(kubelet_config(files.pki, ports["kubelet-healthz"]), indent=2)
        )
        (config_dir / "kube-proxy.json").write_text(
            json.dumps(
                kube_proxy_config(
                    files.kube_proxy_kubeconfig, ports["kube-proxy-healthz"], ports["kube-proxy-metrics"]
                ),
                indent=2,
            )
        )
        (config_dir / "Corefile").write_text(corefile(files.coredns_kubeconfig))
        env = {**os.environ, "PATH": f"{tools.containerd}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"}

        pids["containerd"] = spawn(
            logs,
            "containerd",
            [str(tools.containerd / "containerd"), "--config", str(config_dir / "containerd.toml")],
            env=env,
        ).pid
        _wait(
            logs,
            pids,
            "containerd",
            "its socket",
            lambda: CONTAINERD_SOCKET.exists() and ctr(tools, "version", check=False).returncode == 0,
        )
        if tools.pause_image not in image_names(tools):
            import_image(tools, tools.pause_archive)

        pids["kubelet"] = spawn(
            logs,
            "kubelet",
            [
                str(tools.k8s_node / "kubelet"),
                f"--config={config_dir / 'kubelet.json'}",
                f"--kubeconfig={files.kubelet_kubeconfig}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={BRIDGE_IP}",
                f"--root-dir={DATA_ROOT / 'kubelet'}",
                f"--node-labels={NODE_LABEL[0]}={NODE_LABEL[1]}",
                "--v=1",
            ],
            env=env,
        ).pid
        _wait(
            logs,
            pids,
            "kubelet",
            f"node {NODE_NAME} Ready",
            lambda: (
                kubectl(
                    "get",
                    "node",
                    NODE_NAME,
                    "-o",
                    "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                    check=False,
                ).stdout
                == "True"
            ),
        )
        # nodeipam is off (kwok hands out its own pod IPs): the node's pod CIDR is set here, once
        kubectl(
            "patch",
            "node",
            NODE_NAME,
            "--type=merge",
            "-p",
            json.dumps({"spec": {"podCIDR": NODE_POD_CIDR, "podCIDRs": [NODE_POD_CIDR]}}),
            check=False,
        )

        pids["kube-proxy"] = spawn(
            logs,
            "kube-proxy",
            [str(tools.k8s_node / "kube-proxy"), f"--config={config_dir / 'kube-proxy.json'}", "--v=1"],
            env=env,
        ).pid
        pids["kube-router"] = spawn(
            logs,
            "kube-router",
            [
                str(tools.kube_router / "kube-router"),
                f"--kubeconfig={files.kube_router_kubeconfig}",
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--enable-cni=false",
                f"--hostname-override={NODE_NAME}",
                f"--service-cluster-ip-range={service_cidr}",
                "--metrics-port=0",
                "--health-port=0",  # its health server would listen on every interface
                "--v=1",
            ],
            env=env,
        ).pid
        pids["coredns"] = spawn(
            logs,
            "coredns",
            [str(tools.coredns / "coredns"), "-conf", str(config_dir / "Corefile"), "-dns.port=53"],
            env=env,
        ).pid
        _wait(
            logs,
            pids,
            "kube-proxy",
            "/healthz",
            lambda: http_ok(f"http://127.0.0.1:{ports['kube-proxy-healthz']}/healthz"),
        )
        _wait(
            logs,
            pids,
            "kube-router",
            "its firewall chains",
            lambda: _run("iptables", "-S", "KUBE-ROUTER-FORWARD", check=False).returncode == 0,
        )
        _wait(
            logs,
            pids,
            "coredns",
            "cluster.local answers",
            lambda: _dns_answers(f"kubernetes.default.svc.{CLUSTER_DOMAIN}"),
        )
    except BaseException:
        stop(pids)
        raise
    return pids


def _dns_answers(name: str) -> bool:
    """One A query to CoreDNS on the bridge IP; True when it answers with an address."""
    import socket
    import struct

    query = struct.pack(">HHHHHH", 0x4D4C, 0x0100, 1, 0, 0, 0)
    query += (
        b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0" + struct.pack(">HH", 1, 1)
    )
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        try:
            sock.sendto(query, (BRIDGE_IP, 53))
            answer = sock.recv(512)
        except OSError:
            return False
    return len(answer) > 12 and struct.unpack(">H", answer[6:8])[0] > 0


def stop(pids: dict[str, int], log=lambda _msg: None) -> None:
    """Stop the node: kubelet first (so it restarts nothing), then the pods, the other daemons,
    containerd, and finally undo every host change."""
    for name in ("kubelet", "kube-proxy", "kube-router", "coredns"):
        if name in pids:
            _kill([pids[name]])
    kill_pod_processes()
    if "containerd" in pids:
        _kill([pids["containerd"]])
    holder = pids.get("lock-holder")
    if holder and _is_lock_holder(holder):  # still ours: no other cluster started a node since
        clean_host(log)
        _kill([holder])


def running(pids: dict[str, int]) -> bool:
    return bool(pids) and all(_alive(pid) for pid in pids.values())
