"""MLflow model directories, read from MLflow's on-disk format without mlflow: the `MLmodel` YAML names the
flavours, their data file and the signature; the data file is loaded by the server's own loaders.

Served flavours: sklearn (serialization_format pickle, cloudpickle or skops), xgboost (its JSON/UBJSON model file),
lightgbm (a Booster's text file, or the scikit-learn wrapper as skops or pickle), onnx, and python_function whose
loader_module is one of those flavours' modules. Anything else (a custom Python model, pytorch, ...) is refused
with one line naming what the directory has.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlmodel_contract.artifacts import LIGHTGBM, MLMODEL_FILE, ONNX, PICKLE, SKOPS, XGBOOST
from mlmodel_server.signature import Column, ColumnKind, ModelSignature

SERVED_FLAVOURS = ("sklearn", "xgboost", "lightgbm", "onnx")
_LOADER_MODULES = {f"mlflow.{flavour}": flavour for flavour in SERVED_FLAVOURS}
_SERIALIZATION = {"pickle": PICKLE, "cloudpickle": PICKLE, "skops": SKOPS}
# MLflow's column types (mlflow.types.DataType) the server takes as values of a column.
_COLUMN_KINDS: dict[str, ColumnKind] = {
    "double": "number",
    "float": "number",
    "integer": "integer",
    "long": "integer",
    "boolean": "boolean",
    "string": "string",
}
# {MLmodel key: library}: where MLmodel records the versions that wrote the model.
_VERSION_KEYS = {
    ("sklearn", "sklearn_version"): "scikit-learn",
    ("xgboost", "xgb_version"): "xgboost",
    ("lightgbm", "lgb_version"): "lightgbm",
    ("onnx", "onnx_version"): "onnx",
    ("python_function", "python_version"): "python",
}
_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+!_-]{0,63}$")  # the file is untrusted: versions reach logs and Events
_MAX_MLMODEL_BYTES = 1 << 20


class MlflowRefused(ValueError):
    """The directory's MLmodel cannot be read, or names no flavour this image serves."""


@dataclass(frozen=True)
class DeclaredInputs:
    """What the MLmodel's signature says the model takes."""

    n_features: int | None
    columns: tuple[Column, ...] | None  # column-based signatures whose types all map to a ColumnKind

    def apply(self, signature: ModelSignature) -> ModelSignature:
        """The estimator's own signature, completed (never contradicted) by the declared inputs."""
        if self.n_features is not None and signature.n_features not in (None, self.n_features):
            raise MlflowRefused(
                f"the MLmodel signature declares {self.n_features} inputs but the model takes {signature.n_features}"
            )
        names = tuple(column.name for column in self.columns) if self.columns else None
        if names and signature.feature_names and tuple(signature.feature_names) != names:
            raise MlflowRefused(
                f"the MLmodel signature names the inputs {', '.join(names)} but the model was fitted on "
                f"{', '.join(signature.feature_names)}"
            )
        return replace(
            signature,
            n_features=signature.n_features if signature.n_features is not None else self.n_features,
            feature_names=signature.feature_names or names,
            columns=self.columns,
        )


@dataclass(frozen=True)
class MlflowModel:
    directory: Path
    flavour: str  # one of SERVED_FLAVOURS
    data_file: Path
    file_format: str  # the loader the data file goes through: pickle, skops, xgboost, lightgbm or onnx
    skops_trusted_types: tuple[str, ...]  # what the MLmodel says its skops file holds
    inputs: DeclaredInputs | None
    versions: dict[str, str]


def read_mlmodel(directory: Path) -> dict[str, Any]:
    import yaml

    path = directory / MLMODEL_FILE
    try:
        if path.stat().st_size > _MAX_MLMODEL_BYTES:
            raise MlflowRefused(f"{MLMODEL_FILE} is larger than {_MAX_MLMODEL_BYTES} bytes")
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise MlflowRefused(f"cannot read {MLMODEL_FILE}: {type(error).__name__}: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise MlflowRefused(f"{MLMODEL_FILE} has no flavors mapping")
    return document


def recorded_versions(mlmodel: dict[str, Any]) -> dict[str, str]:
    """{library: version} the MLmodel records as having written the model (mlflow, scikit-learn, xgboost, lightgbm,
    onnx, python); values that do not look like versions are left out."""
    flavours = mlmodel.get("flavors") or {}
    found = {"mlflow": mlmodel.get("mlflow_version")}
    for (flavour, key), library in _VERSION_KEYS.items():
        settings = flavours.get(flavour)
        if isinstance(settings, dict):
            found[library] = settings.get(key)
    return {library: value for library, value in found.items() if isinstance(value, str) and _VERSION.match(value)}


def mlflow_library_versions(directory: Path) -> dict[str, str]:
    """The versions an MLflow model directory records ({library: version}); {} when its MLmodel cannot be read."""
    try:
        return recorded_versions(read_mlmodel(directory))
    except MlflowRefused:
        return {}


def _inside(directory: Path, name: Any) -> Path:
    if not isinstance(name, str) or not name:
        raise MlflowRefused(f"{MLMODEL_FILE} names no data file")
    path = (directory / name).resolve()
    if not path.is_relative_to(directory.resolve()):
        raise MlflowRefused(f"{MLMODEL_FILE} names a data file outside the model directory: {name!r}")
    if not path.is_file():
        raise MlflowRefused(f"{MLMODEL_FILE} names the data file {name!r}, which is not in the model directory")
    return path


def _flavour_file(flavour: str, settings: dict[str, Any], directory: Path) -> tuple[Path, str]:
    """(data file, loader format) for one of SERVED_FLAVOURS."""
    if flavour == "sklearn":
        data = _inside(directory, settings.get("pickled_model") or settings.get("model_path"))
        serialization = settings.get("serialization_format") or ("skops" if data.suffix == ".skops" else "pickle")
        if serialization not in _SERIALIZATION:
            raise MlflowRefused(f"sklearn flavour with serialization_format {serialization!r} (served: pickle, skops)")
        return data, _SERIALIZATION[serialization]
    data = _inside(directory, settings.get("data") or settings.get("model_path"))
    if flavour == "xgboost":
        return data, XGBOOST
    if flavour == "onnx":
        return data, ONNX
    # lightgbm: a Booster is saved as LightGBM's text file; the scikit-learn wrapper as skops or a pickle
    if settings.get("model_class") == "lightgbm.basic.Booster" or data.suffix == ".lgb":
        return data, LIGHTGBM
    return data, SKOPS if data.suffix == ".skops" else PICKLE


def choose_flavour(mlmodel: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The first served flavour the MLmodel has, else python_function over one of their loader modules."""
    flavours = mlmodel["flavors"]
    for flavour in SERVED_FLAVOURS:
        if isinstance(flavours.get(flavour), dict):
            return flavour, flavours[flavour]
    pyfunc = flavours.get("python_function")
    if isinstance(pyfunc, dict) and pyfunc.get("loader_module") in _LOADER_MODULES:
        return _LOADER_MODULES[pyfunc["loader_module"]], pyfunc
    listed = ", ".join(str(name) for name in flavours) or "none"
    detail = f" (python_function loader_module {pyfunc.get('loader_module')})" if isinstance(pyfunc, dict) else ""
    raise MlflowRefused(
        f"the MLflow model's flavours are {listed}{detail}: this image serves {', '.join(SERVED_FLAVOURS)}, "
        "or python_function over one of them"
    )


def _signature_part(mlmodel: dict[str, Any], part: str) -> list[Any] | None:
    signature = mlmodel.get("signature")
    text = signature.get(part) if isinstance(signature, dict) else None
    if not isinstance(text, str):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        raise MlflowRefused(f"{MLMODEL_FILE}: signature {part} is not valid JSON") from None
    return parsed if isinstance(parsed, list) else None


def declared_inputs(mlmodel: dict[str, Any]) -> DeclaredInputs | None:
    """The signature's inputs: column-based (names and types) or one 2-D tensor ([-1, features])."""
    specs = _signature_part(mlmodel, "inputs")
    if not specs or not all(isinstance(spec, dict) for spec in specs):
        return None
    if len(specs) == 1 and specs[0].get("type") == "tensor":
        shape = (specs[0].get("tensor-spec") or {}).get("shape")
        if isinstance(shape, list) and len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 0:
            return DeclaredInputs(n_features=shape[1], columns=None)
        return None
    if any(spec.get("type") == "tensor" for spec in specs):
        return None  # several tensors: not rows of features
    names = [spec.get("name") for spec in specs]
    kinds = [_COLUMN_KINDS.get(str(spec.get("type"))) for spec in specs]
    if all(isinstance(name, str) and name for name in names) and all(kinds):
        columns = tuple(Column(str(name), kind) for name, kind in zip(names, kinds, strict=True) if kind)
        return DeclaredInputs(n_features=len(specs), columns=columns)
    return DeclaredInputs(n_features=len(specs), columns=None)  # unnamed columns, or types beyond the four kinds


def read_mlflow_model(directory: Path) -> MlflowModel:
    mlmodel = read_mlmodel(directory)
    flavour, settings = choose_flavour(mlmodel)
    data_file, file_format = _flavour_file(flavour, settings, directory)
    trusted = settings.get("skops_trusted_types") or mlmodel["flavors"].get(flavour, {}).get("skops_trusted_types")
    return MlflowModel(
        directory=directory,
        flavour=flavour,
        data_file=data_file,
        file_format=file_format,
        skops_trusted_types=tuple(str(name) for name in trusted) if isinstance(trusted, list) else (),
        inputs=declared_inputs(mlmodel),
        versions=recorded_versions(mlmodel),
    )
