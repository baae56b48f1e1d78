"""`mlmodel-operator`: run the operator against the current cluster (in a pod: its ServiceAccount)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

import kopf

from mlmodel_operator.redaction import install_log_redaction


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mlmodel-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", action="append", dest="namespaces", default=[],
                       help="watch this namespace (repeatable; globs allowed); env MLMODEL_OPERATOR_NAMESPACES, comma-separated")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    parser.add_argument("--liveness", default=os.environ.get("MLMODEL_OPERATOR_LIVENESS") or None,
                        help="serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz; env MLMODEL_OPERATOR_LIVENESS")
    parser.add_argument("--log-format", choices=["json", "plain"], default=os.environ.get("MLMODEL_OPERATOR_LOG_FORMAT", "json"))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if not args.namespaces and not args.all_namespaces:
        args.namespaces = [ns for ns in os.environ.get("MLMODEL_OPERATOR_NAMESPACES", "").split(",") if ns]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    kopf.configure(verbose=args.verbose,
                   log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.PLAIN)
    if not args.verbose:
        # kopf logs "Handler '...' succeeded." at INFO for every watch event of every child and pod (a dozen
        # per MLModel created): noise, and formatting it cost the event loop more than the handlers did.
        # Failures are warnings and errors, and still logged.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    install_log_redaction()
    import mlmodel_operator.handlers  # noqa: F401  (registers the handlers)

    kopf.run(
        standalone=True,  # one replica with Recreate; no peering objects needed
        clusterwide=not args.namespaces,
        namespaces=args.namespaces,
        liveness_endpoint=args.liveness,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
