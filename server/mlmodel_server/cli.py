"""`mlmodel-server`: one image, two roles. `fetch` runs as the init container, `serve` as the server."""

import os
import sys
from collections.abc import MutableMapping

from mlmodel_contract.pod import NATIVE_THREAD_ENV

# Native thread pools size themselves to the node's cores, not the pod's CPU limit: a 500m pod on a 64-core
# node would run 64 OpenMP or BLAS threads per call, and libgomp's pool does not survive gunicorn's fork.
# The server runs calls side by side in threads and workers instead, so one native thread per call, unless
# the pod's env says otherwise. Set before numpy or scikit-learn is imported: the libraries read them at load.
NATIVE_THREAD_VARIABLES = NATIVE_THREAD_ENV

USAGE = """usage: mlmodel-server {fetch,serve} [options]

  fetch   download and verify a model artifact into a directory (init-container role)
  serve   load a model and serve it over HTTP (server role)

Run `mlmodel-server fetch --help` or `mlmodel-server serve --help` for the options."""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    role, rest = args[0], args[1:]
    if role == "fetch":
        from mlmodel_server.fetch.command import main as fetch_main

        return fetch_main(rest)
    if role == "serve":
        one_native_thread_per_call(os.environ)
        from mlmodel_server.serving.command import main as serve_main

        return serve_main(rest)
    print(f"mlmodel-server: unknown role {role!r}\n\n{USAGE}", file=sys.stderr)
    return 2


def one_native_thread_per_call(environ: MutableMapping[str, str]) -> None:
    for name in NATIVE_THREAD_VARIABLES:
        environ.setdefault(name, "1")


if __name__ == "__main__":
    sys.exit(main())
