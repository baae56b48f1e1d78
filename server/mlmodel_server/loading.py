"""Find, check and load the model artifact once, before any worker exists.

Pickle-based formats run code while loading, so they are refused unless `fetch` verified their digest
(model.json `verified: true`) or the operator allowed unverified loading explicitly. skops files are
loaded with an explicit trusted-types list instead; XGBoost and LightGBM model files by their libraries'
readers, through native_models.py; ONNX graphs by onnxruntime (onnx_models.py). A directory artifact (an
unpacked archive or s3 prefix, model_dirs.py) holds one such file or an MLflow model, whose MLmodel names the
file and its loader (mlflow_models.py); a directory is checked against the tree digest `fetch` recorded.
"""

import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from mlmodel_contract import exit_codes
from mlmodel_contract.artifacts import (
    CONTENT_HEAD_BYTES,
    FORMATS,
    METADATA_FILE,
    MLFLOW,
    MLMODEL_FILE,
    MODEL_DIRECTORY,
    ONNX,
    PICKLE_BASED_FORMATS,
    SKOPS,
    SUFFIXES,
    detect_format,
    format_from_content,
    format_from_uri,
)
from mlmodel_contract.pod import ServeEnv
from mlmodel_server import native_models, onnx_models
from mlmodel_server.fetch import versions
from mlmodel_server.mlflow_models import MlflowModel, MlflowRefused, read_mlflow_model
from mlmodel_server.model_dirs import NoModelInDirectory, file_sha256, find_model, model_root, tree_sha256
from mlmodel_server.signature import ModelSignature, signature_of
from mlmodel_server.termination import Failure

log = logging.getLogger("mlmodel_server.loading")

# The formats read by their libraries' own readers (joblib and pickle go through joblib.load, skops below).
LOADERS = {**native_models.LOADERS, ONNX: onnx_models.load_onnx}


class LoadFailed(Failure, code=exit_codes.LOAD_FAILED): ...


class UnverifiedModelRefused(Failure, code=exit_codes.UNVERIFIED_MODEL_REFUSED): ...


class SklearnVersionMismatch(Failure, code=exit_codes.SKLEARN_VERSION_MISMATCH): ...


@dataclass(frozen=True)
class Artifact:
    """Where the model file is and what `fetch` recorded about it."""

    path: Path  # the file loaded (inside `directory` for a directory artifact)
    format: str  # the format that file is loaded as
    verified: bool
    recorded_sha256: str | None
    directory: Path | None = None  # a directory artifact
    tree_sha256: str | None = None  # its digest (model_dirs.tree_sha256), checked against model.json's
    mlflow: MlflowModel | None = None

    @property
    def served_format(self) -> str:
        """What the model is, for people and metrics: `mlflow` for an MLflow directory, else the file's format."""
        return MLFLOW if self.mlflow is not None else self.format


@dataclass
class LoadedModel:
    estimator: Any
    artifact: Artifact
    sha256: str
    load_seconds: float
    trained_sklearn_versions: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)
    # the model's input and output contract: the estimator's own, completed by an MLflow signature's inputs
    signature: ModelSignature | None = None
    # {library: version} the artifact records, the image's own, and the libraries whose difference matters
    # (fetch/versions.py has the rules)
    recorded_versions: dict[str, str] = field(default_factory=dict)
    runtime_versions: dict[str, str] = field(default_factory=dict)
    version_mismatches: tuple[str, ...] = ()


def format_of(path: Path) -> str:
    model_format = detect_format(path.name, head_of(path))
    if model_format is None:
        raise LoadFailed(
            f"cannot tell the format of {path.name}: expected one of {', '.join(sorted(SUFFIXES))}, "
            "or an XGBoost or LightGBM model file"
        )
    return model_format


def head_of(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(CONTENT_HEAD_BYTES)


def is_model_file(path: Path) -> bool:
    """Named like a model file; for the native formats (.json, .txt among their suffixes) starting like one too."""
    model_format = format_from_uri(path.name)
    if model_format in native_models.LOADERS:
        return format_from_content(head_of(path)) == model_format
    return model_format is not None


def locate_artifact(model_path: str) -> Artifact:
    """A file is used as is (never verified); a directory is read through the model.json `fetch` wrote."""
    path = Path(model_path)
    if path.is_file():
        return Artifact(path=path, format=format_of(path), verified=False, recorded_sha256=None)
    if not path.is_dir():
        raise LoadFailed(f"model path {path} does not exist")
    manifest_path = path / METADATA_FILE
    if manifest_path.is_file():
        return artifact_from_manifest(path, manifest_path)
    if (model_root(path) / MLMODEL_FILE).is_file():
        return directory_artifact(path, None, verified=False, recorded_sha256=None, recorded_tree_sha256=None)
    candidates = sorted(p for p in path.iterdir() if p.is_file() and is_model_file(p))
    if len(candidates) != 1:
        found = ", ".join(p.name for p in candidates) or "none"
        raise LoadFailed(f"expected exactly one model file in {path} (or a model.json), found {found}")
    return Artifact(path=candidates[0], format=format_of(candidates[0]), verified=False, recorded_sha256=None)


def artifact_from_manifest(directory: Path, manifest_path: Path) -> Artifact:
    try:
        manifest = json.loads(manifest_path.read_text())
        file_name = manifest["file"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoadFailed(f"cannot read {manifest_path}: {error}") from None
    if not isinstance(file_name, str) or "/" in file_name or file_name in ("", ".", ".."):
        raise LoadFailed(f"{manifest_path}: 'file' must be a plain file name")
    file_path = directory / file_name
    sha256 = manifest.get("sha256")
    if file_name == MODEL_DIRECTORY and file_path.is_dir() and not file_path.is_symlink():
        tree = manifest.get("tree_sha256")
        return directory_artifact(
            file_path,
            manifest.get("format"),
            # verified only as a whole: without a tree digest nothing ties the files to the digest fetch checked
            verified=manifest.get("verified") is True and isinstance(sha256, str) and isinstance(tree, str),
            recorded_sha256=sha256.lower() if isinstance(sha256, str) else None,
            recorded_tree_sha256=tree if isinstance(tree, str) else None,
        )
    if not file_path.is_file():
        raise LoadFailed(f"{manifest_path} names {file_name}, which does not exist")
    model_format = manifest.get("format") or format_of(file_path)
    if model_format not in FORMATS or model_format == MLFLOW:
        raise LoadFailed(f"{manifest_path}: unknown format {model_format!r}")
    return Artifact(
        path=file_path,
        format=model_format,
        verified=manifest.get("verified") is True and isinstance(sha256, str),
        recorded_sha256=sha256.lower() if isinstance(sha256, str) else None,
    )


def directory_artifact(
    directory: Path,
    model_format: str | None,
    *,
    verified: bool,
    recorded_sha256: str | None,
    recorded_tree_sha256: str | None,
) -> Artifact:
    """The model a directory holds (model_dirs.find_model): one model file, or an MLflow model's data file. The
    directory is checked against the tree digest `fetch` recorded before anything in it is read."""
    if model_format is not None and model_format not in FORMATS:
        raise LoadFailed(f"{directory}: unknown format {model_format!r}")
    tree = tree_sha256(directory)
    if recorded_tree_sha256 is not None and recorded_tree_sha256 != tree:
        raise UnverifiedModelRefused(
            f"{directory.name}/ changed after fetch: model.json records tree sha256 {recorded_tree_sha256}, "
            f"the directory has {tree}"
        )
    try:
        found, found_format = find_model(directory, model_format)
        mlflow = read_mlflow_model(found) if found_format == MLFLOW else None
    except (NoModelInDirectory, MlflowRefused) as error:
        raise LoadFailed(f"cannot serve the model in {directory}: {error}") from None
    return Artifact(
        path=mlflow.data_file if mlflow else found,
        format=mlflow.file_format if mlflow else found_format,
        verified=verified,
        recorded_sha256=recorded_sha256,
        directory=directory,
        tree_sha256=tree,
        mlflow=mlflow,
    )


def artifact_digest(artifact: Artifact) -> str:
    """The digest people pinned: the file's sha256; for a directory the one `fetch` verified (the archive's or
    the prefix manifest's; the directory was found unchanged since), else its tree digest."""
    if artifact.tree_sha256 is None:
        return file_sha256(artifact.path)
    return artifact.recorded_sha256 or artifact.tree_sha256


def check_trust(artifact: Artifact, sha256: str, allow_unverified: bool) -> None:
    if artifact.directory is None and artifact.recorded_sha256 is not None and artifact.recorded_sha256 != sha256:
        raise UnverifiedModelRefused(
            f"{artifact.path.name} changed after fetch: model.json records sha256 {artifact.recorded_sha256}, "
            f"the file has {sha256}"
        )
    if artifact.format in PICKLE_BASED_FORMATS and not artifact.verified and not allow_unverified:
        raise UnverifiedModelRefused(
            f"refusing to load {artifact.format} file {artifact.path.name}: loading a pickle runs code and its "
            "sha256 was not verified; set the model's sha256, use the skops format, or allow unverified loading "
            f"(--allow-unverified / {ServeEnv.ALLOW_UNVERIFIED}=true)"
        )


def load_pickle(path: Path) -> Any:
    import joblib  # joblib also reads plain pickles

    return joblib.load(path)


def load_skops(path: Path, extra_trusted: tuple[str, ...]) -> Any:
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    unknown = sorted(set(untrusted) - set(extra_trusted))
    if unknown:
        raise LoadFailed(
            f"skops file {path.name} contains types that are not trusted: {', '.join(unknown)}; "
            f"if you trust them, list them in --skops-trusted-types / {ServeEnv.SKOPS_TRUSTED_TYPES}"
        )
    return skops.io.load(path, trusted=list(untrusted))


def read_estimator(artifact: Artifact, extra_trusted: tuple[str, ...]) -> tuple[Any, tuple[str, ...]]:
    """Load, and collect the scikit-learn versions the artifact was written with when they differ from ours."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        if artifact.mlflow is not None and artifact.verified:  # the pinned MLmodel says what its skops file holds
            extra_trusted = (*extra_trusted, *artifact.mlflow.skops_trusted_types)
        try:
            if artifact.format == SKOPS:
                estimator = load_skops(artifact.path, extra_trusted)
            elif artifact.format in LOADERS:
                estimator = LOADERS[artifact.format](artifact.path)
            else:
                estimator = load_pickle(artifact.path)
        except Failure:
            raise
        except (native_models.NotThisFormat, native_models.LibraryRefused) as error:  # their own clear lines
            raise LoadFailed(str(error)) from None
        except Exception as error:  # any unpickling error is a load failure with a readable line
            raise LoadFailed(f"cannot load {artifact.path.name}: {type(error).__name__}: {error}") from None
    versions = sorted(
        {str(w.message.original_sklearn_version) for w in caught if isinstance(w.message, InconsistentVersionWarning)}
    )
    return estimator, tuple(versions)


def check_estimator(estimator: Any, path: Path) -> None:
    if not callable(getattr(estimator, "predict", None)):
        raise LoadFailed(f"{path.name} holds a {type(estimator).__name__}, which has no predict method")


def load_model(
    model_path: str,
    *,
    allow_unverified: bool = False,
    sklearn_version_policy: str = "warn",
    skops_trusted_types: tuple[str, ...] = (),
) -> LoadedModel:
    started = time.perf_counter()
    artifact = locate_artifact(model_path)
    sha256 = artifact_digest(artifact)
    check_trust(artifact, sha256, allow_unverified)
    estimator, trained_versions = read_estimator(artifact, skops_trusted_types)
    check_estimator(estimator, artifact.path)
    signature = signature_of(estimator)
    declared = artifact.mlflow.inputs if artifact.mlflow is not None else None
    if declared is not None:
        try:
            signature = declared.apply(signature)
        except MlflowRefused as error:
            raise LoadFailed(f"cannot serve the MLflow model in {artifact.directory}: {error}") from None
    recorded = versions.recorded_versions(artifact.path, artifact.format)
    if artifact.mlflow is not None:  # what the MLmodel file records; the data file's own record wins
        recorded = {**versions.checked_versions(artifact.mlflow.versions), **recorded}
    if trained_versions:  # what scikit-learn itself saw while unpickling (a compressed joblib file included)
        recorded[versions.SKLEARN] = ",".join(trained_versions)
    runtime = versions.runtime_versions()
    mismatches = versions.version_mismatches(recorded, runtime, pickled=artifact.format in PICKLE_BASED_FORMATS)
    messages = []
    if trained_versions:
        messages.append(
            f"{artifact.path.name} was written with scikit-learn {', '.join(trained_versions)} "
            f"but this server runs {sklearn.__version__}"
        )
    others = [phrase for library, phrase in mismatches.items() if library != versions.SKLEARN]
    if others:
        messages.append(f"{artifact.path.name} was written with {'; '.join(others)}")
    for message in messages:
        if sklearn_version_policy == "error":
            raise SklearnVersionMismatch(message + "; refusing because the version policy is 'error'")
        log.warning("library version mismatch", extra={"detail": message})
    return LoadedModel(
        estimator=estimator,
        artifact=artifact,
        sha256=sha256,
        load_seconds=time.perf_counter() - started,
        trained_sklearn_versions=trained_versions,
        warnings=messages,
        recorded_versions=recorded,
        runtime_versions=runtime,
        version_mismatches=tuple(sorted(mismatches)),
        signature=signature,
    )
