"""The estimator calls, with fast kernels for forests and logistic regressions.

A forest's own predict_proba dispatches every tree through joblib and validates the input again per
tree, which costs about 40 µs per tree even for one row: a 100-tree forest spends most of its time there.
Validating once and summing the trees' compiled `tree_.predict` in a plain loop does the same arithmetic
in the same order (bit-identical results with n_jobs=1), about 10x faster for small batches.

Faster still, and for more families, the compiled tree walk (tree_walk.py, C code shipped in the wheel):
random forests and extra trees, gradient boosting and histogram gradient boosting, XGBoost and LightGBM, alone or
as a pipeline's last step. It is on unless `--compiled-kernels false`, and reproduces each library bit for bit,
so it is compared with the library exactly (no tolerance).

A fast kernel is used only after it reproduced the estimator's own outputs on probe rows: random ones and rows
that sit on and next to the trees' split thresholds. One that cannot be built or disagrees is logged, and the
next one (at last the estimator's own methods) serves.

A LogisticRegression spends ~100 µs per call in input validation around a (rows × features) @ (features ×
classes) product, and predict and predict_proba each compute that product again. Its fast kernel computes
the decision function once, the way LinearClassifierMixin.decision_function does without the validation
(rows were already validated, float64, the right width), then predict and predict_proba from it with
scikit-learn's own formulas.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlmodel_server import tree_walk
from mlmodel_server.signature import ModelSignature

log = logging.getLogger("mlmodel_server.kernels")

Matrix = np.ndarray


@dataclass(frozen=True)
class Kernels:
    predict: Callable[[Matrix], np.ndarray]
    predict_proba: Callable[[Matrix], np.ndarray] | None
    # True when predict is classes_[argmax(predict_proba)] exactly, so one call serves both outputs
    predict_from_proba: bool
    # which fast kernel serves the model (None: the estimator's own methods); the `fast_path` label of
    # mlmodel_model_info and the load log line
    fast_kernel: str | None
    # (predict, predict_proba) from one pass, when the fast kernel has one
    predict_both: Callable[[Matrix], tuple[np.ndarray, np.ndarray]] | None = None
    # the compiled tree walk serves this model (app.py then decodes numeric rows with compiled code too)
    compiled: bool = False
    # rows this kernel must also reproduce before it is used (on its own split thresholds)
    probes: Matrix | None = None


def plain_kernels(estimator: Any, signature: ModelSignature) -> Kernels:
    """The model's own methods; `predict_both` when the model has one (an ONNX or LightGBM classifier: labels and
    probabilities from one pass)."""
    return Kernels(
        predict=estimator.predict,
        predict_proba=estimator.predict_proba if signature.has_proba else None,
        predict_from_proba=False,
        fast_kernel=None,
        predict_both=getattr(estimator, "predict_both", None) if signature.has_proba else None,
    )


def split_pipeline(estimator: Any) -> tuple[Callable[[Matrix], Matrix] | None, Any]:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and len(steps) > 1:
        head = estimator[:-1]
        return head.transform, steps[-1][1]
    if isinstance(steps, list) and len(steps) == 1:
        return None, steps[0][1]
    return None, estimator


def forest_kernels(estimator: Any) -> Kernels | None:
    from sklearn.ensemble._forest import ForestClassifier, ForestRegressor

    transform, forest = split_pipeline(estimator)
    if getattr(forest, "n_jobs", None) not in (None, 1) or getattr(forest, "n_outputs_", 1) != 1:
        return None
    if not hasattr(forest, "_validate_X_predict") or not hasattr(forest, "estimators_"):
        return None
    if isinstance(forest, ForestClassifier):
        n_classes = int(forest.n_classes_)

        def leaf_values(tree):
            return tree.value[:, 0, :n_classes]  # what DecisionTreeClassifier.predict_proba returns
    elif isinstance(forest, ForestRegressor):

        def leaf_values(tree):
            return tree.value[:, 0, :1]  # what DecisionTreeRegressor.predict returns
    else:
        return None
    trees = [estimator.tree_ for estimator in forest.estimators_]
    n_features = getattr(forest, "n_features_in_", None)

    def prepare(X: Matrix) -> Matrix:
        if transform is not None:
            return forest._validate_X_predict(transform(X))
        if type(X) is np.ndarray and X.dtype == np.float64 and X.ndim == 2 and X.shape[1] == n_features:
            # Rows the server already validated (finite float64, the right width): all the forest's check_array
            # would still do is this cast to the trees' float32, and its checks cost ~75 us per call.
            return X.astype(np.float32)
        return forest._validate_X_predict(X)

    average = numpy_average(trees, leaf_values, prepare)
    if isinstance(forest, ForestClassifier):
        classes = forest.classes_

        def forest_predict(X: Matrix) -> np.ndarray:
            return classes.take(np.argmax(average(X), axis=1), axis=0)

        return Kernels(forest_predict, average, predict_from_proba=True, fast_kernel="forest-classifier")

    def forest_regress(X: Matrix) -> np.ndarray:
        return average(X)[:, 0]

    return Kernels(forest_regress, None, predict_from_proba=False, fast_kernel="forest-regressor")


def numpy_average(
    trees: list[Any], leaf_values: Callable[[Any], np.ndarray], prepare: Callable[[Matrix], Matrix]
) -> Callable[[Matrix], np.ndarray]:
    # tree.predict(X) is value.take(apply(X)): views of each tree's values (no copy), taken directly
    walks = [(tree.apply, leaf_values(tree)) for tree in trees]
    width = walks[0][1].shape[1]

    def average(X: Matrix) -> np.ndarray:
        X = prepare(X)
        total = np.zeros((X.shape[0], width), dtype=np.float64)
        for apply, values in walks:
            total += values.take(apply(X), axis=0)
        total /= len(walks)
        return total

    return average


def tree_walk_kernels(estimator: Any) -> Kernels | None:
    """The compiled tree walk (tree_walk.py) for a tree model or a pipeline ending in one; None for other models.
    Raises tree_walk.Unsupported for a tree model the walk cannot reproduce, OSError when the extension is absent."""
    from scipy.sparse import issparse

    transform, model = split_pipeline(estimator)
    walk = tree_walk.walk_for(model)
    if walk is None:
        return None
    n_features, raw, proba, labels = walk.n_features, walk.raw, walk.proba, walk.labels

    def walkable(X: Matrix) -> tuple[Matrix, Matrix | None]:
        """(what the model is given, the same rows for the walk or None: the model's own method serves them)."""
        if transform is None:  # rows the server validated (finite numbers, the model's width)
            return X, X if isinstance(X, np.ndarray) and X.dtype.kind in "fiub" else None
        X = transform(X)
        rows = X.toarray() if issparse(X) else np.asarray(X)  # type: ignore[attr-defined]  # scipy sparse
        # Only a transform can make NaN, another width or non-numbers: left to the model's own handling.
        if rows.ndim != 2 or rows.shape[1] != n_features or rows.dtype.kind not in "fiub" or np.isnan(rows).any():
            return X, None
        return X, rows

    def predict(X: Matrix) -> np.ndarray:
        given, rows = walkable(X)
        if rows is None:
            return model.predict(given)
        scores = raw(rows)
        return labels(scores, proba(scores) if proba is not None else None)

    def predict_both(X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        given, rows = walkable(X)
        if rows is None:
            return model.predict(given), model.predict_proba(given)
        assert proba is not None
        scores = raw(rows)
        probabilities = proba(scores)
        return labels(scores, probabilities), probabilities

    def predict_proba(X: Matrix) -> np.ndarray:
        given, rows = walkable(X)
        if rows is None:
            return model.predict_proba(given)
        assert proba is not None
        return proba(raw(rows))

    probes = None
    if transform is None:  # split thresholds are in the walk's input space: the model's own inputs
        generator = np.random.default_rng(1)
        probes = rows_on_thresholds(walk.split_features, walk.split_thresholds, n_features, generator, 64)
    return Kernels(
        predict,
        predict_proba if proba is not None else None,
        predict_from_proba=False,
        fast_kernel=walk.kind + "-compiled",
        predict_both=predict_both if proba is not None else None,
        compiled=True,
        probes=probes,
    )


def linear_kernels(estimator: Any) -> Kernels | None:
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils.extmath import softmax

    transform, model = split_pipeline(estimator)
    if type(model) is not LogisticRegression:
        return None
    coef, intercept, classes = model.coef_, model.intercept_, model.classes_
    if not isinstance(coef, np.ndarray) or coef.ndim != 2 or coef.dtype != np.float64 or len(classes) < 2:
        return None
    coef_t = coef.T

    def decision(X: Matrix) -> np.ndarray:
        if transform is not None:
            X = transform(X)
        if not isinstance(X, np.ndarray) or X.dtype != np.float64 or X.ndim != 2:
            return model.decision_function(X)  # whatever the transform made: the estimator's own path
        scores = X @ coef_t + intercept
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    def labels(scores: np.ndarray) -> np.ndarray:
        indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return classes.take(indices, axis=0)

    def probabilities(scores: np.ndarray) -> np.ndarray:
        if len(classes) <= 2:  # LogisticRegression._predict_proba_lr
            positive = expit(scores)
            return np.stack([1 - positive, positive], axis=1)
        return softmax(scores, copy=True)

    def predict(X: Matrix) -> np.ndarray:
        return labels(decision(X))

    def predict_proba(X: Matrix) -> np.ndarray:
        return probabilities(decision(X))

    def predict_both(X: Matrix) -> tuple[np.ndarray, np.ndarray]:
        scores = decision(X)
        return labels(scores), probabilities(scores)

    return Kernels(
        predict, predict_proba, predict_from_proba=False, fast_kernel="logistic-regression", predict_both=predict_both
    )


def probe_rows(estimator: Any, signature: ModelSignature, count: int = 16) -> Matrix | None:
    if signature.n_features is None:
        return None
    generator = np.random.default_rng(0)
    rows = [
        generator.normal(size=(count, signature.n_features)),
        generator.normal(scale=1e3, size=(count, signature.n_features)),
    ]
    on_splits = split_point_rows(estimator, signature.n_features, generator, 4 * count)
    if on_splits is not None:
        rows.append(on_splits)
    return np.concatenate(rows)


def split_point_rows(estimator: Any, n_features: int, generator: np.random.Generator, count: int) -> Matrix | None:
    """Rows whose values sit on and right next to the trees' split thresholds (in float64 and in the trees'
    float32): where a faster walk's comparisons would part from scikit-learn's, if they ever did."""
    transform, model = split_pipeline(estimator)
    members = getattr(model, "estimators_", [])
    trees = [member.tree_ for member in members if getattr(member, "tree_", None) is not None]
    if transform is not None or not trees or len(trees) != len(members):
        return None
    splits = [tree.children_left != -1 for tree in trees]
    features = np.concatenate([tree.feature[split] for tree, split in zip(trees, splits, strict=True)])
    thresholds = np.concatenate([tree.threshold[split] for tree, split in zip(trees, splits, strict=True)])
    return rows_on_thresholds(features, thresholds, n_features, generator, count)


def rows_on_thresholds(
    features: np.ndarray, thresholds: np.ndarray, n_features: int, generator: np.random.Generator, count: int
) -> Matrix:
    """Random rows whose split features take values on and right next to their thresholds, in float64 and in
    float32 (finite values within float32's range only: the server accepts nothing else)."""
    thresholds = thresholds.astype(np.float64)
    rounded = thresholds.astype(np.float32)
    candidates = np.stack(
        [
            thresholds,
            np.nextafter(thresholds, np.inf),
            np.nextafter(thresholds, -np.inf),
            rounded,
            np.nextafter(rounded, np.float32(np.inf)),
            np.nextafter(rounded, np.float32(-np.inf)),
        ],
        axis=1,
    ).astype(np.float64)
    rows = generator.normal(size=(count, n_features))
    for feature in np.unique(features):
        values = candidates[features == feature].ravel()
        values = values[np.abs(values) <= np.finfo(np.float32).max]
        if len(values):
            rows[:, feature] = generator.choice(values, size=count)
    return rows


def same_outputs(candidate: Kernels, reference: Kernels, rows: Matrix) -> bool:
    """The candidate's outputs against the estimator's own on the probe rows (and on the candidate's own probes).
    The compiled walk must be bit-identical, dtype included: every library it reproduces it reproduces exactly
    (XGBoost's float32 sums and links as well), so any difference is a divergence. The numpy forest path and the
    logistic regression are compared within 1e-12."""
    if candidate.probes is not None:
        rows = np.concatenate([rows, candidate.probes])

    def equal(ours: np.ndarray, theirs: np.ndarray) -> bool:
        ours, theirs = np.asarray(ours), np.asarray(theirs)
        if candidate.compiled:
            return ours.shape == theirs.shape and ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
        return np.allclose(ours, theirs, rtol=1e-12, atol=1e-12)

    labels = reference.predict(rows)
    if not np.array_equal(candidate.predict(rows), labels):
        return False
    if reference.predict_proba is not None:
        if candidate.predict_proba is None:
            return False
        expected = reference.predict_proba(rows)
        if not equal(candidate.predict_proba(rows), expected):
            return False
        if candidate.predict_both is not None:
            both_labels, probabilities = candidate.predict_both(rows)
            return np.array_equal(both_labels, labels) and equal(probabilities, expected)
    elif candidate.compiled:
        return equal(candidate.predict(rows), labels)
    return True


def build_kernels(estimator: Any, signature: ModelSignature, compiled: bool = True) -> Kernels:
    """The fastest kernels that reproduce the estimator's own outputs on probe rows; the estimator's own
    methods when none does. The compiled tree walk is tried first unless `compiled=False`."""
    reference = plain_kernels(estimator, signature)
    rows = probe_rows(estimator, signature)
    if rows is None:
        return reference
    candidates = (tree_walk_kernels, forest_kernels, linear_kernels) if compiled else (forest_kernels, linear_kernels)
    for build in candidates:
        # Said once per load, so a kernel that stops building or agreeing shows in the log instead of only in speed.
        try:
            candidate = build(estimator)
            if candidate is None:
                continue
            if same_outputs(candidate, reference, rows):
                return candidate
            log.warning("fast kernel %s disagrees with the model on probe rows; trying the next one", build.__name__)
        except (tree_walk.Unsupported, OSError) as reason:  # a model feature the walk lacks, or no extension
            log.warning("fast kernel %s cannot serve this model (%s); trying the next one", build.__name__, reason)
        except Exception:  # any surprise in a fast kernel means: try the next one
            log.warning("fast kernel %s could not be built; trying the next one", build.__name__, exc_info=True)
    return reference
