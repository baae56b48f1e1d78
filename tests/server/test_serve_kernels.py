"""The fast estimator paths (kernels.py, tree_walk.py): used only when they reproduce the model's own outputs."""

import lightgbm
import numpy as np
import pytest
import xgboost
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlmodel_server import kernels, tree_walk
from mlmodel_server.kernels import build_kernels, split_point_rows
from mlmodel_server.signature import signature_of
from mlmodel_server.tree_walk import float32_at_most


def assert_identical(fast, estimator, rows):
    assert np.array_equal(fast.predict(rows), estimator.predict(rows))
    if hasattr(estimator, "predict_proba"):
        assert np.array_equal(fast.predict_proba(rows), estimator.predict_proba(rows))


def forest_case(kind):
    if kind in ("regressor", "extra-trees-regressor"):
        X, y = datasets.make_regression(400, 6, random_state=0)
        model = RandomForestRegressor if kind == "regressor" else ExtraTreesRegressor
        return model(25, random_state=0).fit(X, y), X
    X, y = datasets.make_classification(400, 6, n_classes=3, n_informative=4, random_state=0)
    forest = RandomForestClassifier(25, random_state=0)
    if kind == "pipeline":
        return make_pipeline(StandardScaler(), forest).fit(X, y), X
    if kind == "shallow":
        return RandomForestClassifier(10, max_depth=2, random_state=0).fit(X, y), X
    if kind == "single-leaf":  # one class: every tree is its root
        return RandomForestClassifier(5, random_state=0).fit(X, np.zeros_like(y)), X
    return forest.fit(X, y), X


@pytest.mark.parametrize("dataset", ["iris", "breast_cancer"])
@pytest.mark.parametrize("scaled", [False, True])
def test_logistic_regression_fast_kernel_is_bit_identical(dataset, scaled):
    X, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    estimator = make_pipeline(StandardScaler(), LogisticRegression()) if scaled else LogisticRegression(max_iter=5000)
    estimator.fit(X, y)
    fast = build_kernels(estimator, signature_of(estimator))
    assert fast.fast_kernel == "logistic-regression"
    labels, probabilities = fast.predict_both(X)
    assert np.array_equal(labels, estimator.predict(X))
    assert np.array_equal(probabilities, estimator.predict_proba(X))
    assert_identical(fast, estimator, X)


@pytest.mark.parametrize(
    "kind", ["classifier", "shallow", "single-leaf", "regressor", "extra-trees-regressor", "pipeline"]
)
def test_compiled_forest_is_bit_identical(kind):
    estimator, X = forest_case(kind)
    fast = build_kernels(estimator, signature_of(estimator), compiled=True)
    assert fast.fast_kernel is not None and fast.fast_kernel.endswith("-compiled")
    generator = np.random.default_rng(7)
    on_splits = split_point_rows(estimator[-1] if kind == "pipeline" else estimator, X.shape[1], generator, 500)
    for rows in (
        X[:1],
        X[:7],
        X,
        np.asfortranarray(X[:9]),
        generator.normal(scale=50, size=(300, X.shape[1])),
        on_splits,
    ):
        assert_identical(fast, estimator, rows)


def test_rows_on_split_thresholds_are_where_float32_rounding_matters():
    estimator, X = forest_case("classifier")
    rows = split_point_rows(estimator, X.shape[1], np.random.default_rng(0), 200)
    thresholds = np.concatenate([tree.tree_.threshold for tree in estimator.estimators_])
    assert np.isin(rows, thresholds).any()  # values exactly on a float64 threshold
    assert (rows != rows.astype(np.float32)).any() and (rows == rows.astype(np.float32)).any()
    assert split_point_rows(LogisticRegression().fit(X, X[:, 0] > 0), X.shape[1], np.random.default_rng(0), 5) is None


@settings(max_examples=500, deadline=None)
@given(threshold=st.floats(allow_nan=False, width=64), x=st.floats(allow_nan=False, width=32))
def test_float32_thresholds_compare_like_the_float64_ones(threshold, x):
    rounded = float32_at_most(np.array([threshold]))[0]
    assert rounded == np.float32(rounded) or not np.isfinite(np.float32(rounded))  # a float32 value, kept as float64
    # scikit-learn compares a float32 value with a float64 threshold in double precision
    assert (float(np.float32(x)) <= threshold) == (np.float32(x) <= np.float32(rounded))


def test_compiled_forest_leaves_missing_values_to_scikit_learn():
    # The server only lets finite values in, so NaN reaches a forest only from a pipeline step.
    generator = np.random.default_rng(0)
    X = generator.normal(size=(500, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    holes = FunctionTransformer(lambda rows: np.where(rows > 1.2, np.nan, rows), validate=True).fit(X)
    estimator = make_pipeline(holes, RandomForestClassifier(20, random_state=0).fit(holes.transform(X), y))
    fast = build_kernels(estimator, signature_of(estimator), compiled=True)
    assert fast.fast_kernel == "forest-classifier-compiled"
    rows = generator.normal(size=(300, 4))
    assert np.isnan(holes.transform(rows)).any()
    assert_identical(fast, estimator, rows)


def test_compiled_forest_densifies_a_sparse_transform():
    X, y = datasets.make_classification(300, 3, n_informative=2, n_redundant=0, random_state=0)
    codes = np.floor(np.abs(X) * 3)
    estimator = make_pipeline(OneHotEncoder(handle_unknown="ignore"), RandomForestClassifier(15, random_state=0))
    estimator.fit(codes, y)
    fast = build_kernels(estimator, signature_of(estimator), compiled=True)
    assert fast.fast_kernel == "forest-classifier-compiled"
    assert_identical(fast, estimator, codes)


def test_numpy_forest_path_when_compiled_kernels_are_off():
    estimator, X = forest_case("regressor")
    fast = build_kernels(estimator, signature_of(estimator), compiled=False)
    assert fast.fast_kernel == "forest-regressor" and not fast.compiled
    assert_identical(fast, estimator, X)


def test_numpy_forest_path_when_the_extension_is_not_installed(monkeypatch, caplog):
    monkeypatch.setattr(tree_walk, "EXTENSION", "mlmodel_server._not_built")
    tree_walk.library.cache_clear()
    try:
        estimator, X = forest_case("classifier")
        with caplog.at_level("WARNING", logger="mlmodel_server.kernels"):
            fast = build_kernels(estimator, signature_of(estimator))
    finally:
        tree_walk.library.cache_clear()
    assert fast.fast_kernel == "forest-classifier"
    assert_identical(fast, estimator, X)
    [record] = caplog.records
    assert "tree_walk_kernels cannot serve this model" in record.getMessage()
    assert "mlmodel_server._not_built is not installed" in record.getMessage()


def test_a_fast_kernel_that_disagrees_is_not_used(monkeypatch, caplog):
    estimator, _X = forest_case("classifier")
    real_walk, real_forest = kernels.tree_walk_kernels, kernels.forest_kernels

    def off(built):
        return kernels.Kernels(
            built.predict,
            lambda rows: built.predict_proba(rows) * 0.999,
            True,
            built.fast_kernel,
            compiled=built.compiled,
        )

    monkeypatch.setattr(kernels, "forest_kernels", lambda estimator: off(real_forest(estimator)))
    monkeypatch.setattr(kernels, "tree_walk_kernels", lambda estimator: off(real_walk(estimator)))
    with caplog.at_level("WARNING", logger="mlmodel_server.kernels"):
        assert build_kernels(estimator, signature_of(estimator)).fast_kernel is None
    assert len(caplog.records) == 2 and all("disagrees" in record.getMessage() for record in caplog.records)


def test_an_artifact_trained_with_all_cores_is_served_single_threaded_on_the_fast_kernel():
    from mlmodel_server.predictor import ModelIdentity, Predictor

    X, y = datasets.make_classification(300, 6, random_state=0)
    estimator = make_pipeline(StandardScaler(), RandomForestClassifier(10, n_jobs=-1, random_state=0)).fit(X, y)
    predictor = Predictor(estimator, ModelIdentity("m", "", "", "joblib"))
    assert estimator[-1].n_jobs == 1
    assert predictor.kernels.fast_kernel == "forest-classifier-compiled"
    assert_identical(predictor.kernels, estimator, X)


def test_a_fast_kernel_that_fails_to_build_is_logged_and_the_next_one_serves(monkeypatch, caplog):
    estimator, _X = forest_case("classifier")

    def broken(_estimator):
        raise ValueError("a kernel bug")

    monkeypatch.setattr(kernels, "tree_walk_kernels", broken)
    with caplog.at_level("WARNING", logger="mlmodel_server.kernels"):
        fast = build_kernels(estimator, signature_of(estimator))
    assert fast.fast_kernel is not None and not fast.fast_kernel.endswith("-compiled")  # the numpy walk serves
    [record] = caplog.records
    assert "broken could not be built" in record.getMessage() and "a kernel bug" in caplog.text


def tree_family_case(kind):
    """A model of each family the compiled walk serves, trained here (with NaN where the library learns it)."""
    generator = np.random.default_rng(0)
    X, y3 = datasets.make_classification(500, 10, n_informative=6, n_classes=3, random_state=0)
    y2, target = (y3 == 1).astype(int), X[:, 0] * 3 + X[:, 1] ** 2
    holed = np.where(generator.random(X.shape) < 0.1, np.nan, X)
    labels = np.array(["ham", "spam", "eggs"])[y3]
    small = {"n_estimators": 15}
    fits = {
        "random-forest-classifier": lambda: RandomForestClassifier(15, random_state=0).fit(X, labels),
        "random-forest-regressor": lambda: RandomForestRegressor(15, random_state=0).fit(X, target),
        "extra-trees-classifier": lambda: ExtraTreesClassifier(15, random_state=0).fit(X, y2),
        "extra-trees-regressor": lambda: ExtraTreesRegressor(15, random_state=0).fit(X, target),
        "gradient-boosting-binary": lambda: GradientBoostingClassifier(**small, random_state=0).fit(X, y2),
        "gradient-boosting-3-class": lambda: GradientBoostingClassifier(**small, random_state=0).fit(X, labels),
        "gradient-boosting-regressor": lambda: GradientBoostingRegressor(**small, random_state=0).fit(X, target),
        "hist-gradient-boosting-binary": lambda: HistGradientBoostingClassifier(max_iter=15).fit(holed, y2),
        "hist-gradient-boosting-3-class": lambda: HistGradientBoostingClassifier(max_iter=15).fit(X, labels),
        "hist-gradient-boosting-poisson": lambda: HistGradientBoostingRegressor(loss="poisson", max_iter=15).fit(
            X, np.abs(target)
        ),
        "xgboost-binary": lambda: xgboost.XGBClassifier(**small, max_depth=4).fit(holed, y2),
        "xgboost-3-class": lambda: xgboost.XGBClassifier(**small, max_depth=4).fit(X, y3),
        "xgboost-regressor": lambda: xgboost.XGBRegressor(**small, max_depth=4).fit(X, target),
        "xgboost-early-stopping": lambda: xgboost.XGBClassifier(
            n_estimators=200, early_stopping_rounds=3, max_depth=4
        ).fit(X[:300], y2[:300], eval_set=[(X[300:], y2[300:])], verbose=False),
        "lightgbm-binary": lambda: lightgbm.LGBMClassifier(**small, verbose=-1).fit(holed, y2),
        "lightgbm-3-class": lambda: lightgbm.LGBMClassifier(**small, verbose=-1).fit(X, labels),
        "lightgbm-regressor": lambda: lightgbm.LGBMRegressor(**small, verbose=-1).fit(X, target),
        "lightgbm-early-stopping": lambda: lightgbm.LGBMClassifier(n_estimators=200, verbose=-1).fit(
            X[:300], y2[:300], eval_X=X[300:], eval_y=y2[300:], callbacks=[lightgbm.early_stopping(3, verbose=False)]
        ),
        "pipeline-scaler-xgboost": lambda: make_pipeline(StandardScaler(), xgboost.XGBClassifier(**small)).fit(X, y3),
        "pipeline-scaler-hist-gradient-boosting": lambda: make_pipeline(
            StandardScaler(), HistGradientBoostingRegressor(max_iter=15)
        ).fit(X, target),
    }
    return fits[kind](), X


TREE_FAMILIES = {
    "random-forest-classifier": "forest-classifier",
    "random-forest-regressor": "forest-regressor",
    "extra-trees-classifier": "forest-classifier",
    "extra-trees-regressor": "forest-regressor",
    "gradient-boosting-binary": "gradient-boosting-classifier",
    "gradient-boosting-3-class": "gradient-boosting-classifier",
    "gradient-boosting-regressor": "gradient-boosting-regressor",
    "hist-gradient-boosting-binary": "hist-gradient-boosting-classifier",
    "hist-gradient-boosting-3-class": "hist-gradient-boosting-classifier",
    "hist-gradient-boosting-poisson": "hist-gradient-boosting-regressor",
    "xgboost-binary": "xgboost-classifier",
    "xgboost-3-class": "xgboost-classifier",
    "xgboost-regressor": "xgboost-regressor",
    "xgboost-early-stopping": "xgboost-classifier",
    "lightgbm-binary": "lightgbm-classifier",
    "lightgbm-3-class": "lightgbm-classifier",
    "lightgbm-regressor": "lightgbm-regressor",
    "lightgbm-early-stopping": "lightgbm-classifier",
    "pipeline-scaler-xgboost": "xgboost-classifier",
    "pipeline-scaler-hist-gradient-boosting": "hist-gradient-boosting-regressor",
}


def assert_bit_identical(fast, estimator, rows):
    """Labels, probabilities and both-at-once equal to the model's own, bit for bit and in its dtype."""
    for ours, theirs in [(fast.predict(rows), estimator.predict(rows))] + (
        [
            (fast.predict_proba(rows), estimator.predict_proba(rows)),
            (fast.predict_both(rows)[1], estimator.predict_proba(rows)),
        ]
        if hasattr(estimator, "predict_proba")
        else []
    ):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("kind", sorted(TREE_FAMILIES))
def test_the_compiled_walk_serves_each_tree_family_bit_identically(kind):
    estimator, X = tree_family_case(kind)
    fast = build_kernels(estimator, signature_of(estimator))
    assert fast.fast_kernel == TREE_FAMILIES[kind] + "-compiled" and fast.compiled
    generator = np.random.default_rng(3)
    walk = tree_walk.walk_for(estimator[-1] if hasattr(estimator, "steps") else estimator)
    on_splits = kernels.rows_on_thresholds(walk.split_features, walk.split_thresholds, X.shape[1], generator, 400)
    for rows in (X[:1], X[:7], X, generator.normal(scale=30, size=(300, X.shape[1])), on_splits):
        assert_bit_identical(fast, estimator, rows)


def test_probe_rows_sit_on_the_walks_own_thresholds():
    estimator, _X = tree_family_case("xgboost-binary")
    fast = build_kernels(estimator, signature_of(estimator))
    walk = tree_walk.walk_for(estimator)
    assert fast.probes is not None and np.isin(fast.probes, walk.split_thresholds).any()
    below = np.nextafter(walk.split_thresholds.astype(np.float32), np.float32(np.inf)).astype(np.float64)
    assert np.isin(fast.probes, below).any()  # XGBoost's own float32 thresholds (the walk keeps the float32 below)


def test_early_stopping_is_walked_up_to_the_best_iteration():
    estimator, _X = tree_family_case("xgboost-early-stopping")
    assert estimator.best_iteration + 1 < estimator.get_booster().num_boosted_rounds()
    assert len(tree_walk.walk_for(estimator).raw.keep[0].roots) == estimator.best_iteration + 1


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("hist-gradient-boosting-categorical", "categorical features"),
        ("xgboost-missing-zero", "XGBoost missing=0"),
        ("lightgbm-linear-trees", "LightGBM linear trees"),
        ("xgboost-dart", "XGBoost booster dart"),
    ],
)
def test_a_model_the_walk_cannot_reproduce_is_served_by_the_library(kind, reason, caplog):
    X, y = datasets.make_classification(300, 5, random_state=0)
    codes = np.column_stack([np.floor(np.abs(X[:, 0]) * 2) % 4, X[:, 1:]])
    estimator = {
        "hist-gradient-boosting-categorical": lambda: HistGradientBoostingClassifier(
            max_iter=10, categorical_features=[0]
        ).fit(codes, y),
        "xgboost-missing-zero": lambda: xgboost.XGBClassifier(n_estimators=5, missing=0.0).fit(X, y),
        "lightgbm-linear-trees": lambda: lightgbm.LGBMRegressor(n_estimators=5, linear_tree=True, verbose=-1).fit(X, y),
        "xgboost-dart": lambda: xgboost.XGBClassifier(n_estimators=5, booster="dart").fit(X, y),
    }[kind]()
    with caplog.at_level("WARNING", logger="mlmodel_server.kernels"):
        fast = build_kernels(estimator, signature_of(estimator))
    assert fast.fast_kernel is None and not fast.compiled
    assert any(f"tree_walk_kernels cannot serve this model ({reason}" in r.getMessage() for r in caplog.records)
    rows = codes if kind.endswith("categorical") else X
    assert np.array_equal(fast.predict(rows), estimator.predict(rows))


def walk_batch_case(kind):
    """40 trees (more than _treewalk.c's LANES = 32 trees a one-row batch walks at once) of a deep forest, and
    XGBoost and LightGBM trained with NaN."""
    generator = np.random.default_rng(0)
    X, y = datasets.make_classification(600, 8, n_informative=5, random_state=0)
    holed = np.where(generator.random(X.shape) < 0.1, np.nan, X)
    fits = {
        "random-forest": lambda: (RandomForestClassifier(40, random_state=0).fit(X, y), X),
        "xgboost-nan": lambda: (xgboost.XGBClassifier(n_estimators=40, max_depth=5).fit(holed, y), holed),
        "lightgbm-nan": lambda: (lightgbm.LGBMClassifier(n_estimators=40, verbose=-1).fit(holed, y), holed),
        "hist-gradient-boosting-nan": lambda: (HistGradientBoostingClassifier(max_iter=40).fit(holed, y), holed),
    }
    return fits[kind]()


@pytest.mark.parametrize("kind", ["random-forest", "xgboost-nan", "lightgbm-nan", "hist-gradient-boosting-nan"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_compiled_walk_is_bit_identical_at_every_batch_size(kind, dtype):
    """Batches below, at and above the walk's boundaries: trees walked several at a time under 32 rows (one row: 32
    trees, then the remaining 8; 3 rows: 11, 11, 11, 7), one at a time from 32, the lanes on the stack up to 256 rows
    and allocated above; rows whose values sit exactly on the split thresholds, and rows holding NaN."""
    estimator, X = walk_batch_case(kind)
    fast = build_kernels(estimator, signature_of(estimator))
    assert fast.compiled
    walk = tree_walk.walk_for(estimator)
    generator = np.random.default_rng(5)
    on_splits = kernels.rows_on_thresholds(walk.split_features, walk.split_thresholds, X.shape[1], generator, 600)
    rows = np.concatenate([X, on_splits])[generator.permutation(1200)].astype(dtype)
    assert np.isin(rows, walk.split_thresholds.astype(dtype)).any()
    for size in (1, 2, 3, 31, 32, 33, 255, 256, 257, 1200):
        assert_bit_identical(fast, estimator, rows[:size])
        assert_bit_identical(fast, estimator, rows[-size:])
    assert walk.raw(rows[:0]).shape == (0, walk.raw(rows[:1]).shape[1])


def test_a_table_the_walk_could_not_walk_safely_is_refused():
    def ensemble(left, right):
        left, right = np.array(left), np.array(right)
        tree = tree_walk.Tree(np.zeros(len(left), int), np.zeros(len(left)), left, right, left, np.ones((len(left), 1)))
        return tree_walk.Ensemble([tree], 1, np.zeros(1), np.float64, np.float64)

    assert len(tree_walk.build_table(ensemble([1, -1, -1], [2, -1, -1])).nodes) == 3
    shared, cycle, two_parents = ([1, -1], [1, -1]), ([1, 0, -1], [2, 2, -1]), ([1, 3, 3, -1, -1], [2, 4, 4, -1, -1])
    for left, right in (shared, cycle, two_parents):
        with pytest.raises(tree_walk.Unsupported, match="cycle or share a node"):
            tree_walk.build_table(ensemble(left, right))
    without_features = ensemble([-1], [-1])
    without_features.n_features = 0
    with pytest.raises(tree_walk.Unsupported, match="without features"):
        tree_walk.build_table(without_features)


def test_lightgbm_inputs_next_to_zero_are_walked_as_zero():
    """LightGBM reads |x| <= 1e-35f as 0.0 and puts a split at zero's threshold there; the walk zeroes them itself."""
    generator = np.random.default_rng(0)
    X = np.column_stack([generator.choice([-1.0, 0.0, 1.0], 600), generator.normal(size=600)])
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    estimator = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(X, y)
    walk = tree_walk.walk_for(estimator)
    assert np.any(np.abs(walk.split_thresholds) <= 1e-34)  # a split at zero
    tiny = tree_walk.LIGHTGBM_ZERO
    rows = np.column_stack([np.tile([-tiny, tiny, -1e-36, 1e-36, -0.0, 0.0, -2 * tiny, 2 * tiny], 4), X[:32, 1]])
    fast = build_kernels(estimator, signature_of(estimator))
    assert fast.compiled
    assert_bit_identical(fast, estimator, rows)
    assert_bit_identical(fast, estimator, rows[:1])
