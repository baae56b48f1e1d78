"""Fetch a directory artifact into DEST/model: an archive over any scheme, or every object under an s3:// prefix.

Archive: downloaded like any artifact, its sha256 checked against --sha256 BEFORE anything is unpacked, then
unpacked by archives.py (no escapes, no links, file-count, byte and expansion caps). Prefix: listed, checked
(count, announced bytes, keys that stay inside the directory), then each object downloaded; the digest is the
sha256 of the manifest of what was downloaded (mlmodel_contract.artifacts.tree_manifest), checked before the
directory lands. Either way the directory is assembled beside the old one and swapped in only once complete and
found to hold a model, so a broken or hostile artifact never replaces a working model.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path, PurePosixPath

from mlmodel_contract.artifacts import ARCHIVE_SUFFIXES, DIRECTORY_MAX_FILES, MODEL_DIRECTORY, is_prefix, tree_manifest
from mlmodel_server.fetch import logs
from mlmodel_server.fetch.archives import ArchiveLimits, UnsafeArchive, safe_relative_path, unpack
from mlmodel_server.fetch.context import FetchContext
from mlmodel_server.fetch.download import FetchRequest, download_verified, remove_other_artifacts, with_retries
from mlmodel_server.fetch.errors import ArchiveRefused, ChecksumMismatch, NotFound, TooLarge
from mlmodel_server.fetch.metadata import ArtifactMetadata, remove_metadata, reusable_artifact, write_metadata
from mlmodel_server.fetch.sink import ArtifactSink, fsync_directory
from mlmodel_server.fetch.uris import Location
from mlmodel_server.model_dirs import NoModelInDirectory, find_model, replace_directory, tree_sha256

STAGING = f".{MODEL_DIRECTORY}-next"


def fetch_directory(location: Location, request: FetchRequest, context: FetchContext) -> ArtifactMetadata:
    dest = request.dest
    reusable = (
        reusable_artifact(dest, request.sha256, MODEL_DIRECTORY, request.model_format) if request.sha256 else None
    )
    if reusable:
        logs.info("reused verified artifact", file=reusable.file, sha256=request.sha256, uri=location.redacted)
        return reusable
    remove_metadata(dest)
    prefix = is_prefix(location.uri)
    kind = "prefix" if prefix else "archive"
    logs.info("fetch started", uri=location.redacted, scheme=location.scheme, kind=kind)
    if not request.sha256:
        logs.warning("no --sha256 given: the artifact will be marked unverified", uri=location.redacted)
    started = time.monotonic()
    staging = dest / STAGING
    download = _download_prefix if prefix else _download_archive
    sha256, size = with_retries(lambda: download(location, context, request, staging), context, request.retries)
    try:
        found, model_format = find_model(staging, request.model_format)
    except NoModelInDirectory as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ArchiveRefused(f"{error} ({location.redacted})") from None
    tree = tree_sha256(staging)
    replace_directory(staging, dest / MODEL_DIRECTORY)
    fsync_directory(dest)
    metadata = ArtifactMetadata(
        file=MODEL_DIRECTORY,
        format=model_format,
        sha256=sha256,
        verified=request.sha256 is not None,
        uri=location.redacted,
        size=size,
        tree_sha256=tree,
    )
    write_metadata(dest, metadata)
    remove_other_artifacts(dest, keep=MODEL_DIRECTORY)
    logs.info(
        "fetch complete",
        file=MODEL_DIRECTORY,
        kind=kind,
        format=model_format,
        model=found.relative_to(staging).as_posix() if found != staging else ".",
        bytes=size,
        sha256=sha256,
        verified=metadata.verified,
        seconds=round(time.monotonic() - started, 3),
    )
    return metadata


def _archive_suffix(location: Location) -> str:
    path = location.path.lower()
    return next(suffix for suffix in ARCHIVE_SUFFIXES if path.endswith(suffix))


def _download_archive(
    location: Location, context: FetchContext, request: FetchRequest, staging: Path
) -> tuple[str, int]:
    """Download and verify the archive, then unpack it into `staging`; (archive sha256, archive bytes)."""
    shutil.rmtree(staging, ignore_errors=True)
    archive = request.dest / f".{MODEL_DIRECTORY}-archive{_archive_suffix(location)}"
    try:
        with ArtifactSink(request.dest, request.max_bytes, location.redacted) as sink:
            download_verified(location, context, request, sink)
            sink.commit(archive)
            sha256, size = sink.sha256, sink.size
        limits = ArchiveLimits(max_files=DIRECTORY_MAX_FILES, max_bytes=request.max_bytes)
        try:
            count = unpack(archive, staging, limits)
        except UnsafeArchive as error:
            raise ArchiveRefused(f"archive refused: {error} ({location.redacted})") from None
    finally:
        archive.unlink(missing_ok=True)
    logs.info("archive unpacked", uri=location.redacted, members=count)
    return sha256, size


def _checked_objects(location: Location, objects: list[tuple[str, int]], request: FetchRequest) -> list[str]:
    """The objects' keys relative to the prefix, after the caps and the path rules."""
    label = location.redacted
    if not objects:
        raise NotFound(f"not found: no objects under {label}")
    if len(objects) > DIRECTORY_MAX_FILES:
        raise ArchiveRefused(f"prefix refused: more than {DIRECTORY_MAX_FILES} objects under {label}")
    total = sum(size for _, size in objects)
    if total > request.max_bytes:
        raise TooLarge(
            f"artifact too large: the objects under {label} add up to {total} bytes, "
            f"more than {request.max_bytes} (--max-bytes)"
        )
    relative_keys = []
    for key, _ in objects:
        relative = key[len(location.path) :]
        try:
            safe = safe_relative_path(relative).as_posix()
        except UnsafeArchive as error:
            raise ArchiveRefused(f"prefix refused: {error} ({label})") from None
        if safe != relative:  # a//b or a/./b: one file, two spellings; the digest names keys as they are
            raise ArchiveRefused(f"prefix refused: key {key!r} is not a plain relative path below the prefix ({label})")
        relative_keys.append(relative)
    return relative_keys


def _download_prefix(
    location: Location, context: FetchContext, request: FetchRequest, staging: Path
) -> tuple[str, int]:
    """Every object under the prefix into `staging`; (the manifest's sha256, total bytes)."""
    from mlmodel_server.fetch.sources import s3

    shutil.rmtree(staging, ignore_errors=True)
    objects = s3.list_prefix(location, context, DIRECTORY_MAX_FILES)
    relative_keys = _checked_objects(location, objects, request)
    logs.info("prefix listed", uri=location.redacted, objects=len(objects), bytes=sum(size for _, size in objects))
    staging.mkdir()
    digests: dict[str, str] = {}
    total = 0
    try:
        for (key, _), relative in zip(objects, relative_keys, strict=True):
            target = staging.joinpath(*PurePosixPath(relative).parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError:  # `a` is an object and `a/b` another: a file cannot be a directory too
                raise ArchiveRefused(
                    f"prefix refused: key {key!r} lies below another object ({location.redacted})"
                ) from None
            digests[relative], written = _download_object(location, key, target, context, request.max_bytes - total)
            total += written
        digest = hashlib.sha256(tree_manifest(digests).encode()).hexdigest()
        if request.sha256 and digest != request.sha256:
            raise ChecksumMismatch(
                f"sha256 mismatch: expected {request.sha256}, got {digest} for the manifest of the "
                f"{len(digests)} objects under {location.redacted}"
            )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return digest, total


def _download_object(prefix: Location, key: str, target: Path, context: FetchContext, budget: int) -> tuple[str, int]:
    from mlmodel_server.fetch.sources import s3

    location = Location(uri=f"s3://{prefix.host}/{key}", scheme="s3", host=prefix.host, path=key)
    with ArtifactSink(target.parent, budget, location.redacted) as sink:
        for chunk in s3.stream(location, context):
            sink.write(chunk)
        sink.commit(target)
        return sink.sha256, sink.size
