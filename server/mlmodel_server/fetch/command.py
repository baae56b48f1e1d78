"""`mlmodel-server fetch`: flags (each with an env twin, see docs/pod-contract.md) → fetch → exit code."""

import argparse
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlmodel_contract import artifacts, pod
from mlmodel_contract import spec_defaults as defaults
from mlmodel_contract.pod import FetchEnv
from mlmodel_server import options
from mlmodel_server.fetch import logs
from mlmodel_server.fetch.download import FetchRequest, fetch
from mlmodel_server.fetch.errors import FetchError, UsageError
from mlmodel_server.fetch.metadata import ArtifactMetadata
from mlmodel_server.fetch.redaction import scrub
from mlmodel_server.fetch.versions import (
    SKLEARN,
    checked_versions,
    recorded_versions,
    runtime_versions,
    skew_line,
    version_mismatches,
)
from mlmodel_server.mlflow_models import mlflow_library_versions
from mlmodel_server.model_dirs import find_model
from mlmodel_server.options import setting
from mlmodel_server.termination import Failure, report, write_termination_message

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class FetchOptions:
    uri: str = setting(
        "--uri",
        FetchEnv.URI,
        "",
        "file://, plain path, http(s)://, s3://bucket/key or pvc://claim/path; an archive (.tar.gz, .tgz, .tar, "
        ".zip) or s3://bucket/prefix/ is landed as a directory",
        required=True,
    )
    sha256: str | None = setting(
        "--sha256", FetchEnv.SHA256, None, "expected sha256 hex digest; without it the artifact is unverified"
    )
    dest: Path = setting("--dest", FetchEnv.DEST, Path(pod.MODELS_DIR), "directory to fill", parse=Path)
    format: str | None = setting(
        "--format",
        FetchEnv.FORMAT,
        None,
        "default: from the URI's extension, else the artifact's first bytes; for a directory, what it holds",
        choices=artifacts.FORMATS,
    )
    max_bytes: int = setting("--max-bytes", FetchEnv.MAX_BYTES, defaults.MAX_BYTES, "size cap in bytes", parse=int)
    timeout_seconds: float = setting(
        "--timeout-seconds",
        FetchEnv.TIMEOUT_SECONDS,
        float(defaults.FETCH_TIMEOUT_SECONDS),
        "total timeout",
        parse=float,
    )
    retries: int = setting(
        "--retries", FetchEnv.RETRIES, defaults.FETCH_RETRIES, "retries after a transient failure", parse=int
    )
    pvc_root: Path = setting(
        "--pvc-root", FetchEnv.PVC_ROOT, Path(pod.PVC_ROOT), "where pvc:// claims are mounted", parse=Path
    )
    termination_message_path: str | None = setting(
        "--termination-message-path",
        FetchEnv.TERMINATION_MESSAGE_PATH,
        None,
        f"one-line failure message file (default {pod.TERMINATION_MESSAGE_PATH} when writable)",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"mlmodel-server fetch: {message}")


def parse_request(argv: list[str], env: Mapping[str, str]) -> FetchRequest:
    parser = _Parser(prog="mlmodel-server fetch", description="Download and verify one model artifact.")
    given = options.parse(FetchOptions, argv, env, parser)
    sha256 = given.sha256.strip().lower() if given.sha256 else None
    if sha256 is not None and not _SHA256.match(sha256):
        raise UsageError("mlmodel-server fetch: --sha256 must be 64 hex characters")
    if given.max_bytes <= 0 or given.timeout_seconds <= 0 or given.retries < 0:
        raise UsageError("mlmodel-server fetch: --max-bytes and --timeout-seconds must be > 0, --retries >= 0")
    return FetchRequest(
        uri=given.uri,
        sha256=sha256,
        dest=given.dest,
        model_format=given.format,
        max_bytes=given.max_bytes,
        timeout_seconds=given.timeout_seconds,
        pvc_root=given.pvc_root,
        retries=given.retries,
    )


def _termination_message_path(argv: list[str]) -> str | None:
    """Read this one flag before the others, so even a usage error lands in the right file."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--termination-message-path")
    known, _ = early.parse_known_args(argv)
    return known.termination_message_path


def main(argv: list[str], env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw_uris = [env.get(FetchEnv.URI, ""), *_uri_arguments(argv)]
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
    """On success the termination message is free: name a library version skew there (scikit-learn's, XGBoost's,
    LightGBM's: fetch/versions.py) for the operator, which has no access to pod logs. Nothing is written when the
    versions agree or cannot be read."""
    path, model_format = dest / metadata.file, metadata.format
    if metadata.tree_sha256 is not None:  # a directory artifact: the model file inside it, or an MLflow directory
        path, model_format = find_model(path, metadata.format)
    if model_format == artifacts.MLFLOW:
        recorded = checked_versions(mlflow_library_versions(path))
    else:
        recorded = recorded_versions(path, model_format)
    mismatches = version_mismatches(
        recorded, runtime_versions(), pickled=model_format in artifacts.PICKLE_BASED_FORMATS
    )
    line = skew_line(metadata.file, mismatches)
    if line is None:
        return
    what = "scikit-learn version mismatch" if list(mismatches) == [SKLEARN] else "library version mismatch"
    logs.warning(what, file=metadata.file, recorded=[recorded[library] for library in mismatches])
    write_termination_message(scrub(line), message_path)


def _uri_arguments(argv: list[str]) -> list[str]:
    return [value.removeprefix("--uri=") for value in argv if value.startswith("--uri=")] + [
        argv[index + 1] for index, value in enumerate(argv[:-1]) if value == "--uri"
    ]
