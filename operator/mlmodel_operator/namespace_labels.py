"""`python -m mlmodel_operator.namespace_labels NAMESPACE KEY=VALUE...`: merge labels into a Namespace.

The Helm chart runs it as a hook Job (namespace.labelReleaseNamespace) because `helm install
--create-namespace` creates the release namespace without labels and a chart cannot adopt it: this is
how that namespace gets its Pod Security labels. Its ServiceAccount may get and patch that one Namespace.
"""

from __future__ import annotations

import argparse
import sys

import kubernetes

from mlmodel_operator.kube import load_api_client


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected KEY=VALUE, got {pair!r}")
        labels[key] = value
    return labels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlmodel_operator.namespace_labels", description=__doc__)
    parser.add_argument("namespace")
    parser.add_argument("labels", nargs="+", metavar="KEY=VALUE")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        labels = parse_labels(args.labels)
    except ValueError as error:
        parser.error(str(error))
    core = kubernetes.client.CoreV1Api(load_api_client())
    try:
        core.patch_namespace(args.namespace, {"metadata": {"labels": labels}})
    except kubernetes.client.ApiException as error:
        print(f"cannot label namespace {args.namespace}: {error.status} {error.reason}", file=sys.stderr)
        return 1
    print(f"namespace {args.namespace} labelled: {', '.join(f'{k}={v}' for k, v in sorted(labels.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
