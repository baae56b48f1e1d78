# make e2e-kind: the end-to-end run with real containers, for machines with Docker and kind. This repository's
# CI does not run it (no Docker engine there); `make test` covers the same manifests against the local cluster.
E2E_KIND_CLUSTER ?= mlmodel-e2e

.PHONY: e2e-kind
e2e-kind: ## Needs Docker and kind: build both images, kind load, kubectl apply -k deploy/overlays/dev, serve a sample
	E2E_KIND_CLUSTER=$(E2E_KIND_CLUSTER) hack/e2e-kind.sh
