"""What every source needs besides the location: the time budget, the size cap, mounts and credentials."""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlmodel_server.fetch.deadline import Deadline
from mlmodel_server.fetch.errors import FetchTimeout, TooLarge, Truncated

CHUNK_SIZE = 1 << 16


@dataclass(frozen=True)
class FetchContext:
    deadline: Deadline
    max_bytes: int
    pvc_root: Path
    env: Mapping[str, str]  # credentials are read from here, never logged

    def check_announced_size(self, size: int | None, label: str) -> None:
        """Refuse before downloading when the store already says the artifact is over the cap."""
        if size is not None and size > self.max_bytes:
            raise TooLarge(f"artifact too large: {size} bytes, limit {self.max_bytes} (--max-bytes) ({label})")

    def check_deadline(self, label: str) -> None:
        if self.deadline.expired():
            raise self.timeout(label)

    def timeout(self, label: str) -> FetchTimeout:
        return FetchTimeout(f"timed out after {self.deadline.seconds:g}s (--timeout-seconds) fetching {label}")


def check_complete(received: int, announced: int | None, label: str) -> None:
    if announced is not None and received < announced:
        raise Truncated(f"truncated body: got {received} of {announced} bytes ({label})")
