"""The scikit-learn versions an artifact records, read without running it, and the skew line `fetch` reports.

Estimators pickle `_sklearn_version`; skops keeps the same key in its schema.json. A pickle is never
unpickled here: the file is searched for the opcode that pushes the key, and only the next opcodes are
decoded with `pickletools.genops` (joblib writes raw numpy bytes between pickle opcodes, so the stream as a
whole cannot be walked). A compressed joblib file shows no key: it reports nothing, and `serve` still
checks the versions when it loads the model.
"""

import io
import json
import mmap
import pickletools
import re
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlmodel_contract.artifacts import PICKLE_BASED_FORMATS, SKOPS
from mlmodel_contract.exit_codes import VERSION_SKEW_MESSAGE_PREFIX as SKEW_MARKER

VERSION_KEY = "_sklearn_version"
_MAX_VERSION_LENGTH = 64
# What a version looks like (PEP 440 characters): the artifact is untrusted, and the value reaches an Event.
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}$")
_KEY_OPCODES = (  # SHORT_BINUNICODE (protocol 4+), BINUNICODE (protocol 1-3); a memoized key repeats a value seen
    b"\x8c" + bytes([len(VERSION_KEY)]) + VERSION_KEY.encode(),
    b"X" + len(VERSION_KEY).to_bytes(4, "little") + VERSION_KEY.encode(),
)
_STRING_OPCODES = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "UNICODE"})
_MEMO_OPCODES = frozenset({"MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"})


def running_sklearn_version() -> str | None:
    """This image's scikit-learn, from the installed metadata (importing scikit-learn takes a second)."""
    try:
        return version("scikit-learn")
    except PackageNotFoundError:
        return None


def value_after_key(data: bytes) -> str | None:
    """The string the opcodes in `data` (which start right after the key's opcode) push next, if any."""
    try:
        for opcode, argument, _ in pickletools.genops(io.BytesIO(data)):
            if opcode.name in _MEMO_OPCODES:
                continue
            if opcode.name in _STRING_OPCODES and isinstance(argument, str) and _VERSION.match(argument):
                return argument
            return None  # a memo reference or anything else: a version already seen, or not a version
    except ValueError:  # truncated or not a pickle after all
        return None
    return None


def pickle_versions(path: Path) -> tuple[str, ...]:
    if path.stat().st_size == 0:
        return ()
    found: set[str] = set()
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        for key in _KEY_OPCODES:
            position = data.find(key)
            while position >= 0:
                start = position + len(key)
                value = value_after_key(data[start : start + 2 * _MAX_VERSION_LENGTH])
                if value is not None:
                    found.add(value)
                position = data.find(key, start)
    return tuple(sorted(found))


def schema_versions(schema: object) -> set[str]:
    """Every `_sklearn_version` in a skops schema: a JSON-encoded string node under that key."""
    found: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            recorded = node.get(VERSION_KEY)
            if isinstance(recorded, dict) and isinstance(recorded.get("content"), str):
                try:
                    value = json.loads(recorded["content"])
                except ValueError:
                    value = None
                if isinstance(value, str) and _VERSION.match(value):
                    found.add(value)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def skops_versions(path: Path) -> tuple[str, ...]:
    try:
        with zipfile.ZipFile(path) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return ()
    return tuple(sorted(schema_versions(schema)))


def recorded_sklearn_versions(path: Path, model_format: str) -> tuple[str, ...]:
    """The scikit-learn versions the artifact says wrote it; () when it records none that can be read."""
    if model_format != SKOPS and model_format not in PICKLE_BASED_FORMATS:
        return ()  # XGBoost and LightGBM files: no scikit-learn estimator inside
    try:
        return skops_versions(path) if model_format == SKOPS else pickle_versions(path)
    except (OSError, ValueError):
        return ()


def skew_message(file_name: str, recorded: tuple[str, ...], running: str | None) -> str | None:
    """The one line for the termination message when the artifact was written by another scikit-learn."""
    other = [v for v in recorded if v != running]
    if running is None or not other:
        return None
    line = (
        f"{SKEW_MARKER} {file_name} was written with scikit-learn {', '.join(recorded)} but this image runs {running}"
    )
    return " ".join(line.split())  # one line, whatever the artifact claims
