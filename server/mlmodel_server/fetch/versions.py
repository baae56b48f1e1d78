"""The library versions an artifact records, read without running it, the image's own, and when a difference matters.

Recorded versions are a plain `{library: version}` dict keyed by the library's distribution name, so any source
can add to it (e.g. the requirements an MLflow model lists, passed through `checked_versions` first);
`version_mismatches` applies the rule of each library it knows:

- scikit-learn (`_sklearn_version`, which estimators pickle and skops keeps in its schema.json): any difference,
  as scikit-learn itself warns (InconsistentVersionWarning) — unpickling across versions is not supported.
- XGBoost (the `version` array of its JSON/UBJSON model, also inside a pickled wrapper's booster): a native file
  from a newer major.minor than the image's (XGBoost reads older files, not newer ones); a pickled wrapper from
  any other major.minor (XGBoost supports pickles within one version only).
- LightGBM: a text model records its format (`version=v4`), not the library: a format newer than the one the
  image's LightGBM writes matters. A library version another source recorded follows XGBoost's rule.
- ONNX (`ir_version`, the operator sets and the producer, read from the ModelProto): recorded and shown, no rule
  of ours: onnxruntime refuses a graph whose IR version or operator set it does not implement, at load.

A pickle is never unpickled here: the file is searched for the opcode that pushes the key, and only the next
opcodes are decoded with `pickletools.genops` (joblib writes raw numpy bytes between pickle opcodes, so the
stream as a whole cannot be walked). A compressed joblib file shows no key: it reports nothing, and `serve`
still checks the scikit-learn versions when it loads the model.
"""

import io
import json
import mmap
import pickletools
import re
import zipfile
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mlmodel_contract.artifacts import LIGHTGBM, ONNX, PICKLE_BASED_FORMATS, SKOPS, XGBOOST
from mlmodel_contract.exit_codes import VERSION_SKEW_MESSAGE_PREFIX as SKEW_MARKER

# The keys of a recorded or runtime versions dict: distribution names, and three ONNX model properties.
SKLEARN = "scikit-learn"
XGBOOST_LIBRARY = "xgboost"
LIGHTGBM_LIBRARY = "lightgbm"
LIGHTGBM_MODEL_FORMAT = "lightgbm-model-format"  # `v4`: the text model's format, what LightGBM files record
ONNXRUNTIME = "onnxruntime"
ONNX_IR_VERSION = "onnx-ir-version"
ONNX_OPSETS = "onnx-opsets"  # `ai.onnx=17,ai.onnx.ml=3`
ONNX_PRODUCER = "onnx-producer"  # `skl2onnx 1.20.0`
# Every key a versions dict may carry that the server shows in its metrics (a fixed set of label values).
KNOWN_LIBRARIES = (
    SKLEARN,
    XGBOOST_LIBRARY,
    LIGHTGBM_LIBRARY,
    LIGHTGBM_MODEL_FORMAT,
    ONNXRUNTIME,
    ONNX_IR_VERSION,
    ONNX_OPSETS,
    ONNX_PRODUCER,
)
# The image's libraries, each under the distribution names that install it (XGBoost: the CPU-only build).
RUNTIME_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    SKLEARN: ("scikit-learn",),
    XGBOOST_LIBRARY: ("xgboost-cpu", "xgboost"),
    LIGHTGBM_LIBRARY: ("lightgbm",),
    ONNXRUNTIME: ("onnxruntime",),
}
_LIBRARY_NAMES = {XGBOOST_LIBRARY: "XGBoost", LIGHTGBM_LIBRARY: "LightGBM"}
# XGBoost's `"version": [3, 2, 0]`: as JSON text, and as UBJSON (an int8/uint8 array, counted or typed).
_XGBOOST_JSON_VERSION = re.compile(rb'"version"\s*:\s*\[\s*(\d{1,4})\s*,\s*(\d{1,4})\s*,\s*(\d{1,4})\s*\]')
_XGBOOST_UBJSON_VERSION = re.compile(
    rb"version\[(?:(?:#[iU].|#L.{8})?[iU](.)[iU](.)[iU](.)|\$[iU]#(?:[iU].|L.{8})(.)(.)(.))", re.DOTALL
)
_LIGHTGBM_MODEL_FORMAT = re.compile(rb"tree\r?\nversion=(v\d{1,3})\r?\n")
_OPSET_DOMAINS = {"": "ai.onnx"}  # the default domain's name
# What a recorded value may look like: versions, comma-separated lists of them, `domain=version` pairs and a
# producer's `name version`. The artifact is untrusted, and the values reach Events, labels and metadata.
_RECORDED_VALUE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_=, -]{0,127}$")


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
    if running is None or not recorded:
        return None
    mismatch = version_mismatches({SKLEARN: ",".join(recorded)}, {SKLEARN: running}, pickled=True)
    return skew_line(file_name, mismatch)


def installed_version(distributions: tuple[str, ...]) -> str | None:
    for distribution in distributions:
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    return None


def runtime_versions() -> dict[str, str]:
    """The image's libraries (from the installed metadata: importing them takes seconds), and the LightGBM model
    format its LightGBM writes (`v<major>`: 4.x writes v4, as 3.x wrote v3)."""
    found = {name: v for name, d in RUNTIME_DISTRIBUTIONS.items() if (v := installed_version(d)) is not None}
    if LIGHTGBM_LIBRARY in found:
        found[LIGHTGBM_MODEL_FORMAT] = "v" + found[LIGHTGBM_LIBRARY].split(".")[0]
    return found


def xgboost_version(data: bytes | mmap.mmap) -> str | None:
    """The last `version` array in the data (a model's own comes after its trees), as `3.2.0`."""
    found = None
    for match in _XGBOOST_JSON_VERSION.finditer(data):
        found = ".".join(str(int(part)) for part in match.groups())
    for match in _XGBOOST_UBJSON_VERSION.finditer(data):
        found = ".".join(str(part[0]) for part in match.groups() if part is not None)
    return found


def lightgbm_model_format(data: bytes | mmap.mmap) -> str | None:
    match = _LIGHTGBM_MODEL_FORMAT.search(data)
    return match.group(1).decode() if match else None


def onnx_versions(data: bytes | mmap.mmap) -> dict[str, str]:
    """ModelProto: ir_version = 1, producer_name = 2, producer_version = 3, opset_import = 8 (domain = 1,
    version = 2). The graph (7) is skipped over, not parsed."""
    from mlmodel_server.onnx_models import fields

    ir_version, producer, opsets = None, ["", ""], {}
    try:
        for number, wire_type, value in fields(memoryview(data)):
            if number == 1 and wire_type == 0:
                ir_version = value
            elif number in (2, 3) and wire_type == 2:
                producer[number - 2] = bytes(value).decode("utf-8", errors="replace")
            elif number == 8 and wire_type == 2:
                entry = {n: v for n, _, v in fields(value)}
                domain = bytes(entry.get(1, b"")).decode("utf-8", errors="replace")
                opsets[_OPSET_DOMAINS.get(domain, domain)] = entry.get(2)
    except (ValueError, IndexError):
        return {}
    found = {}
    if isinstance(ir_version, int):
        found[ONNX_IR_VERSION] = str(ir_version)
    if opsets:
        found[ONNX_OPSETS] = ",".join(f"{d}={v}" for d, v in sorted(opsets.items()) if isinstance(v, int))
    if any(producer):
        found[ONNX_PRODUCER] = " ".join(p for p in producer if p)
    return found


def recorded_versions(path: Path, model_format: str) -> dict[str, str]:
    """What the artifact says about the libraries that wrote it; {} when it records nothing that can be read.
    Values are checked like versions (they reach Events, metric labels and metadata)."""
    try:
        if path.stat().st_size == 0:
            return {}
        found: dict[str, str] = {}
        if model_format == SKOPS or model_format in PICKLE_BASED_FORMATS:
            sklearn_versions = recorded_sklearn_versions(path, model_format)
            if sklearn_versions:
                found[SKLEARN] = ",".join(sklearn_versions)
        if model_format == SKOPS:
            return found
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            # A pickle names the wrapper's module (`xgboost.sklearn`, `lightgbm.sklearn`): a fast literal search
            # first, so a plain scikit-learn pickle is not scanned by the regular expressions.
            pickled = model_format in PICKLE_BASED_FORMATS
            xgboost = (
                xgboost_version(data) if model_format == XGBOOST or (pickled and data.find(b"xgboost") >= 0) else None
            )
            lightgbm = (
                lightgbm_model_format(data)
                if model_format == LIGHTGBM or (pickled and data.find(b"lightgbm") >= 0)
                else None
            )
            found.update(onnx_versions(data) if model_format == ONNX else {})
        found.update({XGBOOST_LIBRARY: xgboost} if xgboost else {})
        found.update({LIGHTGBM_MODEL_FORMAT: lightgbm} if lightgbm else {})
    except (OSError, ValueError):
        return {}
    return checked_versions(found)


def checked_versions(recorded: Mapping[str, str]) -> dict[str, str]:
    """The entries whose value looks like a recorded version; for a dict from any source (e.g. the requirements an
    MLflow model lists), before it is merged with `recorded_versions` and shown."""
    return {key: value for key, value in recorded.items() if isinstance(value, str) and _RECORDED_VALUE.match(value)}


def major_minor(text: str) -> tuple[int, int] | None:
    match = re.match(r"v?(\d+)(?:\.(\d+))?", text)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


def version_mismatches(recorded: Mapping[str, str], runtime: Mapping[str, str], pickled: bool) -> dict[str, str]:
    """{library: the phrase that says why it matters} for each recorded version the rules above reject."""
    found: dict[str, str] = {}
    ours = runtime.get(SKLEARN)
    if ours is not None and (theirs := recorded.get(SKLEARN)):
        versions = theirs.split(",")
        if any(v != ours for v in versions):
            found[SKLEARN] = f"scikit-learn {', '.join(versions)} but this image runs {ours}"
    for library in (XGBOOST_LIBRARY, LIGHTGBM_LIBRARY):
        theirs, ours = recorded.get(library), runtime.get(library)
        written, running = major_minor(theirs or ""), major_minor(ours or "")
        if written is None or running is None or written == running:
            continue
        name = _LIBRARY_NAMES[library]
        if pickled:
            found[library] = (
                f"{name} {theirs} but this image runs {ours} (a pickle is not portable across minor versions)"
            )
        elif written > running:
            found[library] = f"{name} {theirs} but this image runs {ours} (an older {name} may misread a newer model)"
    theirs, ours = recorded.get(LIGHTGBM_MODEL_FORMAT), runtime.get(LIGHTGBM_MODEL_FORMAT)
    written, running = major_minor(theirs or ""), major_minor(ours or "")
    if written is not None and running is not None and written > running:
        found[LIGHTGBM_MODEL_FORMAT] = (
            f"LightGBM model format {theirs} but this image's LightGBM {runtime.get(LIGHTGBM_LIBRARY)} writes {ours}"
        )
    return found


def skew_line(file_name: str, mismatches: Mapping[str, str]) -> str | None:
    """The one termination-message line naming every mismatch, or None when there is none."""
    if not mismatches:
        return None
    line = f"{SKEW_MARKER} {file_name} was written with {'; '.join(mismatches.values())}"
    return " ".join(line.split())  # one line, whatever the artifact claims
