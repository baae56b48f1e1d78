"""Which serialization format an artifact uses, and the file name it lands under (pure functions)."""

from pathlib import PurePosixPath

FORMATS = ("joblib", "pickle", "skops")

_FORMAT_BY_SUFFIX = {
    ".joblib": "joblib",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".skops": "skops",
}


SUFFIXES = frozenset(_FORMAT_BY_SUFFIX)


def detect_format(path: str) -> str | None:
    """The format named by the path's extension (case-insensitive), or None when it names none."""
    return _FORMAT_BY_SUFFIX.get(PurePosixPath(path).suffix.lower())


def artifact_file_name(model_format: str) -> str:
    """`model.<format>`: the pod contract's name, so `serve` finds the file without guessing."""
    return f"model.{model_format}"
