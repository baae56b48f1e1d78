"""`mlmodel-operator`: run the operator against the current cluster (in a pod: its ServiceAccount).

Every option is a flag with an environment twin, declared once below (settings.py says the rules).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass

import kopf

from mlmodel_operator import leader, logging_setup
from mlmodel_operator.reachability import Reachability
from mlmodel_operator.redaction import install_log_redaction
from mlmodel_operator.settings import Settings, add_flags, resolve, setting


@dataclass(frozen=True)
class Options:
    namespaces: list[str] = dataclasses.field(
        default_factory=list,
        metadata=setting("watch this namespace (repeatable; globs allowed)", flags=("-n", "--namespace")),
    )
    all_namespaces: bool = dataclasses.field(
        default=False,
        metadata=setting("watch every namespace (the default without --namespace)", flags=("-A", "--all-namespaces")),
    )
    liveness: str | None = dataclasses.field(
        default=None, metadata=setting("serve a liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    )
    metrics_address: str | None = dataclasses.field(
        default=None, metadata=setting("serve /metrics (Prometheus) and /readyz on HOST:PORT, e.g. 0.0.0.0:8081")
    )
    log_format: str = dataclasses.field(
        default="json",
        metadata=setting(
            "json (one object a line, the default) or plain (timestamped text)", choices=("json", "plain")
        ),
    )
    leader_election: bool = dataclasses.field(
        default=True, metadata=setting("act without holding the Lease (one replica only!)")
    )
    lease_namespace: str = dataclasses.field(
        default_factory=leader.default_namespace,
        metadata=setting(f"the Lease's namespace (default: the pod's, else {leader.DEFAULT_LEASE_NAMESPACE})"),
    )
    lease_name: str = dataclasses.field(
        default=leader.LEASE_NAME, metadata=setting(f"the Lease's name (default {leader.LEASE_NAME})")
    )
    verbose: bool = dataclasses.field(
        default=False, metadata=setting("log every handler run (kopf's verbose log)", flags=("-v", "--verbose"))
    )
    settings: Settings = dataclasses.field(default_factory=Settings)  # what rendering reads: not a flag itself


def parse_args(argv: list[str], environ: Mapping[str, str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="mlmodel-operator", description=__doc__)
    add_flags(parser, Options)
    add_flags(parser.add_argument_group("defaults for the MLModels' children"), Settings)
    given = vars(parser.parse_args(argv))
    if given["namespaces"] and given["all_namespaces"]:
        parser.error("--namespace and --all-namespaces exclude each other")
    try:
        options = resolve(Options, given, environ)
        settings = resolve(Settings, given, environ)
    except ValueError as error:
        parser.error(str(error))
    # -A wins over MLMODEL_OPERATOR_NAMESPACES.
    return dataclasses.replace(
        options, namespaces=[] if options.all_namespaces else options.namespaces, settings=settings
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_args(sys.argv[1:] if argv is None else argv)
    reachability = Reachability(logging.getLogger("mlmodel_operator"))
    logging_setup.configure(options.log_format, options.verbose, reachability)
    install_log_redaction()
    import mlmodel_operator.handlers  # noqa: F401  (registers the handlers)

    memo = kopf.Memo(
        reachability=reachability,
        settings=options.settings,
        lease=(options.lease_namespace, options.lease_name) if options.leader_election else None,
        metrics_address=options.metrics_address,
    )
    kopf.run(
        standalone=True,  # no kopf peering: the operator's own Lease decides who acts (leader.py)
        clusterwide=not options.namespaces,
        namespaces=options.namespaces,
        liveness_endpoint=options.liveness,
        memo=memo,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
