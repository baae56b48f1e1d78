"""The input and output contract an estimator declares through its fitted attributes."""

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

ColumnKind = Literal["number", "integer", "boolean", "string"]
COLUMN_KINDS: Final[tuple[ColumnKind, ...]] = ("number", "integer", "boolean", "string")
# Kinds a float64 matrix cannot carry: a model with such a column is given a DataFrame (frames.py).
FRAME_KINDS: Final[frozenset[ColumnKind]] = frozenset({"boolean", "string"})


@dataclass(frozen=True)
class Column:
    """One named input column and the kind of value it takes."""

    name: str
    kind: ColumnKind
    # The only values the model takes, when it refuses others (an encoder with handle_unknown="error")
    categories: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class ModelSignature:
    n_features: int | None
    feature_names: tuple[str, ...] | None
    classes: tuple[Any, ...] | None  # plain Python values, ready for JSON
    has_proba: bool
    estimator_type: str
    # Named input columns with their kinds, when the model says (a DataFrame pipeline's columns, an MLflow
    # signature's inputs), in the order the model takes them. None: every feature is a number.
    columns: tuple[Column, ...] | None = None

    @property
    def takes_frame(self) -> bool:
        """The model takes a DataFrame of typed columns (some are not numbers), not a float matrix."""
        return self.columns is not None and any(column.kind in FRAME_KINDS for column in self.columns)

    @property
    def is_classifier(self) -> bool:
        return self.classes is not None

    @property
    def outputs(self) -> tuple[str, ...]:
        return ("predict", "predict_proba") if self.has_proba else ("predict",)

    def describe(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator_type,
            "n_features": self.n_features,
            "feature_names": list(self.feature_names) if self.feature_names else None,
            "classes": list(self.classes) if self.classes is not None else None,
            "outputs": list(self.outputs),
            "columns": [{"name": c.name, "kind": c.kind} for c in self.columns] if self.columns else None,
        }


def final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return final_step(steps[-1][1])
    return estimator


def signature_of(estimator: Any) -> ModelSignature:
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    classes = getattr(final_step(estimator), "classes_", None)
    if classes is not None:
        classes = np.asarray(classes)
        # multi-output classifiers keep a list of arrays; their labels are not one flat list
        classes = tuple(classes.tolist()) if classes.ndim == 1 else None
    # getattr's default also covers Pipelines, whose predict_proba raises AttributeError when the last
    # step has none (available_if)
    has_proba = callable(getattr(estimator, "predict_proba", None))
    return ModelSignature(
        n_features=int(n_features) if n_features is not None else None,
        feature_names=tuple(str(n) for n in names) if names is not None else None,
        classes=classes,
        has_proba=has_proba and classes is not None,
        estimator_type=type(estimator).__name__,
        columns=columns_of(estimator, names),
    )


def columns_of(estimator: Any, names: Any) -> tuple[Column, ...] | None:
    """The kinds of the columns a model was fitted on, from what its encoders learned about them.

    scikit-learn keeps the column names (`feature_names_in_`), not their dtypes; an encoder's `categories_` (or
    a SimpleImputer's `statistics_` of strings) shows what values a column held. A column that no encoder saw
    is taken for a number. None when every column is a number: the model is served from a float matrix, as a
    model fitted on an array is. A model that declares its columns (`input_columns_`, an ONNX graph with one
    input per column) has them as declared.
    """
    declared = getattr(estimator, "input_columns_", None)  # a graph that names its columns (onnx_models.py)
    if declared is not None:
        return tuple(declared)
    if names is None:
        return None
    front = first_step(estimator)
    seen: list[Seen] = [UNSEEN] * len(names)
    for indices, transformer in column_groups(front, len(names)):
        for index, evidence in zip(indices, transformer_inputs(transformer, len(indices)), strict=False):
            if 0 <= index < len(seen) and evidence[0] is not None:
                seen[index] = evidence
    if all(kind in (None, "number", "integer") for kind, _ in seen):
        return None
    return tuple(
        Column(str(name), kind or "number", categories) for name, (kind, categories) in zip(names, seen, strict=True)
    )


# What a transformer's fitted state shows of one input column: its kind (None: no sign of one) and, when the
# transformer refuses values it has not seen, the values it has.
Seen = tuple[ColumnKind | None, tuple[Any, ...] | None]
UNSEEN: Seen = (None, None)


def first_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return first_step(steps[0][1])
    return estimator


def column_groups(front: Any, width: int) -> list[tuple[list[int], Any]]:
    """(input column indices, the transformer that takes them) of the model's first step."""
    preprocessor = getattr(front, "_preprocessor", None)  # histogram gradient boosting's categorical_features
    if preprocessor is not None:
        front = preprocessor
    indices_by_name = getattr(front, "_transformer_to_input_indices", None)  # a fitted ColumnTransformer
    transformers = getattr(front, "transformers_", None)
    if isinstance(indices_by_name, dict) and isinstance(transformers, list):
        by_name = {name: transformer for name, transformer, _ in transformers}
        return [
            ([int(i) for i in indices], by_name[name])
            for name, indices in indices_by_name.items()
            if name in by_name and not isinstance(by_name[name], str)  # "drop", "passthrough"
        ]
    return [(list(range(width)), front)]


def transformer_inputs(transformer: Any, width: int) -> list[Seen]:
    """Per input column, what the transformer's fitted state shows of it."""
    steps = getattr(transformer, "steps", None)
    if isinstance(steps, list):
        # an imputer keeps its input's kinds: the step after it shows them too
        for _, step in steps:
            seen = transformer_inputs(step, width)
            if any(kind is not None for kind, _ in seen) or type(step).__name__ != "SimpleImputer":
                return seen
        return [UNSEEN] * width
    categories = getattr(transformer, "categories_", None)
    if isinstance(categories, list) and len(categories) == width:
        closed = getattr(transformer, "handle_unknown", None) == "error"
        return [category_evidence(np.asarray(values), closed) for values in categories]
    statistics = getattr(transformer, "statistics_", None)
    if isinstance(statistics, np.ndarray) and statistics.dtype.kind == "O" and len(statistics) == width:
        return [(kind_of_values(np.asarray([value])), None) for value in statistics]
    return [UNSEEN] * width


def category_evidence(values: np.ndarray, closed: bool) -> Seen:
    kind = kind_of_values(values)
    if closed and kind == "string":
        return kind, tuple(value for value in values.tolist() if isinstance(value, str))
    return kind, None


def kind_of_values(values: np.ndarray) -> ColumnKind | None:
    kind = values.dtype.kind
    if kind == "b":
        return "boolean"
    if kind in "iu":
        return "integer"
    if kind == "f":
        return "number"
    if kind in "US":
        return "string"
    present = [value for value in values.tolist() if value is not None and value == value]  # not None or NaN
    if not present:
        return None
    if all(isinstance(value, bool) for value in present):
        return "boolean"
    if all(isinstance(value, int) for value in present):
        return "integer"
    if all(isinstance(value, (int, float)) for value in present):
        return "number"
    return "string"
