"""Fetch one artifact into a directory: reuse, download with retries, verify, land, describe."""

import itertools
import shutil
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mlmodel_contract.artifacts import (
    ARCHIVE_SUFFIXES,
    FILE_FORMATS,
    MLFLOW,
    MODEL_DIRECTORY,
    SUFFIXES,
    artifact_file_name,
    format_from_content,
    format_from_uri,
    is_directory_artifact,
)
from mlmodel_server.fetch import logs
from mlmodel_server.fetch.backoff import backoff_delay
from mlmodel_server.fetch.context import FetchContext
from mlmodel_server.fetch.deadline import Deadline
from mlmodel_server.fetch.errors import ChecksumMismatch, FetchError, UsageError, is_retryable
from mlmodel_server.fetch.metadata import (
    ArtifactMetadata,
    remove_metadata,
    reusable_artifact,
    write_metadata,
)
from mlmodel_server.fetch.sink import ArtifactSink, remove_partials
from mlmodel_server.fetch.sources import stream_for
from mlmodel_server.fetch.uris import Location, parse_uri
from mlmodel_server.model_dirs import remove_leftovers
from mlmodel_server.termination import Failure

PROGRESS_INTERVAL_SECONDS = 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class FetchRequest:
    uri: str
    sha256: str | None
    dest: Path
    model_format: str | None
    max_bytes: int
    timeout_seconds: float
    pvc_root: Path
    retries: int


def fetch(request: FetchRequest, env: Mapping[str, str]) -> ArtifactMetadata:
    location = parse_uri(request.uri)
    _prepare(request.dest)
    if is_directory_artifact(location.uri):
        from mlmodel_server.fetch.directories import fetch_directory

        return fetch_directory(location, request, new_context(request, env))
    if request.model_format == MLFLOW:
        raise UsageError(
            f"format mlflow is a directory: fetch it as an archive ({', '.join(ARCHIVE_SUFFIXES)}) "
            f"or an s3://bucket/prefix/, not as one file ({location.redacted})"
        )
    # None: told from the content once it is downloaded (XGBoost and LightGBM files have recognisable starts).
    model_format = request.model_format or format_from_uri(location.path)

    file_name = artifact_file_name(model_format) if model_format else None
    reusable = reusable_artifact(request.dest, request.sha256, file_name) if request.sha256 else None
    if reusable:
        logs.info("reused verified artifact", file=reusable.file, sha256=request.sha256, uri=location.redacted)
        return reusable

    remove_metadata(request.dest)
    logs.info("fetch started", uri=location.redacted, scheme=location.scheme, format=model_format or "from content")
    if not request.sha256:
        logs.warning("no --sha256 given: the artifact will be marked unverified", uri=location.redacted)
    context = new_context(request, env)
    started = time.monotonic()
    sha256, size, model_format = with_retries(
        lambda: _download_once(location, context, request, model_format), context, request.retries
    )
    file_name = artifact_file_name(model_format)
    metadata = ArtifactMetadata(
        file=file_name,
        format=model_format,
        sha256=sha256,
        verified=request.sha256 is not None,
        uri=location.redacted,
        size=size,
    )
    write_metadata(request.dest, metadata)
    remove_other_artifacts(request.dest, keep=file_name)
    logs.info(
        "fetch complete",
        file=file_name,
        bytes=size,
        sha256=sha256,
        verified=metadata.verified,
        seconds=round(time.monotonic() - started, 3),
    )
    return metadata


def new_context(request: FetchRequest, env: Mapping[str, str]) -> FetchContext:
    return FetchContext(
        deadline=Deadline(request.timeout_seconds),
        max_bytes=request.max_bytes,
        pvc_root=request.pvc_root,
        env=env,
    )


def _prepare(dest: Path) -> None:
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create destination {dest}: {error.strerror}") from None
    remove_partials(dest)
    remove_leftovers(dest, MODEL_DIRECTORY)


def with_retries(attempt_once: Callable[[], T], context: FetchContext, retries: int) -> T:
    """Run one attempt, again after a retryable failure (with backoff) while attempts and time remain."""
    attempts = retries + 1
    for attempt in itertools.count(1):
        try:
            return attempt_once()
        except Failure as failure:
            if not is_retryable(failure):
                raise
            delay = backoff_delay(attempt - 1)
            if attempt >= attempts or delay >= context.deadline.remaining():
                if attempt > 1:
                    failure.args = (f"{failure} (gave up after {attempt} attempts)",)
                raise
            logs.warning(
                "retrying", attempt=attempt, attempts=attempts, wait_seconds=round(delay, 2), reason=str(failure)
            )
            time.sleep(delay)
    raise AssertionError("unreachable: itertools.count never ends")


def download_verified(location: Location, context: FetchContext, request: FetchRequest, sink: ArtifactSink) -> None:
    """Stream the artifact into `sink`, then check its digest against --sha256 when one is given."""
    last_report = time.monotonic()
    with closing(stream_for(location.scheme)(location, context)) as chunks:
        for chunk in chunks:
            sink.write(chunk)
            if time.monotonic() - last_report >= PROGRESS_INTERVAL_SECONDS:
                last_report = time.monotonic()
                logs.info("fetch progress", uri=location.redacted, bytes=sink.size)
    if request.sha256 and sink.sha256 != request.sha256:
        raise ChecksumMismatch(f"sha256 mismatch: expected {request.sha256}, got {sink.sha256} ({location.redacted})")


def _download_once(
    location: Location, context: FetchContext, request: FetchRequest, model_format: str | None
) -> tuple[str, int, str]:
    with ArtifactSink(request.dest, request.max_bytes, location.redacted) as sink:
        download_verified(location, context, request, sink)
        model_format = model_format or format_from_content(sink.head)  # the suffix was read before the download
        if model_format is None:
            raise UsageError(
                f"cannot tell the model format of {location.redacted}: its name ends in none of "
                f"{', '.join(sorted(SUFFIXES))} and it does not start like an XGBoost or LightGBM model file; "
                f"pass --format ({', '.join(FILE_FORMATS)})"
            )
        sink.commit(request.dest / artifact_file_name(model_format))
        return sink.sha256, sink.size, model_format


def remove_other_artifacts(dest: Path, keep: str) -> None:
    """A restarted pod may have fetched another format, or a directory, before; leave `serve` exactly one
    artifact."""
    for model_format in FILE_FORMATS:
        name = artifact_file_name(model_format)
        if name != keep:
            (dest / name).unlink(missing_ok=True)
    if keep != MODEL_DIRECTORY and (dest / MODEL_DIRECTORY).is_dir():
        shutil.rmtree(dest / MODEL_DIRECTORY)
