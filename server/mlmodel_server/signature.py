"""The input and output contract an estimator declares through its fitted attributes."""

from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

ColumnKind = Literal["number", "integer", "boolean", "string"]
COLUMN_KINDS: Final[tuple[ColumnKind, ...]] = ("number", "integer", "boolean", "string")


@dataclass(frozen=True)
class Column:
    """One named input column and the kind of value it takes."""

    name: str
    kind: ColumnKind


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
    )
