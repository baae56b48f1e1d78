"""`mlmodel-operator`: run the operator against the current cluster (in a pod: its ServiceAccount)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import kopf

from mlmodel_operator import leader, logging_setup
from mlmodel_operator.reachability import Reachability
from mlmodel_operator.redaction import install_log_redaction

ENV = "MLMODEL_OPERATOR_"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mlmodel-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        default=[],
        help="watch this namespace (repeatable; globs allowed); env MLMODEL_OPERATOR_NAMESPACES, comma-separated",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    parser.add_argument(
        "--liveness",
        default=os.environ.get(ENV + "LIVENESS") or None,
        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz; env MLMODEL_OPERATOR_LIVENESS",
    )
    parser.add_argument(
        "--metrics-address",
        default=os.environ.get(ENV + "METRICS_ADDRESS") or None,
        help="serve /metrics (Prometheus) and /readyz on HOST:PORT, e.g. 0.0.0.0:8081; "
        "env MLMODEL_OPERATOR_METRICS_ADDRESS",
    )
    parser.add_argument(
        "--log-format",
        choices=["json", "plain"],
        default=os.environ.get(ENV + "LOG_FORMAT", "json"),
        help="json (one object a line, the default) or plain (timestamped text); env MLMODEL_OPERATOR_LOG_FORMAT",
    )
    election = parser.add_argument_group("leader election (a coordination.k8s.io/v1 Lease; only its holder acts)")
    election.add_argument(
        "--no-leader-election",
        dest="leader_election",
        action="store_false",
        default=os.environ.get(ENV + "LEADER_ELECTION", "true").lower() != "false",
        help="act without holding the Lease (one replica only!); env MLMODEL_OPERATOR_LEADER_ELECTION=false",
    )
    election.add_argument(
        "--lease-namespace",
        default=None,
        help="the Lease's namespace (default: env MLMODEL_OPERATOR_LEASE_NAMESPACE, else the pod's "
        f"namespace, else {leader.DEFAULT_LEASE_NAMESPACE})",
    )
    election.add_argument(
        "--lease-name",
        default=os.environ.get(ENV + "LEASE_NAME") or leader.LEASE_NAME,
        help=f"the Lease's name (default {leader.LEASE_NAME}); env MLMODEL_OPERATOR_LEASE_NAME",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.namespaces and not args.all_namespaces:
        args.namespaces = [ns for ns in os.environ.get(ENV + "NAMESPACES", "").split(",") if ns]
    args.lease_namespace = args.lease_namespace or leader.default_namespace()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    reachability = Reachability(logging.getLogger("mlmodel_operator"))
    logging_setup.configure(args.log_format, args.verbose, reachability)
    install_log_redaction()
    import mlmodel_operator.handlers  # noqa: F401  (registers the handlers)

    memo = kopf.Memo(
        reachability=reachability,
        lease=(args.lease_namespace, args.lease_name) if args.leader_election else None,
        metrics_address=args.metrics_address,
    )
    kopf.run(
        standalone=True,  # no kopf peering: the operator's own Lease decides who acts (leader.py)
        clusterwide=not args.namespaces,
        namespaces=args.namespaces,
        liveness_endpoint=args.liveness,
        memo=memo,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
