"""Write an artifact so that the destination only ever holds a complete, fsynced file."""

import hashlib
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

from mlmodel_contract.artifacts import CONTENT_HEAD_BYTES
from mlmodel_server.fetch.errors import TooLarge

PARTIAL_PREFIX = ".fetch-"
PARTIAL_SUFFIX = ".partial"


class ArtifactSink:
    """A temp file in the destination directory, hashed and size-capped while written.

    It becomes the artifact only through `commit` (fsync + os.replace + directory fsync); leaving the
    `with` block without committing deletes it.
    """

    def __init__(self, directory: Path, max_bytes: int, label: str):
        self._directory = directory
        self._max_bytes = max_bytes
        self._label = label
        self._hash = hashlib.sha256()
        self._size = 0
        self._head = b""
        descriptor, name = tempfile.mkstemp(dir=directory, prefix=PARTIAL_PREFIX, suffix=PARTIAL_SUFFIX)
        self._path = Path(name)
        self._file = os.fdopen(descriptor, "wb")

    @property
    def size(self) -> int:
        return self._size

    @property
    def head(self) -> bytes:
        """The first bytes written (up to CONTENT_HEAD_BYTES): enough to tell a format by its content."""
        return self._head

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def write(self, chunk: bytes) -> None:
        if self._size + len(chunk) > self._max_bytes:
            raise TooLarge(f"artifact too large: more than {self._max_bytes} bytes (--max-bytes) ({self._label})")
        self._hash.update(chunk)
        if len(self._head) < CONTENT_HEAD_BYTES:
            self._head = (self._head + chunk)[:CONTENT_HEAD_BYTES]
        self._file.write(chunk)
        self._size += len(chunk)

    def commit(self, target: Path) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._path, target)
        fsync_directory(self._directory)

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._path.exists():
            self.discard()


def fsync_directory(directory: Path) -> None:
    """Make a rename inside `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_partials(directory: Path) -> None:
    """Delete temp files an earlier, killed attempt left behind (emptyDirs survive container restarts)."""
    for leftover in directory.glob(f"{PARTIAL_PREFIX}*{PARTIAL_SUFFIX}"):
        leftover.unlink(missing_ok=True)
