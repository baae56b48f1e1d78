# The serving benchmark (bench/README.md), included from the top-level Makefile.
#   make bench-server                    full run (about 45 minutes)
#   make bench-server-quick              smoke run (about 12 minutes)
#   make bench-server BENCH_ARGS="--models forest --servers floor,mlserver-batch,ours"
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset together for the benchmark command only:
# where this machine sets them they slow a current numpy (the run prints the BLAS kernel in use).

BENCH_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BENCH_PYTHON ?= $(BENCH_DIR)/../.venv/bin/python
BENCH_ARGS ?=

.PHONY: bench-server bench-server-quick

BENCH_RUN = env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BENCH_PYTHON) $(BENCH_DIR)/serving/run.py

bench-server:
	$(BENCH_RUN) $(BENCH_ARGS)

bench-server-quick:
	$(BENCH_RUN) --quick $(BENCH_ARGS)
