"""onnxruntime's TreeEnsemble operators (the models converted to ONNX at load) against the libraries' predict.

    python -m venv /tmp/onnx && /tmp/onnx/bin/pip install scikit-learn skl2onnx onnxmltools onnxruntime xgboost-cpu lightgbm
    /tmp/onnx/bin/python bench/treewalk/onnx_probe.py WORKDIR [--cpu 1]

WORKDIR: bench.py's --workdir (its model files). For each model: the conversion's seconds and the memory it
and the session add over the loaded model (fresh process), time per call on 1 and 100 rows (taking turns
with the library's own predict in the same process) and the largest difference of the probabilities.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

import numpy as np

MODELS = ("random-forest", "gradient-boosting", "hist-gradient-boosting", "xgboost", "lightgbm")


def memory_mib() -> dict[str, float]:
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return {key.lower(): int(fields[key].split()[0]) / 1024 for key in ("Rss", "Pss")}


def rows() -> np.ndarray:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)[0]


def load(workdir: Path, name: str):
    """The library's model and its own predict of the positive class's probability."""
    if name == "xgboost":
        import xgboost

        model = xgboost.XGBClassifier()
        model.load_model(workdir / "xgboost.json")
        return model, lambda X: model.predict_proba(X)[:, 1]
    if name == "lightgbm":
        import lightgbm

        booster = lightgbm.Booster(model_file=str(workdir / "lightgbm.txt"))
        return booster, lambda X: booster.predict(X, num_threads=1)
    import joblib

    model = joblib.load(workdir / f"{name}.joblib")
    return model, lambda X: model.predict_proba(X)[:, 1]


def session(model, name: str):
    import onnxruntime

    if name == "xgboost":
        from onnxmltools.convert import convert_xgboost
        from onnxmltools.convert.common.data_types import FloatTensorType

        onnx_model = convert_xgboost(model, initial_types=[("X", FloatTensorType([None, 20]))])
    elif name == "lightgbm":
        from onnxmltools.convert import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        onnx_model = convert_lightgbm(model, initial_types=[("X", FloatTensorType([None, 20]))], zipmap=False)
    else:
        from skl2onnx import to_onnx

        onnx_model = to_onnx(model, rows()[:1].astype(np.float32), options={"zipmap": False})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    ort = onnxruntime.InferenceSession(onnx_model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    output = [o.name for o in ort.get_outputs()][-1]  # the probabilities

    def predict(X: np.ndarray) -> np.ndarray:
        return ort.run([output], {"X": X.astype(np.float32)})[0][:, -1]

    return predict


def probe(workdir: Path, name: str) -> dict:
    model, own = load(workdir, name)
    x = rows()
    expected = own(x)
    before = memory_mib()
    started = time.perf_counter()
    predict = session(model, name)
    difference = float(np.abs(predict(x).astype(np.float64) - expected).max())
    seconds = time.perf_counter() - started
    after = memory_mib()
    return {"seconds": seconds, "difference": difference, "extra": {k: after[k] - before[k] for k in after}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.workdir, args.probe)))
        return
    for name in MODELS:
        command = ["taskset", "-c", str(args.cpu), sys.executable, __file__, str(args.workdir), "--probe", name]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "Error" in line]
            print(f"{name:24} conversion failed: {errors[0] if errors else done.stderr[-300:]}", flush=True)
            continue
        loaded = json.loads(done.stdout.splitlines()[-1])
        os.sched_setaffinity(0, {args.cpu})
        model, own = load(args.workdir, name)
        functions = {"library": own, "onnxruntime": session(model, name)}
        x = rows()
        samples: dict[str, dict[int, list[float]]] = {f: {1: [], 100: []} for f in functions}
        for _ in range(5):
            for label, function in functions.items():
                for count in (1, 100):
                    batch, number = np.ascontiguousarray(x[:count]), 1000 if count == 1 else 100
                    timer = timeit.repeat(lambda f=function, b=batch: f(b), number=number, repeat=3)
                    samples[label][count].append(min(timer) / number)
        one = {f: statistics.median(samples[f][1]) for f in functions}
        hundred = {f: statistics.median(samples[f][100]) for f in functions}
        print(f"{name:24} onnxruntime 1 row {one['onnxruntime'] * 1e6:7.1f} µs ({one['library'] / one['onnxruntime']:6.2f}×"
              f" the library), 100 rows {hundred['onnxruntime'] * 1e6:8.1f} µs"
              f" ({hundred['library'] / hundred['onnxruntime']:5.2f}×); convert+session {loaded['seconds']:.2f} s,"
              f" +RSS {loaded['extra']['rss']:.1f} MiB, +PSS {loaded['extra']['pss']:.1f} MiB,"
              f" max |diff| {loaded['difference']:.2g}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
