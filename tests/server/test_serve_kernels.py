"""The fast estimator paths (kernels.py, compiled_forest.py): used only when bit-identical to scikit-learn."""

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import datasets
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlmodel_server import kernels
from mlmodel_server.compiled_forest import float32_at_most
from mlmodel_server.kernels import build_kernels, split_point_rows
from mlmodel_server.signature import signature_of


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
    assert rounded.dtype == np.float32
    # scikit-learn compares a float32 value with a float64 threshold in double precision
    assert (float(np.float32(x)) <= threshold) == (np.float32(x) <= rounded)


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


def test_numpy_forest_path_unless_compiled_kernels_are_asked_for():
    estimator, X = forest_case("regressor")
    fast = build_kernels(estimator, signature_of(estimator))
    assert fast.fast_kernel == "forest-regressor"
    assert_identical(fast, estimator, X)


def test_numpy_forest_path_when_the_compiled_one_is_unavailable(monkeypatch):
    def unavailable(estimator):
        raise ImportError("No module named 'numba'")

    monkeypatch.setattr(kernels, "compiled_forest_kernels", unavailable)
    estimator, X = forest_case("classifier")
    fast = build_kernels(estimator, signature_of(estimator), compiled=True)
    assert fast.fast_kernel == "forest-classifier"
    assert_identical(fast, estimator, X)


def test_a_fast_kernel_that_disagrees_is_not_used(monkeypatch):
    estimator, _X = forest_case("classifier")
    real = kernels.forest_kernels

    def off_by_one_tree(estimator, compiled=False):
        built = real(estimator, compiled)
        return kernels.Kernels(built.predict, lambda rows: built.predict_proba(rows) * 0.999, True, built.fast_kernel)

    monkeypatch.setattr(kernels, "forest_kernels", off_by_one_tree)
    monkeypatch.setattr(kernels, "compiled_forest_kernels", lambda estimator: off_by_one_tree(estimator, True))
    assert build_kernels(estimator, signature_of(estimator), compiled=True).fast_kernel is None


def test_numba_is_imported_only_to_compile_a_forest():
    # numba and LLVM take ~150 MiB: a model that does not use them must not pay for them.
    script = """
import sys
from sklearn import datasets
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from mlmodel_server.kernels import build_kernels
from mlmodel_server.signature import signature_of
X, y = datasets.load_iris(return_X_y=True)
for estimator, compiled in ((LogisticRegression(max_iter=500).fit(X, y), True), (RandomForestClassifier(5).fit(X, y), False)):
    build_kernels(estimator, signature_of(estimator), compiled=compiled)
print("numba" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_an_artifact_trained_with_all_cores_is_served_single_threaded_on_the_fast_kernel():
    from mlmodel_server.predictor import ModelIdentity, Predictor

    X, y = datasets.make_classification(300, 6, random_state=0)
    estimator = make_pipeline(StandardScaler(), RandomForestClassifier(10, n_jobs=-1, random_state=0)).fit(X, y)
    predictor = Predictor(estimator, ModelIdentity("m", "", "", "joblib"))
    assert estimator[-1].n_jobs == 1
    assert predictor.kernels.fast_kernel == "forest-classifier"
    assert_identical(predictor.kernels, estimator, X)


def test_a_fast_kernel_that_fails_to_build_is_logged_and_the_next_one_serves(monkeypatch, caplog):
    estimator, _X = forest_case("classifier")

    def broken(_estimator):
        raise ValueError("a kernel bug")

    monkeypatch.setattr(kernels, "compiled_forest_kernels", broken)
    with caplog.at_level("WARNING", logger="mlmodel_server.kernels"):
        fast = build_kernels(estimator, signature_of(estimator), compiled=True)
    assert fast.fast_kernel is not None and not fast.fast_kernel.endswith("-compiled")  # the numpy walk serves
    [record] = caplog.records
    assert "broken could not be built" in record.getMessage() and "a kernel bug" in caplog.text
