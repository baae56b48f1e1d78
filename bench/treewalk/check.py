"""Does forest.py reproduce each library's own outputs bit for bit? Exit 1 when any model does not.

    python bench/treewalk/check.py

Trains small models of every supported kind (binary and 3-class classifiers, regressors; the boosting ones
also on rows with NaN, through the scikit-learn wrappers and the native boosters) and compares walk.c's
outputs, after the library's own link, with predict_proba / predict on random and NaN-holding rows.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import forest


def classifiers(x: np.ndarray, x_nan: np.ndarray, y: np.ndarray) -> list[tuple[object, bool]]:
    """(model, trained on rows with NaN)."""
    import lightgbm
    import xgboost
    from sklearn import ensemble

    xgb = xgboost.XGBClassifier(n_estimators=50).fit(x_nan, y)
    lgb = lightgbm.LGBMClassifier(n_estimators=50, verbose=-1).fit(x_nan, y)
    return [
        (ensemble.RandomForestClassifier(50, random_state=0).fit(x, y), False),
        (ensemble.ExtraTreesClassifier(50, random_state=0).fit(x, y), False),
        (ensemble.GradientBoostingClassifier(n_estimators=50, random_state=0).fit(x, y), False),
        (ensemble.HistGradientBoostingClassifier(max_iter=50, random_state=0).fit(x_nan, y), True),
        (xgb, True),
        (lgb, True),
        (xgb.get_booster(), True),
        (lgb.booster_, True),
    ]


def regressors(x: np.ndarray, y: np.ndarray) -> list[object]:
    import lightgbm
    import xgboost
    from sklearn import ensemble

    return [
        ensemble.RandomForestRegressor(30, random_state=0).fit(x, y),
        ensemble.ExtraTreesRegressor(30, random_state=0).fit(x, y),
        ensemble.GradientBoostingRegressor(random_state=0).fit(x, y),
        ensemble.HistGradientBoostingRegressor(random_state=0).fit(x, y),
        xgboost.XGBRegressor(n_estimators=50).fit(x, y),
        lightgbm.LGBMRegressor(n_estimators=50, verbose=-1).fit(x, y),
    ]


def main() -> int:
    from sklearn.datasets import make_classification, make_regression

    generator = np.random.default_rng(1)
    failures = 0

    def report(label: str, model: object, rows: np.ndarray) -> None:
        nonlocal failures
        compiled = forest.compile_model(model)
        same = forest.verified(compiled, rows)
        failures += not same
        print(f"{label:8} {compiled.kind:32} {'identical' if same else 'DIFFERENT'}")

    for classes in (2, 3):
        x, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_classes=classes, random_state=0)
        x_nan = np.where(generator.random(x.shape) < 0.05, np.nan, x)
        rows = np.concatenate([x[:300], generator.normal(scale=3, size=(300, 20))])
        rows_nan = np.where(generator.random(rows.shape) < 0.1, np.nan, rows)
        for model, nan in classifiers(x, x_nan, y):
            report(f"{classes} class", model, rows)
            if nan:
                report(f"{classes} NaN", model, rows_nan)
    x, y = make_regression(n_samples=1000, n_features=20, random_state=0)
    for model in regressors(x, y):
        report("regress", model, generator.normal(size=(500, 20)))
    print(f"{failures} model(s) differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
