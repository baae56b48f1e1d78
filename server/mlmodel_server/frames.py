"""Pure validation for models that take typed columns: JSON rows or V2 column tensors → the pandas DataFrame
the model was fitted on (its columns in its order, each of its kind's dtype), or an InvalidInput naming the
row and column.

Only models with a string or boolean column come here (`ModelSignature.takes_frame`); a numeric model keeps
the float matrix of inputs.py. pandas is imported on the first such request, never by a numeric model's server.

Kinds and the values they take:
    number    a JSON number (or a V2 tensor of any integer or floating type), finite → float64
    integer   a JSON integer, or a number with no fraction (V2: an integer type) → int64
    boolean   true or false (V2: BOOL) → bool
    string    a JSON string (V2: BYTES, UTF-8) → object
null is not a value of any kind: a row with a null (or a missing column) is refused, naming it. A model that
imputes missing values is still sent every value; the server does not guess what a null would mean.
"""

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from mlmodel_server.errors import InvalidInput
from mlmodel_server.inputs import MAX_ROWS, name_mismatch
from mlmodel_server.signature import Column, ColumnKind, ModelSignature

DTYPES: dict[ColumnKind, Any] = {"number": np.float64, "integer": np.int64, "boolean": np.bool_, "string": object}
EXPECTED: dict[ColumnKind, str] = {
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "string": "a string",
}
# The V2 datatypes each kind takes (v2_codec.NUMPY_TYPES names them all).
INTEGER_DATATYPES = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
TENSOR_DATATYPES: dict[ColumnKind, frozenset[str]] = {
    "number": INTEGER_DATATYPES | {"FP16", "FP32", "FP64"},
    "integer": INTEGER_DATATYPES,
    "boolean": frozenset({"BOOL"}),
    "string": frozenset({"BYTES"}),
}
# The datatype a column is described with in V2 metadata (and the one to send).
METADATA_DATATYPES: dict[ColumnKind, str] = {"number": "FP64", "integer": "INT64", "boolean": "BOOL", "string": "BYTES"}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def number_value(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value) if not isinstance(value, float) else value
        return number if math.isfinite(number) else None
    return None


def integer_value(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -(2**63) <= value < 2**63 else None
    if isinstance(value, float) and value.is_integer() and -(2.0**63) <= value < 2.0**63:
        return int(value)
    return None


def boolean_value(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def string_value(value: Any) -> str | None:
    return value if isinstance(value, str) else None


CONVERTERS: dict[ColumnKind, Callable[[Any], Any]] = {
    "number": number_value,
    "integer": integer_value,
    "boolean": boolean_value,
    "string": string_value,
}


def pandas() -> Any:
    return importlib.import_module("pandas")


def new_frame(columns: tuple[Column, ...], values: list[np.ndarray]) -> Any:
    return pandas().DataFrame({column.name: array for column, array in zip(columns, values, strict=True)})


def column_array(column: Column, values: list[Any]) -> np.ndarray:
    if column.kind == "string":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.asarray(values, dtype=DTYPES[column.kind])


def checked_cell(column: Column, value: Any, row: int, what: str) -> Any:
    converted = CONVERTERS[column.kind](value)
    if converted is None:
        detail = "null is not allowed" if value is None else f"got {json_type(value)}"
        if column.kind == "number" and isinstance(value, float):
            detail = "the number must be finite"
        elif column.kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
            detail = f"got {value!r}"
        raise InvalidInput(f"{what}: row {row}, column {column.name!r}: expected {EXPECTED[column.kind]}, {detail}")
    return converted


def row_values(row: Any, columns: tuple[Column, ...], names: frozenset[str], index: int, what: str) -> list[Any]:
    """One row, an object keyed by column name or a list in the model's column order, as its values in order."""
    if isinstance(row, dict):
        if row.keys() != names:
            mismatch = name_mismatch([column.name for column in columns], row.keys(), "columns", "columns")
            raise InvalidInput(f"{what}: row {index}: {mismatch}")
        return [row[column.name] for column in columns]
    if isinstance(row, list):
        if len(row) != len(columns):
            raise InvalidInput(
                f"{what}: row {index}: expected {len(columns)} values (columns {', '.join(c.name for c in columns)}), "
                f"got {len(row)}"
            )
        return row
    raise InvalidInput(f"{what}: row {index}: expected an object of columns or a list of values, got {json_type(row)}")


def rows_to_frame(value: Any, signature: ModelSignature, what: str) -> tuple[Any, bool]:
    """One row (an object keyed by column name, or a list of values in column order) or a list of rows → the
    DataFrame and whether the caller sent a single row."""
    columns = signature.columns
    assert columns is not None
    rows: list[Any]
    if isinstance(value, dict):
        rows, single = [value], True
    elif isinstance(value, list) and value and not isinstance(value[0], (dict, list)):
        rows, single = [value], True  # one row of values
    elif isinstance(value, list) and value:
        rows, single = value, False
    else:
        raise InvalidInput(f"{what}: expected an object of columns, a list of them, or a list of rows of values")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"{what}: at most {MAX_ROWS} rows per request, got {len(rows)}")
    names = frozenset(column.name for column in columns)
    cells: list[list[Any]] = [[] for _ in columns]
    for index, row in enumerate(rows):
        for column, cell, values in zip(columns, row_values(row, columns, names, index, what), cells, strict=True):
            values.append(checked_cell(column, cell, index, what))
    return new_frame(columns, [column_array(c, v) for c, v in zip(columns, cells, strict=True)]), single


def tensor_column(column: Column, datatype: str, data: np.ndarray, where: str) -> np.ndarray:
    """A V2 column tensor's elements (shape [N]) as the column's dtype."""
    if datatype not in TENSOR_DATATYPES[column.kind]:
        raise InvalidInput(
            f"{where}: column {column.name!r} takes {METADATA_DATATYPES[column.kind]} data"
            f" ({EXPECTED[column.kind]} per row), got {datatype}"
        )
    if column.kind == "string":
        strings = np.empty(len(data), dtype=object)
        for row, element in enumerate(data.tolist()):
            try:
                strings[row] = element.decode() if isinstance(element, bytes) else str(element)
            except UnicodeDecodeError:
                raise InvalidInput(f"{where}: row {row}: BYTES element is not UTF-8 text") from None
        return strings
    if column.kind == "number":
        numbers = data.astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise InvalidInput(f"{where}: row {int(bad[0])}: values must be finite numbers")
        return numbers
    if column.kind == "integer" and data.dtype == np.uint64 and data.size and data.max() >= 2**63:
        raise InvalidInput(f"{where}: row {int(np.argmax(data >= 2**63))}: value out of range for INT64")
    return data.astype(DTYPES[column.kind])


def tensors_to_frame(tensors: dict[str, tuple[str, np.ndarray]], signature: ModelSignature) -> Any:
    """One V2 input per column, by name: {name: (datatype, data of shape [N] or [N, 1])} → the DataFrame."""
    columns = signature.columns
    assert columns is not None
    mismatch = name_mismatch([column.name for column in columns], tensors, "column inputs", "inputs")
    if mismatch is not None:
        raise InvalidInput(f"{mismatch}: this model takes one input per column ({', '.join(c.name for c in columns)})")
    arrays = []
    for column in columns:
        datatype, data = tensors[column.name]
        where = f"input {column.name!r}"
        if data.ndim == 2 and data.shape[1] == 1:
            data = data[:, 0]
        if data.ndim != 1:
            raise InvalidInput(f"{where}: a column input must have shape [N] or [N, 1], got {list(data.shape)}")
        arrays.append(tensor_column(column, datatype, data, where))
    lengths = {len(array) for array in arrays}
    if len(lengths) != 1:
        raise InvalidInput("column inputs must all have the same number of rows")
    (length,) = lengths
    if length == 0:
        raise InvalidInput("column inputs: expected at least one row")
    if length > MAX_ROWS:
        raise InvalidInput(f"column inputs: at most {MAX_ROWS} rows per request, got {length}")
    return new_frame(columns, arrays)


def stack_frames(frames: list[Any]) -> Any:
    """The micro-batcher's stacking of several requests' frames into one model call."""
    return pandas().concat(frames, ignore_index=True)
