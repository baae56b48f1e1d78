"""The compiled tree walk: a tree ensemble flattened into one node table and walked by _treewalk.c.

Supported: scikit-learn's RandomForest/ExtraTrees (classifier and regressor), GradientBoosting and
HistGradientBoosting (numeric splits), XGBoost (gbtree, numeric splits) and LightGBM (numeric splits), as the
libraries' scikit-learn wrappers or as native model files (native_models.py). Anything else raises Unsupported,
and kernels.py keeps the next kernel or the library's own predict. The walk is used only after it reproduced
the library's own outputs on probe rows (kernels.same_outputs), bit for bit: every family here is reproduced
exactly, so no tolerance is allowed (docs/design/compiled-tree-walk.md, tables 1-3).

Each library's comparison is rewritten as the walk's one `x <= t` on the library's own input type:
- scikit-learn trees: float32 rows against float64 thresholds: `x <= t` ⇔ `x <= t32`, t32 the largest float32
  not above t;
- XGBoost: float32 rows, `x < t` with a float32 t ⇔ `x <= the float32 just below t`;
- LightGBM and histogram gradient boosting: float64 rows, `x <= t` as it is.
The walk returns the library's raw scores (sums in tree order, from each output's base value, in the library's
accumulator type: double, or float for XGBoost); the links are the library's own (scikit-learn's `_loss`) or
the C library's exp, as XGBoost and LightGBM use (numpy's exp differs in the last bit on some rows).

Private scikit-learn attributes read here (`_raw_predict_init`, `_loss`, `_predictors`, `_baseline_prediction`,
`tree_.missing_go_to_left`): a release that changes them fails the verification at load, and the model is
served by the library, slower.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

# The extension module's name: a plain shared library (no Python module inside), loaded with ctypes.
EXTENSION = "mlmodel_server._treewalk"


class Unsupported(ValueError):
    """The model holds something the walk cannot reproduce (categorical splits, linear trees, ...)."""


@cache
def library() -> ctypes.CDLL:
    """_treewalk.c as the wheel ships it; OSError when this install has none (a pure-Python install)."""
    spec = importlib.util.find_spec(EXTENSION)
    if spec is None or spec.origin is None:
        raise OSError(f"{EXTENSION} is not installed (the wheel was built without a C compiler?)")
    return ctypes.CDLL(spec.origin)


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
    zero_at_most: float | None = None  # inputs this close to zero are walked as 0.0 (LightGBM's kZeroThreshold)


def float32_at_most(thresholds: np.ndarray) -> np.ndarray:
    """The largest float32 not above each threshold, as float64."""
    with np.errstate(over="ignore"):
        rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)


def depth_of(left: np.ndarray, right: np.ndarray) -> int:
    depth, level = 0, np.array([0])
    while True:
        level = np.concatenate([left[level], right[level]])
        level = level[level >= 0]
        if not len(level):
            return depth
        depth += 1
        if depth >= len(left):  # deeper than it has nodes: a cycle
            raise Unsupported("a tree whose children form a cycle")


# --- scikit-learn -----------------------------------------------------------------------------------------------


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


def from_sklearn_forest(forest: Any, classifier: bool) -> Ensemble:
    if getattr(forest, "n_outputs_", 1) != 1:
        raise Unsupported("a multi-output forest")
    width = int(forest.n_classes_) if classifier else 1
    trees = [sklearn_tree(member.tree_, member.tree_.value[:, 0, :width]) for member in forest.estimators_]
    return Ensemble(trees, forest.n_features_in_, np.zeros(width), np.float32, np.float64, divide=len(trees))


def from_sklearn_gradient_boosting(model: Any) -> Ensemble:
    # predict_stages: out[row, k] += learning_rate * value, stage by stage, from _raw_predict_init
    if not (isinstance(model.init_, str) or type(model.init_).__name__ in ("DummyClassifier", "DummyRegressor")):
        raise Unsupported("an init estimator whose prediction depends on the row")
    base = model._raw_predict_init(np.zeros((1, model.n_features_in_), dtype=np.float32))[0]
    trees = [
        sklearn_tree(member.tree_, model.learning_rate * member.tree_.value[:, 0, :1], group=k)
        for stage in model.estimators_
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


# --- XGBoost ----------------------------------------------------------------------------------------------------

# Regression objectives whose prediction is the margin itself (reg:gamma, reg:tweedie, count:poisson take exp)
XGBOOST_IDENTITY = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror")


def from_xgboost(booster: Any, iterations: int | None) -> tuple[Ensemble, str]:
    """From the booster's JSON (a UBJSON artifact reads the same) and the first `iterations` boosting rounds (all
    when None); also the objective's name."""
    document = json.loads(booster.save_raw("json"))
    learner = document["learner"]
    model = learner["gradient_booster"]
    if model.get("name") != "gbtree":
        raise Unsupported(f"XGBoost booster {model.get('name')}")
    model = model["model"]
    parameters = learner["learner_model_param"]
    n_groups = max(int(parameters.get("num_class", "0")), 1)
    records = list(zip(model["trees"], model["tree_info"], strict=True))
    if iterations is not None:
        rounds = booster.num_boosted_rounds()
        if rounds <= 0 or len(records) % rounds:
            raise Unsupported("XGBoost trees that do not divide into boosting rounds")
        records = records[: iterations * (len(records) // rounds)]
    trees = []
    for tree, group in records:
        if tree.get("categories_nodes"):
            raise Unsupported("XGBoost categorical splits")
        if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
            raise Unsupported("XGBoost multi-target trees")
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
    objective = learner["objective"]["name"]
    base = xgboost_base_margin(parameters["base_score"], objective, n_groups)
    return Ensemble(trees, int(parameters["num_feature"]), base, np.float32, np.float32), objective


def xgboost_base_margin(base_score: str, objective: str, n_groups: int) -> np.ndarray:
    """The margin every row starts from: base_score (stored as a probability for logistic objectives), turned into
    a margin in float32 with the C library's logf, as XGBoost's ProbToMargin does (numpy's float32 log differs in
    the last bit for some scores)."""
    scores = np.array([float(part) for part in base_score.strip("[]").split(",")], dtype=np.float32)
    if objective == "binary:logistic":
        logit = library().logit_f32
        logit.restype, logit.argtypes = ctypes.c_float, [ctypes.c_float]
        scores = np.array([logit(float(score)) for score in scores], dtype=np.float32)
    elif objective not in (*XGBOOST_IDENTITY, "multi:softprob"):
        raise Unsupported(f"XGBoost objective {objective}")
    return np.broadcast_to(scores, (n_groups,)).astype(np.float64)


# --- LightGBM ---------------------------------------------------------------------------------------------------


# LightGBM reads a dense row as its values with |x| > kZeroThreshold (1e-35f) or NaN: anything closer to zero is 0.0
LIGHTGBM_ZERO = float(np.float32(1e-35))


def from_lightgbm(text: str) -> tuple[Ensemble, list[str]]:
    """From LightGBM's own text format (model_to_string, which keeps the trees up to the best iteration as the
    booster's predict does): thresholds and leaf values are written with 17 significant digits, so they parse back
    to the same doubles. Also the objective's words."""
    header, sections = lightgbm_sections(text)
    if "average_output" in header:
        raise Unsupported("LightGBM random forest mode (average_output)")
    n_groups = int(header["num_tree_per_iteration"])
    trees = [lightgbm_tree(tree, group=index % n_groups) for index, tree in enumerate(sections)]
    n_features = int(header["max_feature_idx"]) + 1
    ensemble = Ensemble(trees, n_features, np.zeros(n_groups), np.float64, np.float64, zero_at_most=LIGHTGBM_ZERO)
    return ensemble, header["objective"].split()


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


# --- the table and the walk -------------------------------------------------------------------------------------

NODE_TYPES: dict[Any, np.dtype] = {  # _treewalk.c's node_f32 and node_f64
    np.float32: np.dtype([("feature", "<u4"), ("threshold", "<f4"), ("left", "<u4"), ("aux", "<u4")]),
    np.float64: np.dtype(
        [("feature", "<u4"), ("left", "<u4"), ("aux", "<u4"), ("unused", "<u4"), ("threshold", "<f8")]
    ),
}
WALKS: dict[tuple[Any, Any], str] = {
    (np.float32, np.float64): "walk_f32_f64",
    (np.float32, np.float32): "walk_f32_f32",
    (np.float64, np.float64): "walk_f64_f64",
}


class ForestStruct(ctypes.Structure):  # _treewalk.c's `forest`
    _fields_ = (
        [(name, ctypes.c_void_p) for name in ("nodes", "values", "base", "roots", "depths", "groups")]
        + [(name, ctypes.c_int32) for name in ("trees", "width", "n_outputs", "n_features", "divide")]
        + [("zero_at_most", ctypes.c_double)]
    )


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
    zero_at_most: float  # inputs this close to zero are walked as 0.0 (by the walk); negative: none

    def struct(self) -> ForestStruct:
        arrays = [self.nodes, self.values, self.base, self.roots, self.depths, self.groups]
        counts = [len(self.roots), self.values.shape[1], len(self.base), self.n_features, self.divide]
        return ForestStruct(*[array.ctypes.data for array in arrays], *counts, self.zero_at_most)


def breadth_first(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The tree's nodes in breadth-first order, each split's two children side by side (the walk's right child is
    the node after the left one); refuses a node reached twice (a cycle, or two parents)."""
    levels, level, seen = [], np.array([0]), 0
    while len(level):
        levels.append(level)
        seen += len(level)
        if seen > len(left):
            raise Unsupported("a tree whose children form a cycle or share a node")
        split = level[left[level] >= 0]
        level = np.stack([left[split], right[split]], axis=1).ravel()
    order = np.concatenate(levels)
    if len(np.unique(order)) != len(order):
        raise Unsupported("a tree whose children form a cycle or share a node")
    return order


def build_table(ensemble: Ensemble) -> Table:
    """The node table (_treewalk.c's layout: each tree breadth first, a leaf its own left child with a threshold of
    +inf); refuses what would make the walk read out of bounds or loop (a broken or hostile model)."""
    if not ensemble.trees:
        raise Unsupported("no trees")
    if ensemble.n_features < 1:  # a leaf reads feature 0 (and stays where it is)
        raise Unsupported("a model without features")
    widths = {tree.values.shape[1] for tree in ensemble.trees}
    if len(widths) != 1:
        raise Unsupported("trees of different output widths")
    (width,) = widths
    if any(tree.group < 0 or tree.group + width > len(ensemble.base) for tree in ensemble.trees):
        raise Unsupported("a tree adding to an output the model does not have")
    tables, values, first, leaf_count = [], [], 0, 0
    for tree in ensemble.trees:
        count = len(tree.left)
        split = tree.left >= 0
        children = (tree.left[split], tree.right[split], tree.missing[split])
        if any(np.any((child < 0) | (child >= count)) for child in children):
            raise Unsupported("a child outside its tree")
        if np.any((children[2] != children[0]) & (children[2] != children[1])):
            raise Unsupported("a missing value sent to neither child")
        order = breadth_first(tree.left, tree.right)
        if first + len(order) >= np.iinfo(np.int32).max:
            raise Unsupported("too many nodes for a 32-bit table")
        position = np.zeros(count, dtype=np.int64)
        position[order] = first + np.arange(len(order))
        left, missing = tree.left[order], tree.missing[order]
        leaf = left < 0
        table = np.zeros(len(order), dtype=NODE_TYPES[ensemble.x_type])
        table["feature"] = np.where(leaf, 0, tree.feature[order])
        table["threshold"] = np.where(leaf, np.inf, tree.threshold[order])
        table["left"] = np.where(leaf, position[order], position[np.maximum(left, 0)])
        rows = leaf_count + np.arange(int(leaf.sum()), dtype=np.int64)
        aux = (missing == left).astype(np.int64)
        aux[leaf] = rows << 1 | 1
        table["aux"] = aux
        tables.append(table)
        values.append(tree.values[order][leaf])
        first += len(order)
        leaf_count += len(rows)
    nodes = np.concatenate(tables)
    if int(nodes["feature"].max(initial=0)) >= ensemble.n_features:
        raise Unsupported("a split on a feature beyond the model's inputs")
    counts = [len(table) for table in tables]
    return Table(
        nodes=nodes,
        values=np.ascontiguousarray(np.concatenate(values), dtype=ensemble.sum_type),
        base=ensemble.base.astype(ensemble.sum_type),
        roots=np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32),
        depths=np.array([depth_of(tree.left, tree.right) for tree in ensemble.trees], dtype=np.int32),
        groups=np.array([tree.group for tree in ensemble.trees], dtype=np.int32),
        n_features=ensemble.n_features,
        divide=ensemble.divide,
        zero_at_most=-1.0 if ensemble.zero_at_most is None else ensemble.zero_at_most,
    )


def raw_predictor(ensemble: Ensemble) -> Callable[[np.ndarray], np.ndarray]:
    """Dense rows of n_features (any float dtype) → (rows, outputs) raw scores in the library's sum type."""
    table = build_table(ensemble)
    x_type, sum_type = ensemble.x_type, ensemble.sum_type
    walk = getattr(library(), WALKS[(x_type, sum_type)])
    walk.restype = ctypes.c_int
    walk.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    struct = table.struct()  # holds pointers into `table`, which the closure keeps alive
    forest_pointer = ctypes.addressof(struct)
    n_features, n_outputs = table.n_features, len(table.base)

    def predict(X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=x_type)
        if X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"expected rows of {n_features} features, got shape {X.shape}")
        out: np.ndarray = np.empty((X.shape[0], n_outputs), dtype=sum_type)
        if walk(forest_pointer, X.ctypes.data, X.shape[0], out.ctypes.data) != 0:
            raise MemoryError("the tree walk found no memory for the rows")
        return out

    predict.keep = (table, struct)  # type: ignore[attr-defined]
    return predict


def c_softmax(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """_treewalk.c's softmax (the C library's exp, as XGBoost and LightGBM use), on a C-ordered copy."""
    function = getattr(library(), name)
    function.restype = None
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32]

    def apply(scores: np.ndarray) -> np.ndarray:
        scores = np.array(scores, order="C")
        function(scores.ctypes.data, scores.shape[0], scores.shape[1])
        return scores

    return apply


def c_sigmoid(name: str, *scale: float) -> Callable[[np.ndarray], np.ndarray]:
    """_treewalk.c's sigmoid: one column of margins → the two columns (1 - p, p) that the XGBoost and LightGBM
    wrappers' predict_proba return."""
    function = getattr(library(), name)
    function.restype = None
    function.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p] + [ctypes.c_double] * len(scale)

    def apply(scores: np.ndarray) -> np.ndarray:
        scores = np.ascontiguousarray(scores)
        out = np.empty((scores.size, 2), dtype=scores.dtype)
        function(scores.ctypes.data, scores.size, out.ctypes.data, *scale)
        return out

    return apply


# --- the model: raw scores, then the library's own link and labels ----------------------------------------------


@dataclass(frozen=True)
class Walk:
    """What the walk reproduces of one fitted model. `proba` and `labels` work from the raw scores, as the library
    does, so one walk serves predict, predict_proba and both."""

    kind: str  # the model family, e.g. "xgboost-classifier"; the fast kernel's label is kind + "-compiled"
    raw: Callable[[np.ndarray], np.ndarray]  # dense rows → (rows, outputs) raw scores
    proba: Callable[[np.ndarray], np.ndarray] | None  # raw scores → predict_proba (classifiers)
    labels: Callable[[np.ndarray, np.ndarray | None], np.ndarray]  # (raw scores, probabilities) → predict
    n_features: int
    # every split's feature and threshold as the walk compares it: where probe rows must sit
    split_features: np.ndarray
    split_thresholds: np.ndarray


def walk(
    kind: str,
    ensemble: Ensemble,
    proba: Callable[[np.ndarray], np.ndarray] | None,
    labels: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
) -> Walk:
    splits = [tree.left >= 0 for tree in ensemble.trees]
    features = np.concatenate([tree.feature[split] for tree, split in zip(ensemble.trees, splits, strict=True)])
    thresholds = np.concatenate([tree.threshold[split] for tree, split in zip(ensemble.trees, splits, strict=True)])
    return Walk(kind, raw_predictor(ensemble), proba, labels, ensemble.n_features, features, thresholds)


def argmax_labels(classes: np.ndarray) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
    def labels(_scores: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
        assert probabilities is not None
        return classes.take(np.argmax(probabilities, axis=1), axis=0)

    return labels


def raw_score_labels(classes: np.ndarray, scores: np.ndarray, binary_at_zero: bool) -> np.ndarray:
    """scikit-learn's boosting classifiers' predict, from raw scores: one column is the positive class where it is
    >= 0 (GradientBoosting) or > 0 (HistGradientBoosting), several are the argmax."""
    if scores.shape[1] == 1:
        column = scores[:, 0]
        encoded = (column >= 0 if binary_at_zero else column > 0).astype(int)
    else:
        encoded = np.argmax(scores, axis=1)
    return classes[encoded]


def first_column(scores: np.ndarray, _probabilities: np.ndarray | None) -> np.ndarray:
    return scores[:, 0]


def walk_for(model: Any) -> Walk | None:
    """The walk for a fitted model of a supported family; None for other models; Unsupported when the model is of
    a supported family but holds something the walk cannot reproduce."""
    module = type(model).__module__
    if module.startswith("xgboost"):
        return xgboost_walk(model)
    if module.startswith("lightgbm") or module == "mlmodel_server.native_models":
        return lightgbm_walk(model)
    if module.startswith("sklearn"):
        return sklearn_walk(model)
    return None


def sklearn_walk(model: Any) -> Walk | None:
    from sklearn import ensemble as sk

    if isinstance(model, sk.RandomForestClassifier | sk.ExtraTreesClassifier):
        # ForestClassifier.predict: classes_ at the argmax of predict_proba
        ensemble = from_sklearn_forest(model, classifier=True)
        return walk("forest-classifier", ensemble, lambda scores: scores, argmax_labels(model.classes_))
    if isinstance(model, sk.RandomForestRegressor | sk.ExtraTreesRegressor):
        return walk("forest-regressor", from_sklearn_forest(model, classifier=False), None, first_column)
    if isinstance(model, sk.GradientBoostingClassifier):
        ensemble = from_sklearn_gradient_boosting(model)
        classes, loss = model.classes_, model._loss

        def decision(scores: np.ndarray) -> np.ndarray:  # decision_function: one column raveled
            return scores.ravel() if scores.shape[1] == 1 else scores

        def gradient_labels(scores: np.ndarray, _probabilities: np.ndarray | None) -> np.ndarray:
            return raw_score_labels(classes, scores, binary_at_zero=True)

        return walk(
            "gradient-boosting-classifier", ensemble, lambda s: loss.predict_proba(decision(s)), gradient_labels
        )
    if isinstance(model, sk.GradientBoostingRegressor):
        return walk("gradient-boosting-regressor", from_sklearn_gradient_boosting(model), None, first_column)
    if isinstance(model, sk.HistGradientBoostingClassifier):
        ensemble = from_sklearn_hist_gradient_boosting(model)
        classes = model.classes_

        def hist_labels(scores: np.ndarray, _probabilities: np.ndarray | None) -> np.ndarray:
            return raw_score_labels(classes, scores, binary_at_zero=False)

        return walk("hist-gradient-boosting-classifier", ensemble, model._loss.predict_proba, hist_labels)
    if isinstance(model, sk.HistGradientBoostingRegressor):
        ensemble = from_sklearn_hist_gradient_boosting(model)
        inverse = model._loss.link.inverse

        def hist_regress(scores: np.ndarray, _probabilities: np.ndarray | None) -> np.ndarray:
            return inverse(scores.ravel())

        return walk("hist-gradient-boosting-regressor", ensemble, None, hist_regress)
    return None


def xgboost_walk(model: Any) -> Walk | None:
    import xgboost

    if not isinstance(model, xgboost.XGBClassifier | xgboost.XGBRegressor):
        return None  # a plain Booster is never served: native_models.py wraps every file
    missing = model.get_params().get("missing", np.nan)
    if not (missing is None or np.isnan(missing)):
        raise Unsupported(f"XGBoost missing={missing}: the walk treats only NaN as missing")
    booster = model.get_booster()
    best = booster.attr("best_iteration")  # the wrappers predict with the trees up to it, as early stopping left
    ensemble, objective = from_xgboost(booster, None if best is None else int(best) + 1)
    if isinstance(model, xgboost.XGBRegressor):
        if objective not in XGBOOST_IDENTITY:
            raise Unsupported(f"XGBoost objective {objective}")
        return walk("xgboost-regressor", ensemble, None, first_column)
    if objective == "binary:logistic":
        sigmoid = c_sigmoid("sigmoid_f32")

        def binary_labels(_scores: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
            assert probabilities is not None  # XGBClassifier.predict: class 1 where its probability > 0.5
            return (probabilities[:, 1] > 0.5).astype(np.int64)

        return walk("xgboost-classifier", ensemble, sigmoid, binary_labels)
    if objective == "multi:softprob":
        softmax = c_softmax("softmax_f32")

        def multi_labels(_scores: np.ndarray, probabilities: np.ndarray | None) -> np.ndarray:
            assert probabilities is not None
            return np.argmax(probabilities, axis=1)

        return walk("xgboost-classifier", ensemble, softmax, multi_labels)
    raise Unsupported(f"XGBoost objective {objective}")


def lightgbm_walk(model: Any) -> Walk | None:
    import lightgbm

    from mlmodel_server.native_models import LightGBMClassifier, LightGBMRegressor

    if isinstance(model, LightGBMRegressor):  # a native file (LightGBMClassifier is one too)
        booster, classifier = model.booster, isinstance(model, LightGBMClassifier)
    elif isinstance(model, lightgbm.LGBMClassifier | lightgbm.LGBMRegressor):
        booster, classifier = model.booster_, isinstance(model, lightgbm.LGBMClassifier)
        if callable(model.objective):
            raise Unsupported("a LightGBM custom objective")
    else:
        return None
    ensemble, objective = from_lightgbm(booster.model_to_string())
    if not classifier:
        if objective[0] not in ("regression", "regression_l1", "huber", "fair", "quantile"):
            raise Unsupported(f"LightGBM objective {objective[0]}")
        return walk("lightgbm-regressor", ensemble, None, first_column)
    labels = argmax_labels(np.asarray(model.classes_))  # LGBMClassifier.predict and LightGBMClassifier.predict
    if objective[0] == "binary":
        words = dict(part.split(":", 1) for part in objective[1:] if ":" in part)
        sigmoid = c_sigmoid("sigmoid_f64", float(words.get("sigmoid", 1.0)))
        return walk("lightgbm-classifier", ensemble, sigmoid, labels)
    if objective[0] == "multiclass":
        return walk("lightgbm-classifier", ensemble, c_softmax("softmax_f64"), labels)
    raise Unsupported(f"LightGBM objective {objective[0]}")
