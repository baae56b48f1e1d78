#!/usr/bin/env bash
# Builds the local control-plane tools from Go modules into a cache outside the repository,
# one directory per tool and version. A directory that is complete is never rebuilt.
# Prints the bin directory of each tool set.
# Usage: hack/build-tools.sh [k8s|etcd|kwok|helm|node ...]   (node = the real node's tools, see build_node)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
source "${repo_root}/hack/versions.env"
cache_root="${MLMODEL_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mlmodel-operator}"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

# build_set NAME VERSION MODULE_DIR LDFLAGS PACKAGE...   (BUILD_TAGS overrides the build tags)
build_set() {
  local name="$1" version="$2" module_dir="$3" ldflags="$4"; shift 4
  local tags="${BUILD_TAGS:-selinux,notest}"
  local dest="${cache_root}/${name}-v${version}"
  if [[ -f "${dest}/.complete" ]]; then
    echo "${dest}/bin"; return
  fi
  local staging="${dest}.partial.$$"
  rm -rf "${staging}"; mkdir -p "${staging}/bin"
  echo ">> building ${name} v${version} into ${dest} (first time only; this takes a while)" >&2
  local started=$SECONDS
  (cd "${repo_root}/${module_dir}" && go build -trimpath -tags="${tags}" \
      -ldflags "${ldflags}" -o "${staging}/bin/" "$@") >&2
  echo ">> ${name} built in $((SECONDS - started)) s" >&2
  touch "${staging}/.complete"
  rm -rf "${dest}"; mv "${staging}" "${dest}"
  echo "${dest}/bin"
}

k8s_ldflags() {
  local minor="${KUBERNETES_VERSION#1.}"; minor="${minor%%.*}"
  local flags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X ${pkg}.gitVersion=v${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
  done
  echo "${flags}"
}

# kwok only simulates what its Stage objects describe; it ships the usual ones (nodes become
# Ready and keep their lease, pods become Ready, deleted pods go away) as data in its module.
copy_kwok_default_stages() {
  local stages_dir="$1"
  [[ -f "${stages_dir}/.complete" ]] && return
  local module_dir
  module_dir="$(cd "${repo_root}/tools/kwok" && go mod download -json "sigs.k8s.io/kwok@v${KWOK_VERSION}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  mkdir -p "${stages_dir}"
  cp "${module_dir}/kustomize/stage/node/fast/node-initialize.yaml" \
     "${module_dir}/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "${module_dir}/kustomize/stage/pod/fast/pod-ready.yaml" \
     "${module_dir}/kustomize/stage/pod/fast/pod-complete.yaml" \
     "${module_dir}/kustomize/stage/pod/fast/pod-delete.yaml" "${stages_dir}/"
  chmod u+w "${stages_dir}"/*.yaml
  touch "${stages_dir}/.complete"
}

# The sandbox ("pause") image: no registry is reachable, so it is built from the pause.c that the
# Kubernetes module ships, linked statically, wrapped in a one-layer OCI archive for `ctr import`.
build_pause_image() {
  local dest="$1"
  [[ -f "${dest}/.complete" ]] && { echo "${dest}"; return; }
  local module_dir
  module_dir="$(cd "${repo_root}/tools/k8s" && go mod download -json "k8s.io/kubernetes@v${KUBERNETES_VERSION}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "${dest}"; mkdir -p "${dest}"
  gcc -Os -static -o "${dest}/pause" "${module_dir}/build/pause/linux/pause.c" >&2
  python3 "${repo_root}/hack/oci_archive.py" --binary "${dest}/pause" --entrypoint /pause \
    --name "${PAUSE_IMAGE}" --output "${dest}/pause.oci.tar" >&2
  touch "${dest}/.complete"
  echo "${dest}"
}

# Debian packages of the real node (runtime, CNI plugins, packet filter tools), installed when missing.
install_node_packages() {
  local missing=() cmd pkg
  for pair in runc:runc iptables:iptables ipset:ipset conntrack:conntrack \
              /usr/lib/cni/bridge:containernetworking-plugins; do
    cmd="${pair%%:*}"; pkg="${pair#*:}"
    if [[ "${cmd}" == /* ]]; then [[ -x "${cmd}" ]] || missing+=("${pkg}")
    else command -v "${cmd}" >/dev/null || missing+=("${pkg}"); fi
  done
  ((${#missing[@]})) || return 0
  echo ">> installing Debian packages: ${missing[*]}" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
}

# The real node: kubelet and kube-proxy (from tools/k8s, a tool set of their own so the control
# plane's cache stays valid), containerd, crictl, kube-router, CoreDNS and the pause image.
build_node() {
  install_node_packages
  BUILD_TAGS=no_btrfs,no_devmapper,no_zfs build_set containerd "${CONTAINERD_VERSION}" tools/containerd \
    "-s -w -X github.com/containerd/containerd/v2/version.Version=v${CONTAINERD_VERSION}" \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr
  build_set crictl "${CRICTL_VERSION}" tools/crictl \
    "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v${CRICTL_VERSION}" sigs.k8s.io/cri-tools/cmd/crictl
  build_set kube-router "${KUBE_ROUTER_VERSION}" tools/kube-router \
    "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=v${KUBE_ROUTER_VERSION}" \
    github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
  build_set coredns "${COREDNS_VERSION}" tools/coredns "-s -w" github.com/coredns/coredns
  build_set k8s-node "${KUBERNETES_VERSION}" tools/k8s "$(k8s_ldflags)" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy
  build_pause_image "${cache_root}/pause-k8s-v${KUBERNETES_VERSION}"
}

build_one() {
  case "$1" in
    k8s)  build_set k8s "${KUBERNETES_VERSION}" tools/k8s "$(k8s_ldflags)" \
            k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl ;;
    etcd) local etcd_bin
          etcd_bin="$(build_set etcd "${ETCD_VERSION}" tools/etcd "-s -w" go.etcd.io/etcd/server/v3)"
          # go names the binary after the package directory ("server"); everyone calls it etcd
          [[ -e "${etcd_bin}/server" ]] && mv "${etcd_bin}/server" "${etcd_bin}/etcd"
          echo "${etcd_bin}" ;;
    kwok) local kwok_bin
          kwok_bin="$(build_set kwok "${KWOK_VERSION}" tools/kwok \
            "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=v${KWOK_VERSION}" \
            sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl)"
          copy_kwok_default_stages "${kwok_bin}/../stages"
          echo "${kwok_bin}" ;;
    helm) local kube_minor="${KUBERNETES_VERSION#1.}"; kube_minor="${kube_minor%%.*}"
          # helm's default kube version (used by template/lint without a cluster) is 1.20 unless stamped
          build_set helm "${HELM_VERSION}" tools/helm \
            "-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} \
             -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${kube_minor} \
             -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${kube_minor}" \
            helm.sh/helm/v3/cmd/helm ;;
    node) build_node ;;
    *) echo "unknown tool set: $1" >&2; exit 2 ;;
  esac
}

for tool_set in "${@:-k8s etcd kwok}"; do
  for t in ${tool_set}; do build_one "$t"; done
done
