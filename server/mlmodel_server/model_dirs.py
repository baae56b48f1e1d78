"""Directory artifacts (an unpacked archive, an s3 prefix): what model they hold, and their digest.

Shared by `fetch`, which lands the directory, and `serve`, which loads it; both tell the model the same way:
an `MLmodel` file makes it an MLflow model, else it must hold exactly one model file. A directory holding
nothing but one directory (an archive of `my-model/...`) is read through it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from mlmodel_contract.artifacts import (
    CONTENT_HEAD_BYTES,
    LIGHTGBM,
    MLFLOW,
    MLMODEL_FILE,
    SUFFIXES,
    XGBOOST,
    format_from_content,
    format_from_uri,
    tree_manifest,
)

_READ_SIZE = 1 << 20
_MAX_WRAPPING_DIRECTORIES = 8


class NoModelInDirectory(ValueError):
    """The directory holds no MLmodel and not exactly one model file; the message says what it found."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def tree_files(directory: Path) -> dict[str, str]:
    """{relative POSIX path: sha256} of every regular file below `directory` (links are not followed)."""
    files: dict[str, str] = {}
    for parent, directories, names in os.walk(directory):
        directories.sort()
        for name in names:
            path = Path(parent, name)
            if path.is_file() and not path.is_symlink():
                files[path.relative_to(directory).as_posix()] = file_sha256(path)
    return files


def tree_sha256(directory: Path) -> str:
    """The sha256 of the directory's manifest (mlmodel_contract.artifacts.tree_manifest)."""
    return hashlib.sha256(tree_manifest(tree_files(directory)).encode()).hexdigest()


def model_root(directory: Path) -> Path:
    """`directory`, or the single directory it wraps (an archive made with `tar czf m.tgz my-model/`)."""
    root = directory
    for _ in range(_MAX_WRAPPING_DIRECTORIES):
        entries = list(root.iterdir())
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            break
        root = entries[0]
    return root


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(CONTENT_HEAD_BYTES)


def file_format(path: Path) -> str | None:
    """A model file's format: from its suffix (the native formats' .json/.txt only when the content agrees),
    else from its content."""
    named = format_from_uri(path.name)
    if named is not None and named not in (XGBOOST, LIGHTGBM):
        return named
    told = format_from_content(_head(path))
    return told if named in (None, told) else None


def find_model(directory: Path, model_format: str | None = None) -> tuple[Path, str]:
    """(what to load, its format): the MLflow model directory, or the one model file. `model_format`, when
    given, is what the directory must hold."""
    root = model_root(directory)
    if (root / MLMODEL_FILE).is_file():
        if model_format not in (None, MLFLOW):
            raise NoModelInDirectory(f"the directory holds an MLflow model ({MLMODEL_FILE}), not a {model_format} file")
        return root, MLFLOW
    if model_format == MLFLOW:
        raise NoModelInDirectory(f"format mlflow: no {MLMODEL_FILE} file in the directory")
    files = sorted(path for path in root.iterdir() if path.is_file() and not path.is_symlink())
    candidates = [(path, found) for path in files if (found := file_format(path)) is not None]
    if model_format is not None:
        candidates = [(path, found) for path, found in candidates if found == model_format]
    if len(candidates) != 1:
        listed = ", ".join(path.name for path, _ in candidates) or "none"
        wanted = f"{model_format} file" if model_format else f"model file ({', '.join(sorted(SUFFIXES))})"
        raise NoModelInDirectory(
            f"expected an {MLMODEL_FILE} file or exactly one {wanted} in the directory, found {listed}"
        )
    return candidates[0]


def replace_directory(staging: Path, target: Path) -> None:
    """Put the complete directory `staging` in place of `target` (if any). Between the two renames there is no
    `target`; a crash there leaves `.<target>-old` for the next run's `remove_leftovers`."""
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(dest: Path, name: str) -> None:
    """What an earlier, killed run left beside `dest/name`: staging and old copies, the archive, the unpacker's
    own temporary directory (`..<name>-next-*`)."""
    for leftover in [*dest.glob(f".{name}-*"), *dest.glob(f"..{name}-*")]:
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
