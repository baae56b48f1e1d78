"""Model artifacts: formats, the file names `fetch` lands them under, and the one parser of artifact URIs.

The CRD's CEL rules on spec.model.uri admit a subset of what `parse_uri` accepts (tests/cluster checks the two
side by side on the real API server): the fetcher also takes relative paths and credentials on its command line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final
from urllib.parse import unquote, urlsplit

JOBLIB: Final = "joblib"
PICKLE: Final = "pickle"
SKOPS: Final = "skops"  # safe loading: an explicit list of trusted types, no code run
XGBOOST: Final = "xgboost"  # XGBoost's own model file (JSON or UBJSON, as Booster.save_model writes it)
LIGHTGBM: Final = "lightgbm"  # LightGBM's own text model file (Booster.save_model)
ONNX: Final = "onnx"  # an ONNX graph, run by onnxruntime
# An MLflow model directory (its `MLmodel` file names the flavour and its data file): a directory artifact only.
MLFLOW: Final = "mlflow"
FILE_FORMATS: Final = (JOBLIB, PICKLE, SKOPS, XGBOOST, LIGHTGBM, ONNX)  # what one file can be
FORMATS: Final = (*FILE_FORMATS, MLFLOW)
# Every format's own name is a suffix too (`fetch` lands a file as model.<format>). .json and .txt say little on
# their own: the loaders check that the file starts like the format's own files (`format_from_content`).
FORMAT_BY_SUFFIX: Final = {
    ".joblib": JOBLIB,
    ".pkl": PICKLE,
    ".pickle": PICKLE,
    ".skops": SKOPS,
    ".json": XGBOOST,
    ".ubj": XGBOOST,
    ".xgboost": XGBOOST,
    ".txt": LIGHTGBM,
    ".lightgbm": LIGHTGBM,
    ".onnx": ONNX,
}
SUFFIXES: Final = frozenset(FORMAT_BY_SUFFIX)
# The trust rule. Loading these runs code: they need a verified digest (or an explicit allowUnverified).
# The others are data read by a parser that runs nothing from the file (skops with its trusted-types list,
# XGBoost's JSON/UBJSON and LightGBM's text model readers, onnxruntime's graph of standard operators), so like
# any file they are verified when a sha256 is given, and need no allowUnverified when none is.
PICKLE_BASED_FORMATS: Final = frozenset({JOBLIB, PICKLE})
# How many leading bytes `format_from_content` needs.
CONTENT_HEAD_BYTES: Final = 64
# What `fetch` writes next to the artifact: {"file", "format", "sha256", "verified", "uri", "size", "tree_sha256"}.
METADATA_FILE: Final = "model.json"

# Directory artifacts: an archive (any scheme) or an s3:// prefix (a URI ending in "/"), which `fetch` lands as
# the directory MODEL_DIRECTORY beside model.json. Inside it, `serve` loads an MLflow model (an MLMODEL_FILE) or
# the one model file it holds. The digest of an archive is the archive's sha256; of a prefix and of any landed
# directory, the sha256 of its manifest (`tree_manifest`).
ARCHIVE_SUFFIXES: Final = (".tar.gz", ".tgz", ".tar", ".zip")
MODEL_DIRECTORY: Final = "model"
MLMODEL_FILE: Final = "MLmodel"
DIRECTORY_MAX_FILES: Final = 10_000  # members of an archive, objects under a prefix

SCHEMES: Final = ("file", "http", "https", "s3", "pvc")
# The port the fetcher connects to, by scheme, when the URI names none (s3: the endpoint's, not the URI's).
DEFAULT_PORTS: Final = {"http": 80, "https": 443, "s3": 443}


def artifact_file_name(model_format: str) -> str:
    """`model.<format>`: the name `fetch` gives the artifact, so `serve` finds it without guessing."""
    return f"model.{model_format}"


def _uri_path(uri: str) -> str:
    return re.split(r"[?#]", uri, maxsplit=1)[0].lower()


def is_archive(uri: str) -> bool:
    """The URI, path or file name ends in one of ARCHIVE_SUFFIXES (case-insensitive; query and fragment ignored)."""
    return _uri_path(uri).endswith(ARCHIVE_SUFFIXES)


def is_prefix(uri: str) -> bool:
    """An s3:// URI ending in "/": every object under that prefix, as one directory."""
    return uri.strip().lower().startswith("s3://") and _uri_path(uri.strip()).endswith("/")


def is_directory_artifact(uri: str) -> bool:
    return is_archive(uri) or is_prefix(uri)


def tree_manifest(files: dict[str, str]) -> str:
    """The manifest a directory's digest is the sha256 of: one `<sha256-of-file>  <relative path>\n` line per
    file (sha256sum's own format), sorted by the path's UTF-8 bytes. `files` maps relative POSIX paths (an s3
    object's key less the prefix) to their hex digests; directories are not listed."""
    ordered = sorted(files.items(), key=lambda item: item[0].encode())
    return "".join(f"{digest}  {path}\n" for path, digest in ordered)


def format_from_uri(uri: str) -> str | None:
    """The format named by the extension of a URI, path or file name (case-insensitive; query and fragment
    ignored), or None when it names none. The CRD's rule for a missing spec.model.format says the same."""
    if is_directory_artifact(uri):
        return None  # what a directory holds is told once it is fetched
    path = _uri_path(uri)
    for suffix, model_format in FORMAT_BY_SUFFIX.items():
        if path.endswith(suffix):
            return model_format
    return None


_XGBOOST_JSON = re.compile(rb'\s*\{\s*"learner"\s*:')
# UBJSON: the object marker, a length type (int8, uint8, int16, int32, int64), the length, the key.
_XGBOOST_UBJSON = re.compile(rb"\{[iUIlL].{1,8}learner\{", re.DOTALL)
_LIGHTGBM_TEXT = re.compile(rb"tree\r?\nversion=v\d")


def format_from_content(head: bytes) -> str | None:
    """The format whose own files start like `head` (the first CONTENT_HEAD_BYTES bytes), or None. Only the
    formats with recognisable starts: XGBoost JSON (`{"learner":`) and UBJSON (the same key, binary), LightGBM
    text (`tree` then `version=v4`). A pickle is never recognised: its format must be named, and trusted."""
    if _XGBOOST_JSON.match(head) or _XGBOOST_UBJSON.match(head):
        return XGBOOST
    if _LIGHTGBM_TEXT.match(head):
        return LIGHTGBM
    return None


def detect_format(name: str, head: bytes) -> str | None:
    """The format of an artifact named `name` (a URI, path or file name) that starts with `head`: from the
    suffix when it names one, else from the content."""
    return format_from_uri(name) or format_from_content(head)


class InvalidUri(ValueError):
    """The URI names no artifact the fetcher can reach; the message says why."""


@dataclass(frozen=True)
class Location:
    """Where an artifact lives. `host` is the bucket (s3) or claim (pvc); `path` is the key for s3 and pvc."""

    uri: str
    scheme: str
    host: str
    path: str

    @property
    def port(self) -> int | None:
        """The TCP port the fetcher connects to (http/https: the URI's own, else the scheme's); None for files
        and claims, and for a port the URI spells wrong (the fetcher then reports the URI)."""
        if self.scheme not in DEFAULT_PORTS:
            return None
        try:
            own = urlsplit(self.uri.strip()).port if self.scheme != "s3" else None
        except ValueError:
            return None
        return own or DEFAULT_PORTS[self.scheme]


_NO_DIRECTORY = (
    "only s3:// URIs may name a directory (a prefix ending in /); pack the directory as "
    + "/".join(ARCHIVE_SUFFIXES)
    + ": {uri}"
)


def parse_uri(uri: str, display: Callable[[str], str] = str) -> Location:
    """Parse file://, a plain path, http(s)://, s3://bucket/key or pvc://claim/path; raise InvalidUri otherwise.
    `display` renders the URI inside error messages (the fetcher redacts it)."""
    uri = uri.strip()
    if not uri:
        raise InvalidUri("empty model URI")
    if "://" not in uri:
        if uri.endswith("/"):
            raise InvalidUri(_NO_DIRECTORY.format(uri=display(uri)))
        return Location(uri=uri, scheme="file", host="", path=uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise InvalidUri(f"unsupported URI scheme {scheme!r} in {display(uri)} (supported: {', '.join(SCHEMES)})")
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise InvalidUri(f"no host in {display(uri)}")
        return Location(uri=uri, scheme=scheme, host=parts.hostname, path=parts.path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidUri(f"file:// URIs must name a local path, not host {parts.netloc!r}: {display(uri)}")
        if parts.path.endswith("/"):
            raise InvalidUri(_NO_DIRECTORY.format(uri=display(uri)))
        return Location(uri=uri, scheme="file", host="", path=unquote(parts.path))
    what = "bucket" if scheme == "s3" else "claim"
    host, relative = parts.netloc, unquote(parts.path).lstrip("/")
    if not host or not relative:
        raise InvalidUri(f"{scheme}:// URIs need a {what} and a path: {scheme}://<{what}>/<path>, got {display(uri)}")
    if scheme == "pvc" and ".." in PurePosixPath(relative).parts:
        raise InvalidUri(f"pvc:// paths must stay inside the claim: {display(uri)}")
    if scheme == "pvc" and relative.endswith("/"):
        raise InvalidUri(_NO_DIRECTORY.format(uri=display(uri)))
    return Location(uri=uri, scheme=scheme, host=host, path=relative)
