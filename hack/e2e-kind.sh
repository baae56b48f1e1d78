#!/usr/bin/env bash
# End to end with real containers, for users with Docker and kind (not run in this repository's CI, which has
# no Docker engine): build both images, load them into a kind cluster, install deploy/overlays/dev, serve
# deploy/samples/iris.yaml from an in-cluster file server, and ask the model for a prediction.
# Usage: hack/e2e-kind.sh   (env: E2E_KIND_CLUSTER, DOCKER, KIND, KUBECTL)
set -euo pipefail
repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${E2E_KIND_CLUSTER:-mlmodel-e2e}"
docker="${DOCKER:-docker}"
kind="${KIND:-kind}"
kubectl_bin="${KUBECTL:-kubectl}"
namespace=e2e
work="$(mktemp -d)"
trap 'rm -rf "${work}"; [[ -n "${forward_pid:-}" ]] && kill "${forward_pid}" 2>/dev/null; true' EXIT

for tool in "${docker}" "${kind}" "${kubectl_bin}" curl; do
  command -v "${tool}" >/dev/null || { echo "e2e-kind needs ${tool} on PATH" >&2; exit 2; }
done
# A kubeconfig of its own: `make` exports KUBECONFIG for the local cluster, which kind must not write into.
kubeconfig="${work}/kubeconfig"
kubectl() { "${kubectl_bin}" --kubeconfig "${kubeconfig}" "$@"; }

if ! "${kind}" get clusters | grep -qx "${cluster}"; then
  "${kind}" create cluster --name "${cluster}" --kubeconfig "${kubeconfig}" --wait 120s
fi
"${kind}" get kubeconfig --name "${cluster}" > "${kubeconfig}"

echo ">> building images"
"${docker}" build -f "${repo_root}/Dockerfile.operator" -t mlmodel-operator:dev "${repo_root}"
"${docker}" build -f "${repo_root}/Dockerfile.server" -t mlmodel-server:dev "${repo_root}"
"${kind}" load docker-image --name "${cluster}" mlmodel-operator:dev mlmodel-server:dev

echo ">> installing the operator (deploy/overlays/dev)"
kubectl apply --server-side -k "${repo_root}/deploy/overlays/dev"
kubectl wait --for=condition=Established crd/mlmodels.serving.mlops.dev --timeout=60s
kubectl -n mlmodel-system rollout status deployment/mlmodel-operator --timeout=180s

echo ">> training an iris model with the server image's own scikit-learn"
"${docker}" run --rm --entrypoint python mlmodel-server:dev -c '
import io, sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
X, y = load_iris(return_X_y=True)
buffer = io.BytesIO()
joblib.dump(LogisticRegression(max_iter=500).fit(X, y), buffer)
sys.stdout.buffer.write(buffer.getvalue())' > "${work}/iris.joblib"
digest="$(sha256sum "${work}/iris.joblib" | cut -d' ' -f1)"

echo ">> serving the artifact from an in-cluster file server"
kubectl create namespace "${namespace}" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "${namespace}" create configmap iris-artifact --from-file=model.joblib="${work}/iris.joblib" \
  --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "${namespace}" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: artifacts}
spec:
  selector: {matchLabels: {app: artifacts}}
  template:
    metadata: {labels: {app: artifacts}}
    spec:
      containers:
        - name: files
          image: mlmodel-server:dev
          imagePullPolicy: Never
          command: [python, -m, http.server, "8000", --directory, /srv]
          ports: [{containerPort: 8000}]
          volumeMounts: [{name: artifact, mountPath: /srv}]
      volumes: [{name: artifact, configMap: {name: iris-artifact}}]
---
apiVersion: v1
kind: Service
metadata: {name: artifacts}
spec:
  selector: {app: artifacts}
  ports: [{port: 80, targetPort: 8000}]
YAML
kubectl -n "${namespace}" rollout status deployment/artifacts --timeout=120s

echo ">> applying deploy/samples/iris.yaml, pointed at that artifact"
sed -e "s|uri: .*|uri: http://artifacts.${namespace}.svc/model.joblib|" \
    -e "s|sha256: .*|sha256: ${digest}|" \
    -e "s|replicas: 3|replicas: 1|" \
    "${repo_root}/deploy/samples/iris.yaml" | kubectl -n "${namespace}" apply -f -
# kind's default CNI may not enforce NetworkPolicy; this run does not depend on it either way.
kubectl -n "${namespace}" patch mlmodel iris --type merge -p '{"spec": {"networkPolicy": {"enabled": false}}}'
kubectl -n "${namespace}" wait --for=condition=Ready mlmodel/iris --timeout=300s
kubectl -n "${namespace}" get mlmodel iris -o wide

echo ">> predicting"
kubectl -n "${namespace}" port-forward service/iris 18080:80 >/dev/null &
forward_pid=$!
for _ in $(seq 1 30); do curl -sf http://127.0.0.1:18080/health >/dev/null && break; sleep 1; done
curl -sf http://127.0.0.1:18080/predict -H 'Content-Type: application/json' -d '{"features": [5.1, 3.5, 1.4, 0.2]}'
echo
echo ">> e2e-kind passed. Use the cluster: ${kind} export kubeconfig --name ${cluster}; delete it: ${kind} delete cluster --name ${cluster}"
