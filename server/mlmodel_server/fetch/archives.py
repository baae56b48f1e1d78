"""Unpack a verified `.tar.gz`/`.tgz`/`.tar`/`.zip` artifact into a directory, refusing what could escape it.

The archive's digest is checked before this runs; what is checked here is its contents, because a correct
digest only says the archive is the one the MLModel names, not that it is safe to unpack. Refused: absolute
member names, `..`, links of any kind, devices and FIFOs, more than `max_files` members, more than
`max_bytes` unpacked (counted while writing, so a lying header cannot get past it), and a member (or a
whole archive) that expands more than `max_ratio` times its compressed size (a zip or tar.gz bomb). The directory appears complete or
not at all: members land in a temporary sibling that is renamed into place last.
"""

from __future__ import annotations

import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO

from mlmodel_contract.artifacts import ARCHIVE_SUFFIXES

CHUNK_BYTES = 1 << 20


class UnsafeArchive(ValueError):
    """The archive cannot be unpacked safely; the message names the member and the rule it breaks."""


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 10_000
    max_bytes: int = 4 << 30
    max_ratio: int = 200


@dataclass(frozen=True)
class Member:
    name: str
    is_dir: bool
    compressed_size: int | None  # zip only: tar.gz compresses the stream, not members
    open: Callable[[], IO[bytes] | None] | None  # None for directories


def archive_kind(name: str) -> str | None:
    """'tar' or 'zip' from the file name (case-insensitive), None when it is not an archive."""
    lowered = name.lower()
    if lowered.endswith((".tar.gz", ".tgz", ".tar")):
        return "tar"
    if lowered.endswith(".zip"):
        return "zip"
    return None


def safe_relative_path(name: str) -> PurePosixPath:
    """The member's path below the target directory; raises UnsafeArchive for anything that is not one."""
    if not name or "\x00" in name:
        raise UnsafeArchive(f"archive member with an empty or NUL-containing name: {name!r}")
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise UnsafeArchive(f"archive member {name!r} has an absolute path")
    if ".." in path.parts:
        raise UnsafeArchive(f"archive member {name!r} leaves the target directory (..)")
    parts = [part for part in path.parts if part not in ("", ".")]
    if not parts:
        raise UnsafeArchive(f"archive member {name!r} names the target directory itself")
    return PurePosixPath(*parts)


def _tar_members(archive: tarfile.TarFile) -> Iterator[Member]:
    for info in archive:
        if info.issym() or info.islnk():
            raise UnsafeArchive(f"archive member {info.name!r} is a link (links are not unpacked)")
        if not (info.isfile() or info.isdir()):
            raise UnsafeArchive(f"archive member {info.name!r} is not a regular file or directory")
        yield Member(info.name, info.isdir(), None, None if info.isdir() else partial(archive.extractfile, info))


def _zip_members(archive: zipfile.ZipFile) -> Iterator[Member]:
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"archive member {info.filename!r} is a link (links are not unpacked)")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):  # zero: no type recorded
            raise UnsafeArchive(f"archive member {info.filename!r} is not a regular file or directory")
        yield Member(
            info.filename,
            info.is_dir(),
            info.compress_size,
            None if info.is_dir() else partial(archive.open, info),
        )


def _copy(source: IO[bytes], target: Path, member: Member, written: int, limits: ArchiveLimits, whole: int) -> int:
    """Copy one member, enforcing the byte and ratio caps as bytes arrive; the new running total."""
    member_bytes = 0
    ratio_cap = None if member.compressed_size is None else max(member.compressed_size, 1) * limits.max_ratio
    with open(target, "xb") as out:
        while chunk := source.read(CHUNK_BYTES):
            member_bytes += len(chunk)
            written += len(chunk)
            if written > limits.max_bytes:
                raise UnsafeArchive(f"archive unpacks to more than {limits.max_bytes} bytes (at {member.name!r})")
            if written > whole:  # a tar.gz compresses the stream: its bomb shows in the total
                raise UnsafeArchive(f"archive expands more than {limits.max_ratio} times its size (at {member.name!r})")
            if ratio_cap is not None and member_bytes > ratio_cap:
                raise UnsafeArchive(
                    f"archive member {member.name!r} expands more than {limits.max_ratio} times its compressed size"
                )
            out.write(chunk)
    return written


def _unpack_members(members: Iterator[Member], root: Path, limits: ArchiveLimits, archive_bytes: int) -> int:
    count = written = 0
    for member in members:
        count += 1
        if count > limits.max_files:
            raise UnsafeArchive(f"archive has more than {limits.max_files} members")
        relative = safe_relative_path(member.name)
        target = root.joinpath(*relative.parts)
        if member.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise UnsafeArchive(f"archive member {member.name!r} appears twice")
        assert member.open is not None
        source = member.open()
        if source is None:  # tarfile's answer for a member that is not a regular file
            raise UnsafeArchive(f"archive member {member.name!r} has no contents to read")
        with source:
            written = _copy(source, target, member, written, limits, max(archive_bytes, 1) * limits.max_ratio)
    if count == 0:
        raise UnsafeArchive("archive is empty")
    return count


def unpack(archive_path: Path, target: Path, limits: ArchiveLimits = ArchiveLimits()) -> int:
    """Unpack `archive_path` into `target` (which must not exist yet); returns the number of members."""
    kind = archive_kind(archive_path.name)
    if kind is None:
        raise UnsafeArchive(f"{archive_path.name!r} is not a {', '.join(ARCHIVE_SUFFIXES)} archive")
    size = archive_path.stat().st_size
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-", suffix=".partial"))
    try:
        try:
            if kind == "tar":
                with tarfile.open(archive_path, mode="r:*") as archive:
                    count = _unpack_members(_tar_members(archive), staging, limits, size)
            else:
                with zipfile.ZipFile(archive_path) as archive:
                    count = _unpack_members(_zip_members(archive), staging, limits, size)
        except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, EOFError) as error:
            raise UnsafeArchive(f"cannot read {archive_path.name!r} as a {kind} archive: {error}") from None
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return count
