"""Flatten a tree ensemble into walk.c's node table, and predict with it (the prototype of issue 15 item 3).

Supported: scikit-learn's RandomForest/ExtraTrees (classifier and regressor), GradientBoosting,
HistGradientBoosting (numeric splits), XGBoost (gbtree, numeric splits) and LightGBM (numeric splits).
Anything else raises Unsupported, and the caller keeps the library's own predict.

Each library's comparison is rewritten as walk.c's one `x <= t` on the library's own input type:
- scikit-learn trees: float32 rows against float64 thresholds: `x <= t` ⇔ `x <= t32`, t32 the largest float32
  not above t (as compiled_forest.py does);
- XGBoost: float32 rows, `x < t` with a float32 t ⇔ `x <= the float32 just below t`;
- LightGBM and histogram gradient boosting: float64 rows, `x <= t` as it is.
Outputs are the library's raw scores (sums in tree order, from each output's base value, in the library's
accumulator type); `predict_proba` applies the library's link.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SOURCE = Path(__file__).with_name("walk.c")
# What a wheel build would pass: no -ffast-math (sums must stay in order) and no FMA contraction.
CFLAGS = ["-O2", "-fPIC", "-shared", "-ffp-contract=off", "-fno-math-errno"]


class Unsupported(ValueError):
    """The model holds something the walk cannot reproduce (categorical splits, linear trees, ...)."""


@dataclass
class Tree:
    feature: np.ndarray  # (nodes,) split feature; anything for leaves
    threshold: np.ndarray  # (nodes,) float64, already rewritten for `x <= t` in the walk's input type
    left: np.ndarray  # (nodes,) child indexes, -1 for leaves
    right: np.ndarray
    missing: np.ndarray  # (nodes,) the child a NaN goes to
    values: np.ndarray  # (nodes, width) leaf values (rows of split nodes are ignored)
    group: int = 0  # first output this tree adds to


@dataclass
class Ensemble:
    trees: list[Tree]
    n_features: int
    base: np.ndarray  # (outputs,) each output's starting value
    x_type: type  # np.float32 or np.float64: the library's input type
    sum_type: type  # np.float32 or np.float64: the library's accumulator type
    divide: int = 1  # random forests average: the sum is divided by the number of trees


def float32_at_most(thresholds: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def children_or_self(left: np.ndarray, right: np.ndarray, missing: np.ndarray) -> tuple[np.ndarray, ...]:
    own = np.arange(len(left))
    leaf = left < 0
    return np.where(leaf, own, left), np.where(leaf, own, right), np.where(leaf, own, missing)


def depth_of(left: np.ndarray, right: np.ndarray) -> int:
    depth, level = 0, [0]
    while True:
        level = [child for node in level for child in (left[node], right[node]) if child >= 0]
        if not level:
            return depth
        depth += 1
        if depth >= len(left):  # deeper than it has nodes: a cycle
            raise Unsupported("a tree whose children form a cycle")


# --- scikit-learn -----------------------------------------------------------------------------------------


def sklearn_tree(tree: Any, values: np.ndarray, group: int = 0) -> Tree:
    leaf = tree.children_left < 0
    go_left = getattr(tree, "missing_go_to_left", np.zeros(tree.node_count, dtype=np.uint8)).astype(bool)
    missing = np.where(go_left, tree.children_left, tree.children_right)
    return Tree(
        feature=np.where(leaf, 0, tree.feature),
        threshold=np.where(leaf, 0.0, float32_at_most(tree.threshold)),
        left=tree.children_left,
        right=tree.children_right,
        missing=missing,
        values=values,
        group=group,
    )


def from_sklearn_forest(forest: Any) -> Ensemble:
    from sklearn.ensemble._forest import ForestClassifier

    if getattr(forest, "n_outputs_", 1) != 1:
        raise Unsupported("multi-output forest")
    classifier = isinstance(forest, ForestClassifier)
    width = int(forest.n_classes_) if classifier else 1
    trees = [sklearn_tree(member.tree_, member.tree_.value[:, 0, :width]) for member in forest.estimators_]
    return Ensemble(trees, forest.n_features_in_, np.zeros(width), np.float32, np.float64, divide=len(trees))


def from_sklearn_gradient_boosting(model: Any) -> Ensemble:
    # predict_stages: out[row, k] += learning_rate * value, stage by stage, from _raw_predict_init
    if not (isinstance(model.init_, str) or type(model.init_).__name__ in ("DummyClassifier", "DummyRegressor")):
        raise Unsupported("an init estimator whose prediction depends on the row")
    stages = model.estimators_
    base = model._raw_predict_init(np.zeros((1, model.n_features_in_), dtype=np.float32))[0]
    trees = [
        sklearn_tree(member.tree_, model.learning_rate * member.tree_.value[:, 0, :1], group=k)
        for stage in stages
        for k, member in enumerate(stage)
    ]
    return Ensemble(trees, model.n_features_in_, base.astype(np.float64), np.float32, np.float64)


def from_sklearn_hist_gradient_boosting(model: Any) -> Ensemble:
    if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
        raise Unsupported("categorical features")
    trees = []
    for stage in model._predictors:
        for k, predictor in enumerate(stage):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            left = np.where(leaf, -1, nodes["left"].astype(np.int64))
            right = np.where(leaf, -1, nodes["right"].astype(np.int64))
            go_left = nodes["missing_go_to_left"].astype(bool)
            trees.append(
                Tree(
                    feature=np.where(leaf, 0, nodes["feature_idx"]),
                    threshold=np.where(leaf, 0.0, nodes["num_threshold"]),
                    left=left,
                    right=right,
                    missing=np.where(go_left, left, right),
                    values=nodes["value"].astype(np.float64).reshape(-1, 1),
                    group=k,
                )
            )
    base = np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1)
    return Ensemble(trees, model.n_features_in_, base, np.float64, np.float64)


# --- XGBoost ----------------------------------------------------------------------------------------------


def from_xgboost(booster: Any) -> tuple[Ensemble, str]:
    """From the booster's JSON (save_raw: a UBJSON artifact reads the same), and the objective's name."""
    document = json.loads(booster.save_raw("json"))
    learner = document["learner"]
    model = learner["gradient_booster"]
    if model.get("name") != "gbtree":
        raise Unsupported(f"booster {model.get('name')}")
    model = model["model"]
    parameters = learner["learner_model_param"]
    n_groups = max(int(parameters.get("num_class", "0")), 1)
    trees = []
    for tree, group in zip(model["trees"], model["tree_info"], strict=True):
        if tree.get("categories_nodes"):
            raise Unsupported("categorical splits")
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise Unsupported("multi-target trees")
        left = np.asarray(tree["left_children"], dtype=np.int64)
        right = np.asarray(tree["right_children"], dtype=np.int64)
        leaf = left < 0
        conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
        below = np.nextafter(conditions, np.float32(-np.inf))  # x < t  ⇔  x <= the float32 below t
        default_left = np.asarray(tree["default_left"], dtype=bool)
        trees.append(
            Tree(
                feature=np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int64)),
                threshold=np.where(leaf, 0.0, below.astype(np.float64)),
                left=left,
                right=right,
                missing=np.where(default_left, left, right),
                values=conditions.astype(np.float64).reshape(-1, 1),  # a leaf's split_condition is its value
                group=int(group),
            )
        )
    base = base_margin(learner, n_groups)
    ensemble = Ensemble(trees, int(parameters["num_feature"]), base, np.float32, np.float32)
    return ensemble, learner["objective"]["name"]


# Regression objectives whose prediction is the margin itself (reg:gamma, reg:tweedie, count:poisson take exp)
XGBOOST_IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")


def base_margin(learner: dict, n_groups: int) -> np.ndarray:
    """The margin every row starts from: base_score (stored as a probability for logistic objectives),
    turned into a margin in float32 as XGBoost's ProbToMargin does."""
    text = learner["learner_model_param"]["base_score"].strip("[]")
    scores = np.array([float(part) for part in text.split(",")], dtype=np.float32)
    objective = learner["objective"]["name"]
    if objective in ("binary:logistic", "reg:logistic"):
        one = np.float32(1)
        scores = -np.log(one / scores - one)
    elif objective not in (*XGBOOST_IDENTITY, "multi:softprob"):
        raise Unsupported(f"objective {objective}")
    return np.broadcast_to(scores, (n_groups,)).astype(np.float64)


# --- LightGBM ---------------------------------------------------------------------------------------------


def from_lightgbm(text: str) -> tuple[Ensemble, list[str]]:
    """From LightGBM's own text format (the native artifact, or model_to_string): thresholds and leaf values are
    written with 17 significant digits there, so they parse back to the same doubles. Also the objective's words."""
    header, trees = lightgbm_sections(text)
    if "average_output" in header:
        raise Unsupported("LightGBM random forest mode (average_output)")
    n_groups = int(header["num_tree_per_iteration"])
    ensemble = [lightgbm_tree(tree, group=index % n_groups) for index, tree in enumerate(trees)]
    n_features = int(header["max_feature_idx"]) + 1
    return Ensemble(ensemble, n_features, np.zeros(n_groups), np.float64, np.float64), header["objective"].split()


def lightgbm_sections(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header's key=value lines and each `Tree=N` block's, up to the end of the trees."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    section = header
    for line in text.splitlines():
        if line.startswith("Tree="):
            section = {}
            trees.append(section)
        elif line == "end of trees":
            break
        elif "=" in line:
            key, value = line.split("=", 1)
            section[key] = value
    return header, trees


def lightgbm_tree(tree: dict[str, str], group: int) -> Tree:
    def numbers(key: str, dtype: type) -> np.ndarray:
        return np.array(tree[key].split(), dtype=dtype)

    if tree.get("is_linear", "0") != "0":
        raise Unsupported("LightGBM linear trees")
    leaves = numbers("leaf_value", np.float64)
    n_split = int(tree["num_leaves"]) - 1
    if n_split == 0:  # a single leaf
        minus = np.array([-1])
        return Tree(np.zeros(1, int), np.zeros(1), minus, minus, minus, leaves.reshape(1, 1), group)
    decision = numbers("decision_type", np.int64)
    if np.any(decision & 1):
        raise Unsupported("LightGBM categorical splits")
    missing_type = (decision >> 2) & 3  # 0: none (a NaN is walked as 0.0), 1: zero as missing, 2: NaN
    if np.any(missing_type == 1):
        raise Unsupported("LightGBM zero_as_missing")
    threshold = numbers("threshold", np.float64)

    def node(child: np.ndarray) -> np.ndarray:  # leaves come after the splits: leaf i is node n_split + i
        return np.where(child >= 0, child, n_split + ~child)

    left, right = node(numbers("left_child", np.int64)), node(numbers("right_child", np.int64))
    # a NaN goes to the default child (NaN missing type), or is walked as 0.0 (none): left when 0.0 <= threshold
    nan_left = np.where(missing_type == 2, (decision & 2) != 0, threshold >= 0.0)
    pad = np.full(len(leaves), -1)
    return Tree(
        feature=np.concatenate([numbers("split_feature", np.int64), np.zeros(len(leaves), int)]),
        threshold=np.concatenate([threshold, np.zeros(len(leaves))]),
        left=np.concatenate([left, pad]),
        right=np.concatenate([right, pad]),
        missing=np.concatenate([np.where(nan_left, left, right), pad]),
        values=np.concatenate([np.zeros(n_split), leaves]).reshape(-1, 1),
        group=group,
    )


# --- the table and the walk -------------------------------------------------------------------------------

NAN_LEFT = np.uint32(0x80000000)
NODE_TYPES = {
    np.float32: np.dtype([("feature", "<u4"), ("threshold", "<f4"), ("child", "<u4", 2)]),
    np.float64: np.dtype([("feature", "<u4"), ("child", "<u4", 2), ("unused", "<u4"), ("threshold", "<f8")]),
}
LEAF_ROW_TYPES = {np.float32: np.uint32, np.float64: np.uint64}


class ForestStruct(ctypes.Structure):  # walk.c's `forest`
    _fields_ = [(name, ctypes.c_void_p) for name in ("nodes", "values", "base", "roots", "depths", "groups")] + [
        (name, ctypes.c_int32) for name in ("trees", "width", "n_outputs", "n_features", "divide")
    ]


@dataclass(frozen=True)
class Table:
    nodes: np.ndarray  # (nodes,) NODE_TYPES[x_type]
    values: np.ndarray  # (leaves, width) sum_type
    base: np.ndarray  # (outputs,) sum_type
    roots: np.ndarray  # (trees,) int32
    depths: np.ndarray
    groups: np.ndarray
    n_features: int
    divide: int

    def struct(self) -> ForestStruct:
        arrays = [self.nodes, self.values, self.base, self.roots, self.depths, self.groups]
        counts = [len(self.roots), self.values.shape[1], len(self.base), self.n_features, self.divide]
        return ForestStruct(*[array.ctypes.data for array in arrays], *counts)


def build_table(ensemble: Ensemble) -> Table:
    counts = [len(tree.left) for tree in ensemble.trees]
    firsts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if firsts[-1] >= np.iinfo(np.int32).max:
        raise Unsupported("too many nodes for a 32-bit table")
    widths = {tree.values.shape[1] for tree in ensemble.trees}
    if len(widths) != 1:
        raise Unsupported("trees of different output widths")
    nodes = np.zeros(firsts[-1], dtype=NODE_TYPES[ensemble.x_type])
    values, leaf_count = [], 0
    for tree, first in zip(ensemble.trees, firsts[:-1], strict=True):
        table = nodes[first : first + len(tree.left)]
        leaf = tree.left < 0
        left, right, missing = children_or_self(tree.left, tree.right, tree.missing)
        if any(np.any((child < 0) | (child >= len(left))) for child in (left, right, missing)):
            raise Unsupported("a child outside its tree")  # a hostile or broken model: the walk would read past it
        nan_left = np.where(~leaf & (missing == left), NAN_LEFT, np.uint32(0))
        table["feature"] = tree.feature.astype(np.uint32) | nan_left
        table["threshold"] = tree.threshold
        table["child"][:, 0] = left + first
        table["child"][:, 1] = right + first
        thresholds = table["threshold"]  # a view: the leaves' thresholds become their rows in `values`
        thresholds.view(LEAF_ROW_TYPES[ensemble.x_type])[leaf] = leaf_count + np.arange(int(leaf.sum()))
        leaf_count += int(leaf.sum())
        values.append(tree.values[leaf])
    if int((nodes["feature"] & ~NAN_LEFT).max(initial=0)) >= ensemble.n_features:
        raise Unsupported("a split on a feature beyond the model's inputs")
    return Table(
        nodes=nodes,
        values=np.ascontiguousarray(np.concatenate(values), dtype=ensemble.sum_type),
        base=ensemble.base.astype(ensemble.sum_type),
        roots=firsts[:-1].astype(np.int32),
        depths=np.array([depth_of(tree.left, tree.right) for tree in ensemble.trees], dtype=np.int32),
        groups=np.array([tree.group for tree in ensemble.trees], dtype=np.int32),
        n_features=ensemble.n_features,
        divide=ensemble.divide,
    )


KERNELS = {(np.float32, np.float64): "walk_f32_f64", (np.float32, np.float32): "walk_f32_f32"}
KERNELS[(np.float64, np.float64)] = "walk_f64_f64"


def compiled_library() -> Path:
    """walk.c built with the machine's C compiler, once per source and flags (a wheel would ship it)."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlmodel-operator" / "treewalk"
    path = cache / f"libtreewalk-{key}.so"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        subprocess.run(["cc", *CFLAGS, "-o", str(partial), str(SOURCE)], check=True)
        partial.rename(path)
    return path


def raw_predictor(table: Table, library: Path | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Rows (any float dtype, finite or NaN) → (rows, outputs) raw scores in the library's sum type."""
    x_type, sum_type = table.nodes.dtype["threshold"].type, table.values.dtype.type
    walk = getattr(ctypes.CDLL(str(library or compiled_library())), KERNELS[(x_type, sum_type)])
    walk.restype = ctypes.c_int
    walk.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    struct = table.struct()  # holds pointers into `table`, which the closure keeps alive
    forest_pointer = ctypes.addressof(struct)
    n_features, n_outputs = table.n_features, len(table.base)

    def predict(X: np.ndarray) -> np.ndarray:
        if X.dtype != x_type or not X.flags.c_contiguous:
            X = np.ascontiguousarray(X, dtype=x_type)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"expected rows of {n_features} features")
        out = np.empty((X.shape[0], n_outputs), dtype=sum_type)
        if walk(forest_pointer, X.ctypes.data, X.shape[0], out.ctypes.data) != 0:
            raise MemoryError("walk.c: no memory for the rows' walk")
        return out

    predict.keep = (table, struct)  # type: ignore[attr-defined]
    return predict


# --- the model: raw scores, then the library's own link ---------------------------------------------------


@dataclass(frozen=True)
class Compiled:
    kind: str  # which library model this reproduces, e.g. "xgboost-binary"
    raw: Callable[[np.ndarray], np.ndarray]  # rows → (rows, outputs) raw scores
    output: Callable[[np.ndarray], np.ndarray]  # raw scores → what `reference` returns
    reference: Callable[[np.ndarray], np.ndarray]  # the library's own predict_proba (or predict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.output(self.raw(X))


def link(name: str, *args: Any) -> Callable[[np.ndarray], np.ndarray]:
    """walk.c's sigmoid/softmax, in place on a C-ordered copy."""
    function = getattr(ctypes.CDLL(str(compiled_library())), name)
    function.restype = None

    def apply(scores: np.ndarray) -> np.ndarray:
        scores = np.array(scores, order="C")
        if name.startswith("softmax"):
            function(
                ctypes.c_void_p(scores.ctypes.data), ctypes.c_int64(scores.shape[0]), ctypes.c_int32(scores.shape[1])
            )
        else:
            function(ctypes.c_void_p(scores.ctypes.data), ctypes.c_int64(scores.size), *map(ctypes.c_double, args))
        return scores

    return apply


def two_columns(positive: np.ndarray) -> np.ndarray:
    positive = positive.reshape(-1)
    return np.vstack((1.0 - positive, positive)).transpose()  # what the XGBoost and LightGBM wrappers do


def compile_model(model: Any) -> Compiled:
    """The compiled walk for a fitted model (raises Unsupported for anything it cannot reproduce)."""
    module, name = type(model).__module__, type(model).__name__
    if module.startswith("xgboost"):
        return compile_xgboost(model)
    if module.startswith("lightgbm"):
        return compile_lightgbm(model)
    if not module.startswith("sklearn"):
        raise Unsupported(name)
    from sklearn import ensemble

    if isinstance(model, ensemble.RandomForestClassifier | ensemble.ExtraTreesClassifier):
        return Compiled(name, raw_predictor(build_table(from_sklearn_forest(model))), lambda s: s, model.predict_proba)
    if isinstance(model, ensemble.RandomForestRegressor | ensemble.ExtraTreesRegressor):
        return Compiled(name, raw_predictor(build_table(from_sklearn_forest(model))), lambda s: s[:, 0], model.predict)
    if isinstance(model, ensemble.GradientBoostingClassifier):
        binary = len(model.classes_) == 2
        raw = raw_predictor(build_table(from_sklearn_gradient_boosting(model)))
        output = (lambda s: model._loss.predict_proba(s[:, 0])) if binary else model._loss.predict_proba
        return Compiled(name, raw, output, model.predict_proba)
    if isinstance(model, ensemble.HistGradientBoostingClassifier):
        raw = raw_predictor(build_table(from_sklearn_hist_gradient_boosting(model)))
        return Compiled(name, raw, model._loss.predict_proba, model.predict_proba)
    if isinstance(model, ensemble.GradientBoostingRegressor):
        raw = raw_predictor(build_table(from_sklearn_gradient_boosting(model)))
        return Compiled(name, raw, lambda s: s[:, 0], model.predict)
    if isinstance(model, ensemble.HistGradientBoostingRegressor):
        raw = raw_predictor(build_table(from_sklearn_hist_gradient_boosting(model)))
        return Compiled(name, raw, lambda s: model._loss.link.inverse(s[:, 0]), model.predict)
    raise Unsupported(name)


def compile_xgboost(model: Any) -> Compiled:
    import xgboost

    booster = model.get_booster() if hasattr(model, "get_booster") else model
    ensemble, objective = from_xgboost(booster)
    raw = raw_predictor(build_table(ensemble))
    if isinstance(model, xgboost.Booster):

        def reference(X):
            return booster.inplace_predict(X)
    else:
        reference = model.predict_proba if hasattr(model, "predict_proba") else model.predict
    if objective == "binary:logistic":
        sigmoid = link("sigmoid_f32")
        wrapped = not isinstance(model, xgboost.Booster)
        return Compiled(
            "xgboost-binary", raw, lambda s: two_columns(sigmoid(s)) if wrapped else sigmoid(s)[:, 0], reference
        )
    if objective == "multi:softprob":
        return Compiled("xgboost-multiclass", raw, link("softmax_f32"), reference)
    if objective in XGBOOST_IDENTITY:
        return Compiled("xgboost-regression", raw, lambda s: s[:, 0], reference)
    raise Unsupported(f"XGBoost objective {objective}")


def compile_lightgbm(model: Any) -> Compiled:
    import lightgbm

    booster = model.booster_ if hasattr(model, "booster_") else model
    ensemble, objective = from_lightgbm(booster.model_to_string())
    raw = raw_predictor(build_table(ensemble))
    wrapped = not isinstance(model, lightgbm.Booster)
    reference = model.predict_proba if wrapped and hasattr(model, "predict_proba") else model.predict
    if objective[0] == "binary":
        scale = float(dict(part.split(":") for part in objective[1:]).get("sigmoid", 1.0))
        sigmoid = link("sigmoid_f64", scale)
        return Compiled(
            "lightgbm-binary", raw, lambda s: two_columns(sigmoid(s)) if wrapped else sigmoid(s)[:, 0], reference
        )
    if objective[0] == "multiclass":
        return Compiled("lightgbm-multiclass", raw, link("softmax_f64"), reference)
    if objective[0] in ("regression", "regression_l1", "huber", "fair", "quantile"):
        return Compiled("lightgbm-regression", raw, lambda s: s[:, 0], reference)
    raise Unsupported(f"LightGBM objective {objective[0]}")


def verified(compiled: Compiled, probes: np.ndarray) -> bool:
    """True when the walk's outputs equal the library's own on the probe rows, bit for bit."""
    ours, theirs = compiled.predict(probes), np.asarray(compiled.reference(probes))
    return ours.shape == theirs.shape and ours.dtype == theirs.dtype and np.array_equal(ours, theirs, equal_nan=True)
