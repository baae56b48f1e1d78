"""`mlmodel-server fetch`: flags (each with an env twin, see docs/pod-contract.md) → fetch → exit code."""

import argparse
import os
import re
from collections.abc import Mapping
from pathlib import Path

from mlmodel_server.fetch import logs
from mlmodel_server.fetch.download import FetchRequest, fetch
from mlmodel_server.fetch.errors import FetchError, UsageError
from mlmodel_server.fetch.formats import FORMATS
from mlmodel_server.fetch.metadata import ArtifactMetadata
from mlmodel_server.fetch.redaction import scrub
from mlmodel_server.fetch.versions import recorded_sklearn_versions, running_sklearn_version, skew_message
from mlmodel_server.termination import Failure, report, write_termination_message

DEFAULT_MAX_BYTES = 2 * 1024**3
DEFAULT_TIMEOUT_SECONDS = 300.0
DEFAULT_RETRIES = 4
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"mlmodel-server fetch: {message}")


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = _Parser(prog="mlmodel-server fetch", description="Download and verify one model artifact.")

    def option(flag: str, env_name: str, default: object, help_text: str, **kwargs: object) -> None:
        parser.add_argument(flag, default=env.get(env_name) or default, help=f"{help_text} (env {env_name})", **kwargs)

    option("--uri", "MLMODEL_URI", None, "file://, plain path, http(s)://, s3://bucket/key or pvc://claim/path")
    option("--sha256", "MLMODEL_SHA256", None, "expected sha256 hex digest; without it the artifact is unverified")
    option("--dest", "MLMODEL_DEST", "/models", "directory to fill", type=Path)
    option("--format", "MLMODEL_FORMAT", None, "default: from the URI's extension", choices=FORMATS)
    option("--max-bytes", "MLMODEL_MAX_BYTES", DEFAULT_MAX_BYTES, "size cap in bytes", type=int)
    option("--timeout-seconds", "MLMODEL_FETCH_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS, "total timeout", type=float)
    option("--retries", "MLMODEL_FETCH_RETRIES", DEFAULT_RETRIES, "retries after a transient failure", type=int)
    option("--pvc-root", "MLMODEL_PVC_ROOT", "/mnt/pvc", "where pvc:// claims are mounted", type=Path)
    option(
        "--termination-message-path",
        "MLMODEL_TERMINATION_MESSAGE_PATH",
        None,
        "one-line failure message file (default /dev/termination-log when writable)",
    )
    return parser


def parse_request(argv: list[str], env: Mapping[str, str]) -> FetchRequest:
    options = build_parser(env).parse_args(argv)
    if not options.uri:
        raise UsageError("mlmodel-server fetch: --uri (or MLMODEL_URI) is required")
    sha256 = options.sha256.strip().lower() if options.sha256 else None
    if sha256 is not None and not _SHA256.match(sha256):
        raise UsageError("mlmodel-server fetch: --sha256 must be 64 hex characters")
    if options.max_bytes <= 0 or options.timeout_seconds <= 0 or options.retries < 0:
        raise UsageError("mlmodel-server fetch: --max-bytes and --timeout-seconds must be > 0, --retries >= 0")
    return FetchRequest(
        uri=options.uri,
        sha256=sha256,
        dest=options.dest,
        model_format=options.format,
        max_bytes=options.max_bytes,
        timeout_seconds=options.timeout_seconds,
        pvc_root=options.pvc_root,
        retries=options.retries,
    )


def _termination_message_path(argv: list[str]) -> str | None:
    """Read this one flag before the others, so even a usage error lands in the right file."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--termination-message-path")
    known, _ = early.parse_known_args(argv)
    return known.termination_message_path


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw_uris = [env.get("MLMODEL_URI", ""), *_uri_arguments(argv)]
    try:
        request = parse_request(argv, env)
        metadata = fetch(request, env)
        report_version_skew(request.dest, metadata, _termination_message_path(argv))
        return 0
    except SystemExit as exit_request:  # --help
        return int(exit_request.code or 0)
    except Failure as failure:
        outcome = failure
    except Exception as error:  # a bug, or an error no source classified: still one safe line
        logs.log("error", "unexpected error", kind=type(error).__name__)
        outcome = FetchError(f"fetch failed: {type(error).__name__}: {error}")
    outcome.args = (scrub(str(outcome), uris=raw_uris, env=env),)
    return report(outcome, _termination_message_path(argv))


def report_version_skew(dest: Path, metadata: ArtifactMetadata, message_path: str | None) -> None:
    """On success the termination message is free: name a scikit-learn version skew there for the operator,
    which has no access to pod logs. Nothing is written when the versions agree or cannot be read."""
    recorded = recorded_sklearn_versions(dest / metadata.file, metadata.format)
    line = skew_message(metadata.file, recorded, running_sklearn_version())
    if line is None:
        return
    logs.warning("scikit-learn version mismatch", file=metadata.file, recorded=list(recorded))
    write_termination_message(scrub(line), message_path)


def _uri_arguments(argv: list[str]) -> list[str]:
    return [value.removeprefix("--uri=") for value in argv if value.startswith("--uri=")] + [
        argv[index + 1] for index, value in enumerate(argv[:-1]) if value == "--uri"
    ]
