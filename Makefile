# mlmodel-operator — the two commands are `make demo` and `make test`; the rest follows the
# kubebuilder habit (cluster, install, run, bench). First-time builds are cached outside the repo
# in $(CACHE_DIR), keyed by version.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_BOOTSTRAP ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE_DIR ?= $(or $(MLMODEL_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlmodel-operator)
export MLMODEL_CACHE_DIR := $(CACHE_DIR)
include hack/versions.env
KUBECTL := $(CACHE_DIR)/k8s-v$(KUBERNETES_VERSION)/bin/kubectl
# The local cluster's kubeconfig unless the caller points at another cluster.
LOCAL_KUBECONFIG := $(CACHE_DIR)/cluster/kubeconfig
KUBECONFIG ?= $(LOCAL_KUBECONFIG)
export KUBECONFIG
PYTEST_ARGS ?=

.PHONY: help
help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The versions that were tested: every dependency is installed at its pin in constraints.txt (make lock).
# The editable install also compiles the server's C extension (_treewalk.c, with the machine's C compiler) in
# place, so a change to it reinstalls.
$(VENV)/.installed: pyproject.toml constraints.txt server/mlmodel_server/_treewalk.c
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint constraints.txt -e '.[operator,server,dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv from pyproject.toml (operator, server and dev extras)

# pip-compile in its own venv, cached by version; it runs with the pip that ensurepip gives this Python.
PIP_TOOLS_VERSION := 7.6.2
PIP_COMPILE := $(CACHE_DIR)/pip-tools-$(PIP_TOOLS_VERSION)/bin/pip-compile
$(PIP_COMPILE):
	$(PYTHON_BOOTSTRAP) -m venv $(CACHE_DIR)/pip-tools-$(PIP_TOOLS_VERSION)
	$(CACHE_DIR)/pip-tools-$(PIP_TOOLS_VERSION)/bin/pip install --quiet pip-tools==$(PIP_TOOLS_VERSION)

LOCK_ARGS ?=
.PHONY: lock
lock: $(PIP_COMPILE) ## Pin every dependency (all extras and the build backend) in constraints.txt; pins that still fit pyproject stay (LOCK_ARGS=--upgrade moves them all)
	CUSTOM_COMPILE_COMMAND="make lock" $(PIP_COMPILE) --quiet --all-extras --all-build-deps --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-trusted-host --no-emit-find-links $(LOCK_ARGS) --output-file constraints.txt pyproject.toml

.PHONY: lint
lint: venv ## ruff (lint and format check) and mypy on both packages
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

.PHONY: tools
tools: ## Build the control plane, kwok, helm and the real node's tools (kubelet, containerd, ...) (cached)
	hack/build-tools.sh k8s etcd kwok helm node

.PHONY: cluster
cluster: venv tools ## Start (or reuse) the local cluster; the last line is KUBECONFIG=<path>
	@$(PY) hack/localcluster.py up

.PHONY: cluster-down
cluster-down: venv ## Stop the local cluster and everything it started; restore what its real node changed
	@$(PY) hack/localcluster.py down

# The one CRD file (crds/kustomization.yaml sits next to it, so apply the file, not the directory).
CRD_NAME = mlmodels.serving.mlops.dev
CRD_FILE = crds/serving.mlops.dev_mlmodels.yaml

.PHONY: install
install: tools ## Apply the MLModel CRD to the current cluster (KUBECONFIG; default: the local cluster)
	$(KUBECTL) apply --server-side --force-conflicts -f $(CRD_FILE)
	$(KUBECTL) wait --for=condition=Established crd/$(CRD_NAME) --timeout=60s

.PHONY: uninstall
uninstall: tools ## Delete the MLModel CRD (and with it every MLModel) from the current cluster
	$(KUBECTL) delete --ignore-not-found -f $(CRD_FILE)

.PHONY: run
run: venv install ## Run the operator locally against the current cluster (all namespaces; waits while another operator leads)
	$(KUBECTL) create namespace mlmodel-system --dry-run=client -o yaml | $(KUBECTL) apply -f - >/dev/null  # the Lease's namespace
	$(VENV)/bin/mlmodel-operator --all-namespaces --log-format plain --metrics-address 127.0.0.1:8081

.PHONY: test
test: venv tools lint ## Lint, then run every test (starts the local cluster when the cluster tests need it)
	$(PY) -m pytest $(PYTEST_ARGS)

.PHONY: demo
demo: venv tools ## The main job: local cluster with a real node, operator, the iris sample Ready, real predictions
	$(PY) hack/demo.py

.PHONY: bench
bench: venv tools bench-server bench-operator ## Run the benchmarks: the model server against its anchors, then the operator on the local cluster

.PHONY: bench-operator
bench-operator: venv tools ## The operator benchmark alone (local cluster)
	$(PY) bench/operator/run.py

-include bench/bench.mk
-include deploy/e2e-kind.mk
include hack/images.mk
