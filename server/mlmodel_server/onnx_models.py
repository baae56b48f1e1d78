"""ONNX models through onnxruntime, with the surface the predictor reads from a scikit-learn estimator.

What is served is described from the graph: one 2-D numeric tensor input ([batch, features]; its element type is
what rows are cast to) or one input per column ([batch, 1] or [batch]: skl2onnx's conversion of a DataFrame
pipeline; strings, booleans, integers and floats, served as the typed columns of frames.py), and either one output (a regressor: its values) or a label output followed by a
probability output (a classifier: a [batch, classes] tensor, or the sequence of {class: probability} maps that
scikit-learn converters write with ZipMap). The class labels come from the graph's classifier node
(`classlabels_strings` / `classlabels_int64s` of the ai.onnx.ml operators), read straight from the protobuf
wire format (no onnx package needed); a graph without one has classes 0..k-1.

The model is handed to onnxruntime as bytes: an ONNX file is data (operators of the standard domains, no
Python), and bytes cannot reach external-data files next to it, so no other file is read.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlmodel_server.signature import Column, ColumnKind

_ELEMENT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
# A graph with one input per column (skl2onnx's conversion of a ColumnTransformer pipeline): each [batch, 1] or
# [batch], of these types, and the column kind each is served as.
_COLUMN_TYPES: dict[str, tuple[Any, ColumnKind]] = {
    "tensor(string)": (object, "string"),
    "tensor(bool)": (np.bool_, "boolean"),
    "tensor(int64)": (np.int64, "integer"),
    "tensor(int32)": (np.int32, "integer"),
    "tensor(float)": (np.float32, "number"),
    "tensor(double)": (np.float64, "number"),
}
_LABEL_ATTRIBUTES = {b"classlabels_strings": "strings", b"classlabels_int64s": "ints"}
_CLASSIFIER_OPS = frozenset({b"TreeEnsembleClassifier", b"LinearClassifier", b"SVMClassifier", b"ZipMap"})


class UnservableGraph(ValueError):
    """The graph's inputs or outputs are not ones the server can map to rows and predictions."""


def varint(data: bytes | memoryview, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, position
        shift += 7


def fields(data: bytes | memoryview) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) of one protobuf message: ints for varints, slices of `data` for the rest."""
    position = 0
    while position < len(data):
        key, position = varint(data, position)
        number, wire_type = key >> 3, key & 7
        value: int | bytes | memoryview
        if wire_type == 0:
            value, position = varint(data, position)
        elif wire_type == 1:
            value, position = data[position : position + 8], position + 8
        elif wire_type == 2:
            length, position = varint(data, position)
            value, position = data[position : position + length], position + length
        elif wire_type == 5:
            value, position = data[position : position + 4], position + 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
        yield number, wire_type, value


def signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def attribute_labels(attribute: bytes) -> list[Any] | None:
    """AttributeProto: name = 1, ints = 8, strings = 9."""
    name, ints, strings = b"", [], []
    for number, wire_type, value in fields(attribute):
        if number == 1:
            name = value
        elif number == 8 and wire_type == 0:
            ints.append(signed(value))
        elif number == 8 and wire_type == 2:  # packed
            position = 0
            while position < len(value):
                item, position = varint(value, position)
                ints.append(signed(item))
        elif number == 9:
            strings.append(value.decode("utf-8", errors="replace"))
    kind = _LABEL_ATTRIBUTES.get(name)
    if kind == "strings" and strings:
        return strings
    if kind == "ints" and ints:
        return ints
    return None


def graph_class_labels(model: bytes) -> list[Any] | None:
    """The labels of the last classifier node of the main graph (ModelProto.graph = 7, GraphProto.node = 1,
    NodeProto: op_type = 4, attribute = 5), or None."""
    found = None
    try:
        for number, _, graph in fields(model):
            if number != 7:
                continue
            for node_number, _, node in fields(graph):
                if node_number != 1:
                    continue
                node_fields = list(fields(node))
                if not any(n == 4 and v in _CLASSIFIER_OPS for n, _, v in node_fields):
                    continue
                for attribute_number, _, attribute in node_fields:
                    labels = attribute_labels(attribute) if attribute_number == 5 else None
                    if labels is not None:
                        found = labels
    except ValueError:
        return None  # onnxruntime read the model; a part this reader does not follow just means no labels
    return found


class OnnxModel:
    """predict is the graph's first output; a classifier's predict_proba its second, as a [rows, classes] matrix."""

    def __init__(self, session: Any, model: bytes):
        self.session = session
        inputs = session.get_inputs()
        # per column: (name, numpy type, the shape of one column's feed); None for one [batch, features] input
        self.column_feeds: list[tuple[str, Any, tuple[int, ...]]] | None = None
        if len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].type in _ELEMENT_TYPES:
            self.input_name = inputs[0].name
            self.input_type = _ELEMENT_TYPES[inputs[0].type]
            width = inputs[0].shape[1]
            if isinstance(width, int) and width > 0:
                self.n_features_in_ = width
        elif all(is_column_input(i) for i in inputs):
            self.column_feeds = [
                (i.name, _COLUMN_TYPES[i.type][0], (-1, 1) if len(i.shape) == 2 else (-1,)) for i in inputs
            ]
            # read by signature.signature_of: the columns in the graph's order, of the kinds their types are
            self.input_columns_ = tuple(Column(i.name, _COLUMN_TYPES[i.type][1]) for i in inputs)
            self.feature_names_in_ = np.array([i.name for i in inputs], dtype=object)
            self.n_features_in_ = len(inputs)
            # a refused input is answered as a 400 with onnxruntime's message; its own log line would only repeat it
            self.quiet_run = onnxruntime_module().RunOptions()
            self.quiet_run.log_severity_level = 4
        else:
            described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
            raise UnservableGraph(
                f"the graph has inputs {described}; served are graphs with one 2-D numeric tensor input "
                f"({', '.join(_ELEMENT_TYPES)}) of shape [batch, features], or one input per column "
                f"({', '.join(_COLUMN_TYPES)}) of shape [batch, 1] or [batch]"
            )
        outputs = session.get_outputs()
        self.output_names = [output.name for output in outputs[:2]]
        if len(outputs) >= 2 and is_probability(outputs[1]):
            self.classes_ = self.read_classes(model)
            self.predict_proba = self._predict_proba  # only classifiers have one (the signature checks for it)
            self.predict_both = self._predict_both  # labels and probabilities from one run of the graph
        elif len(outputs) != 1:
            described = ", ".join(f"{o.name} {o.type}" for o in outputs)
            raise UnservableGraph(
                f"the graph has outputs {described}; served are one output (a regressor) or a label output "
                "followed by a probability output (a classifier)"
            )

    def read_classes(self, model: bytes) -> np.ndarray:
        labels = graph_class_labels(model)
        if self.column_feeds is not None and labels is not None:
            return np.asarray(labels)  # a probe row of columns may hold a category the graph refuses
        if self.column_feeds is None:
            probe: Any = np.zeros((1, getattr(self, "n_features_in_", 1)))
        else:
            probe = {name: np.array(["" if kind is object else 0], dtype=kind) for name, kind, _ in self.column_feeds}
        probabilities = self._predict_proba(probe)
        if labels is None or len(labels) != probabilities.shape[1]:
            labels = list(range(probabilities.shape[1]))
        return np.asarray(labels)

    def feeds(self, X: Any) -> dict[str, np.ndarray]:
        """The graph's inputs from a float matrix or, for a graph with one input per column, from a DataFrame
        (or mapping) of the columns, or a matrix of numeric columns in the graph's order."""
        if self.column_feeds is None:
            return {self.input_name: np.ascontiguousarray(X, dtype=self.input_type)}
        if isinstance(X, np.ndarray):
            return {
                name: np.ascontiguousarray(X[:, index], dtype=kind).reshape(shape)
                for index, (name, kind, shape) in enumerate(self.column_feeds)
            }
        return {name: np.asarray(X[name], dtype=kind).reshape(shape) for name, kind, shape in self.column_feeds}

    def run(self, X: Any, names: list[str]) -> list[Any]:
        if self.column_feeds is None:
            return self.session.run(names, self.feeds(X))
        try:
            return self.session.run(names, self.feeds(X), self.quiet_run)
        except Exception as error:  # onnxruntime's own types; a category its encoder refuses, for one
            from mlmodel_server.native_models import library_message

            raise ValueError(library_message(error)) from None  # the predictor answers it as the input's fault

    def predict(self, X: np.ndarray) -> np.ndarray:
        (values,) = self.run(X, self.output_names[:1])
        return as_predictions(values)

    def _predict_proba(self, X: np.ndarray) -> np.ndarray:
        (probabilities,) = self.run(X, self.output_names[1:2])
        return as_probabilities(probabilities, row_count(X))

    def _predict_both(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values, probabilities = self.run(X, self.output_names[:2])
        return as_predictions(values), as_probabilities(probabilities, row_count(X))


def as_predictions(values: Any) -> np.ndarray:
    values = np.asarray(values)
    return values[:, 0] if values.ndim == 2 and values.shape[1] == 1 else values


def as_probabilities(probabilities: Any, rows: int) -> np.ndarray:
    if isinstance(probabilities, list):  # ZipMap: one {class: probability} per row, in the classes' order
        return np.array([list(row.values()) for row in probabilities], dtype=np.float32).reshape(rows, -1)
    return np.asarray(probabilities)


def onnxruntime_module() -> Any:
    import onnxruntime

    return onnxruntime


def row_count(X: Any) -> int:
    return len(next(iter(X.values()))) if isinstance(X, dict) else len(X)


def is_column_input(tensor: Any) -> bool:
    shape = tensor.shape
    return tensor.type in _COLUMN_TYPES and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))


def is_probability(output: Any) -> bool:
    if output.type.startswith("seq(map("):
        return True
    return output.type in ("tensor(float)", "tensor(double)") and len(output.shape) == 2


def load_onnx(path: Path) -> OnnxModel:
    import onnxruntime

    from mlmodel_server.native_models import LibraryRefused, library_message

    model = path.read_bytes()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # one native thread per call: see predictor.serve_single_threaded
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only; the load failure carries the message
    try:
        session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
        return OnnxModel(session, model)
    except UnservableGraph as error:
        raise LibraryRefused(f"{path.name}: {error}") from None
    except Exception as error:  # onnxruntime raises its own exception types for unreadable or invalid graphs
        raise LibraryRefused(f"onnxruntime cannot read {path.name}: {library_message(error)}") from None
