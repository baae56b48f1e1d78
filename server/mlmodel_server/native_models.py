"""XGBoost and LightGBM model files, loaded into objects with the surface the predictor reads from a scikit-learn
estimator: predict, predict_proba (classifiers only), classes_, n_features_in_ and, when the file names its
columns, feature_names_in_.

Both readers parse data and run nothing from the file. The file must start like the format's own files
(mlmodel_contract.artifacts.format_from_content) before its library sees it, so a misnamed .json or .txt gets
one clear line instead of the library's parser error.

XGBoost: the library's own scikit-learn wrapper reads the file (XGBClassifier or XGBRegressor, from the
recorded scikit-learn estimator type or the objective), so predict and predict_proba are the library's own.
LightGBM: a native file keeps no class labels, so a classifier's classes are 0..k-1 and its predict_proba is
what LGBMClassifier.predict_proba computes from the booster ([1 - p, p] for binary objectives).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlmodel_contract.artifacts import CONTENT_HEAD_BYTES, LIGHTGBM, XGBOOST, format_from_content

_XGBOOST_CLASSIFIER_OBJECTIVES = ("binary:", "multi:")
_LIGHTGBM_CLASSIFIER_OBJECTIVES = frozenset({"binary", "multiclass", "multiclassova"})
_LIGHTGBM_DEFAULT_NAME = "Column_"  # what LightGBM names columns it was given no names for
_MAX_LIBRARY_MESSAGE = 300


class NotThisFormat(ValueError):
    """The file does not start like a file of the format it was named as."""


class LibraryRefused(ValueError):
    """The format's library could not read the file; the message is its first line, shortened."""


def check_start(path: Path, model_format: str, expected: str) -> bytes:
    data = path.read_bytes()
    if format_from_content(data[:CONTENT_HEAD_BYTES]) != model_format:
        raise NotThisFormat(f"{path.name} is not a {model_format} model file: {expected}")
    return data


def library_message(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= _MAX_LIBRARY_MESSAGE else text[:_MAX_LIBRARY_MESSAGE] + "…"


def load_xgboost(path: Path) -> Any:
    data = check_start(
        path, XGBOOST, 'XGBoost JSON and UBJSON model files start with an object whose first key is "learner"'
    )
    import xgboost

    probe = xgboost.Booster()
    try:
        probe.load_model(bytearray(data))
    except xgboost.core.XGBoostError as error:
        raise LibraryRefused(f"XGBoost cannot read {path.name}: {library_message(error)}") from None
    model = xgboost.XGBClassifier() if xgboost_is_classifier(probe) else xgboost.XGBRegressor()
    model.load_model(bytearray(data))
    model.get_booster().set_param({"nthread": 1})  # one native thread per call: see predictor.serve_single_threaded
    return model


def xgboost_is_classifier(booster: Any) -> bool:
    """The estimator type XGBClassifier.save_model records; for a plain Booster's file, its objective."""
    recorded = booster.attr("scikit_learn")
    if recorded:
        try:
            return json.loads(recorded).get("_estimator_type") == "classifier"
        except (ValueError, AttributeError):
            pass
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    return str(objective).startswith(_XGBOOST_CLASSIFIER_OBJECTIVES)


def lightgbm_header(text: str) -> dict[str, str]:
    """The `key=value` lines before the first blank line of a LightGBM text model file."""
    header: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        if not line.strip():
            break
        key, _, value = line.partition("=")
        header[key] = value
    return header


def load_lightgbm(path: Path) -> Any:
    data = check_start(path, LIGHTGBM, "LightGBM text model files start with the line `tree`, then `version=v…`")
    import lightgbm

    text = data.decode("utf-8", errors="replace")
    refusal = lightgbm_refusal_in_a_child(path)
    if refusal is not None:
        raise LibraryRefused(f"LightGBM cannot read {path.name}: {refusal}")
    booster = lightgbm.Booster(model_str=text)
    objective = lightgbm_header(text).get("objective", "").split(" ")[0]
    if objective in _LIGHTGBM_CLASSIFIER_OBJECTIVES:
        return LightGBMClassifier(booster)
    return LightGBMRegressor(booster)


# Run by a fresh interpreter (-I -S: no site, nothing of the parent): LightGBM's C API reads the file.
_LIGHTGBM_PROBE = """
import ctypes, sys
library = ctypes.CDLL(sys.argv[1])
library.LGBM_GetLastError.restype = ctypes.c_char_p
handle, iterations = ctypes.c_void_p(), ctypes.c_int()
if library.LGBM_BoosterCreateFromModelfile(sys.argv[2].encode(), ctypes.byref(iterations), ctypes.byref(handle)):
    sys.stderr.write(library.LGBM_GetLastError().decode(errors="replace"))
    sys.exit(1)
"""


def lightgbm_refusal_in_a_child(path: Path) -> str | None:
    """Parse the model in a child process first: LightGBM parses trees in an OpenMP loop whose errors (a truncated
    or edited file) abort the whole process ("terminate called"), which would leave a crash loop without a
    reason. A fresh interpreter, not a fork: a forked child inherits the parent's OpenMP pool, if it has one,
    and can hang in it. It loads the very library the parent loaded, through ctypes (about 0.1 s, where
    importing the lightgbm package takes over a second). None when the child read it; else LightGBM's message,
    or the signal that ended the child."""
    import lightgbm.basic

    library = lightgbm.basic._LIB._name  # the parent's own lib_lightgbm
    probe = [sys.executable, "-I", "-S", "-c", _LIGHTGBM_PROBE, library, str(path)]
    result = subprocess.run(probe, capture_output=True, text=True, errors="replace", check=False)
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        return f"the reader aborted (signal {name}): the file is truncated or damaged"
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        message = lines[-1] if lines else f"the reader failed with exit status {result.returncode}"
        return message if len(message) <= _MAX_LIBRARY_MESSAGE else message[:_MAX_LIBRARY_MESSAGE] + "…"
    return None


class LightGBMRegressor:
    """A LightGBM booster as a regressor: predict is Booster.predict."""

    def __init__(self, booster: Any):
        self.booster = booster
        self.n_features_in_ = int(booster.num_feature())
        names = [str(name) for name in booster.feature_name()]
        if names != [f"{_LIGHTGBM_DEFAULT_NAME}{index}" for index in range(len(names))]:
            self.feature_names_in_ = np.array(names, dtype=object)

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self.booster.predict(X, num_threads=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.scores(X)


class LightGBMClassifier(LightGBMRegressor):
    """A LightGBM booster with a classification objective, as LGBMClassifier serves it (classes 0..k-1)."""

    def __init__(self, booster: Any):
        super().__init__(booster)
        self.classes_ = np.arange(max(2, int(booster.num_model_per_iteration())))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        scores = self.scores(X)
        if scores.ndim == 1:  # binary objectives give the positive class's probability
            return np.vstack((1.0 - scores, scores)).transpose()
        return scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_both(X)[0]

    def predict_both(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities from one pass over the trees (the kernels use it when both are asked for)."""
        probabilities = self.predict_proba(X)
        return self.classes_.take(np.argmax(probabilities, axis=1)), probabilities


LOADERS = {XGBOOST: load_xgboost, LIGHTGBM: load_lightgbm}
