#!/usr/bin/env bash
# Regenerates tools/k8s/go.mod for a Kubernetes version: one `replace` per staging module,
# read from k8s.io/kubernetes's own go.mod (staging modules are required there at v0.0.0,
# which only resolves inside the kubernetes repository itself).
# Usage: tools/k8s/generate.sh 1.37.2
set -euo pipefail
kube_version="${1:?usage: $0 KUBERNETES_VERSION (e.g. 1.37.2)}"
staging_version="0.${kube_version#1.}"
cd "$(dirname "$0")"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

upstream_gomod="$(go mod download -json "k8s.io/kubernetes@v${kube_version}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"

rm -f go.mod go.sum
go mod init mlmodel-operator.local/tools/k8s >/dev/null 2>&1
go mod edit -go=1.26.0
for module in $(awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$upstream_gomod"); do
  go mod edit -replace="${module}=${module}@v${staging_version}"
done
go mod edit -require="k8s.io/kubernetes@v${kube_version}"
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
  go get -tool "k8s.io/kubernetes/cmd/${cmd}@v${kube_version}"
done
go mod tidy
echo "tools/k8s/go.mod now pins k8s.io/kubernetes v${kube_version}"
