"""Pure validation: JSON values → one float64 matrix the estimator accepts, or an InvalidInput naming why.

numpy does the type checks in C: a JSON list of numbers becomes an int or float array, anything else
(strings, null, booleans mixed in, ragged rows) turns into another dtype or raises, and is rejected.
"""

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from mlmodel_server.errors import InvalidInput
from mlmodel_server.signature import ModelSignature

MAX_ROWS = 100_000
NUMERIC_KINDS = frozenset("iuf")


def numeric_matrix(value: Any, what: str) -> np.ndarray:
    """A list of rows of numbers → (n, f) float64, finite. A flat list is NOT accepted here."""
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(f"{what}: expected rows of numbers, all with the same number of values") from None
    if array.dtype.kind not in NUMERIC_KINDS:
        raise InvalidInput(f"{what}: every value must be a number")
    if array.ndim != 2:
        raise InvalidInput(f"{what}: expected a list of rows (2 dimensions), got {array.ndim} dimensions")
    if array.shape[0] == 0:
        raise InvalidInput(f"{what}: expected at least one row")
    if array.shape[0] > MAX_ROWS:
        raise InvalidInput(f"{what}: at most {MAX_ROWS} rows per request, got {array.shape[0]}")
    matrix = array.astype(np.float64, copy=False)
    if not np.isfinite(matrix).all():
        raise InvalidInput(f"{what}: values must be finite numbers")
    return matrix


def check_width(matrix: np.ndarray, signature: ModelSignature) -> np.ndarray:
    expected = signature.n_features
    if expected is not None and matrix.shape[1] != expected:
        raise InvalidInput(f"expected {expected} features, got {matrix.shape[1]}")
    return matrix


def name_mismatch(expected: Sequence[str], given: Iterable[Any], missing_what: str, unknown_what: str) -> str | None:
    """What is missing and what is unknown among names given for the expected ones, or None when they match."""
    given_names = {str(name) for name in given}
    missing = [name for name in expected if name not in given_names]
    unknown = sorted(given_names - set(expected))
    parts = []
    if missing:
        parts.append(f"missing {missing_what} {', '.join(missing)}")
    if unknown:
        parts.append(f"unknown {unknown_what} {', '.join(unknown[:10])}")
    return "; ".join(parts) or None


def named_rows(rows: list[Any], signature: ModelSignature, what: str) -> list[list[Any]]:
    """Objects keyed by feature name → positional rows in the order the estimator was fitted with."""
    names = signature.feature_names
    if names is None:
        raise InvalidInput(f"{what}: this model was fitted without feature names; send lists of numbers")
    expected = set(names)
    ordered = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InvalidInput(f"{what}: row {index} is not an object; do not mix objects and lists")
        if row.keys() != expected:
            mismatch = name_mismatch(sorted(expected), row.keys(), "features", "features")
            raise InvalidInput(f"{what}: row {index}: {mismatch}")
        ordered.append([row[name] for name in names])
    return ordered


def rows_to_matrix(value: Any, signature: ModelSignature, what: str) -> tuple[np.ndarray, bool]:
    """Accepts one row (list of numbers, or an object keyed by feature name) or a list of rows.

    Returns the matrix and whether the caller sent a single row (so the response is a single value).
    An array is rows compiled_json.py already decoded: one row when it has one dimension.
    """
    if isinstance(value, np.ndarray):
        single = value.ndim == 1
        return check_width(numeric_matrix(value.reshape(1, -1) if single else value, what), signature), single
    if isinstance(value, dict):
        return check_width(numeric_matrix(named_rows([value], signature, what), what), signature), True
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{what}: expected a non-empty list of numbers, a list of rows, or an object of features")
    first = value[0]
    if isinstance(first, dict):
        return check_width(numeric_matrix(named_rows(value, signature, what), what), signature), False
    if isinstance(first, list):
        return check_width(numeric_matrix(value, what), signature), False
    return check_width(numeric_matrix([value], what), signature), True
