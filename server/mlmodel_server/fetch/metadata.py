"""`DEST/model.json`: what `fetch` landed, and whether an earlier run's artifact can be reused."""

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from mlmodel_contract.artifacts import FORMATS, METADATA_FILE, MODEL_DIRECTORY, artifact_file_name
from mlmodel_server.fetch.sink import fsync_directory
from mlmodel_server.model_dirs import file_sha256, tree_sha256

__all__ = ["ArtifactMetadata", "file_sha256", "read_metadata", "remove_metadata", "reusable_artifact", "write_metadata"]


@dataclass(frozen=True)
class ArtifactMetadata:
    file: str
    format: str
    sha256: str
    verified: bool
    uri: str  # always the redacted form
    size: int
    # Directory artifacts (`file` is MODEL_DIRECTORY): the landed directory's own digest, which `serve` and a
    # later fetch check it against (`sha256` is the archive's, or the prefix's manifest digest).
    tree_sha256: str | None = None


def write_metadata(dest: Path, metadata: ArtifactMetadata) -> None:
    descriptor, name = tempfile.mkstemp(dir=dest, prefix=f".{METADATA_FILE}-", suffix=".tmp")
    with os.fdopen(descriptor, "w") as handle:
        recorded = {key: value for key, value in asdict(metadata).items() if value is not None}  # files: no tree
        json.dump(recorded, handle, indent=2)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(name, dest / METADATA_FILE)
    fsync_directory(dest)


def remove_metadata(dest: Path) -> None:
    """Withdraw the old claim before the artifact changes, so a crash never leaves a stale `verified`."""
    (dest / METADATA_FILE).unlink(missing_ok=True)


def read_metadata(dest: Path) -> dict | None:
    try:
        loaded = json.loads((dest / METADATA_FILE).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def reusable_artifact(
    dest: Path, expected_sha256: str, file_name: str | None, model_format: str | None = None
) -> ArtifactMetadata | None:
    """The metadata of an artifact an earlier run verified against the same digest, if still intact. Without a
    file name (a format told from the content) the recorded one: the same bytes are the same format. A directory
    (file_name MODEL_DIRECTORY) must still have the tree digest recorded, and the format asked for, if any."""
    try:
        recorded = ArtifactMetadata(**(read_metadata(dest) or {}))
    except TypeError:  # missing, or written by another version with other fields
        return None
    if not recorded.verified or recorded.sha256 != expected_sha256:
        return None
    if recorded.format not in FORMATS or recorded.file != (file_name or artifact_file_name(recorded.format)):
        return None
    artifact = dest / recorded.file
    if recorded.file == MODEL_DIRECTORY:
        if model_format not in (None, recorded.format) or not artifact.is_dir() or artifact.is_symlink():
            return None
        return recorded if recorded.tree_sha256 == tree_sha256(artifact) else None
    if not artifact.is_file() or file_sha256(artifact) != expected_sha256:
        return None
    return recorded
