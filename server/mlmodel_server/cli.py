"""`mlmodel-server`: one image, two roles. `fetch` runs as the init container, `serve` as the server."""

import sys

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
        from mlmodel_server.serving.command import main as serve_main

        return serve_main(rest)
    print(f"mlmodel-server: unknown role {role!r}\n\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
