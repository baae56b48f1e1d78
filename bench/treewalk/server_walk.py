"""The server's compiled tree walk (mlmodel_server.tree_walk through kernels.build_kernels), measured as it serves.

    .venv/bin/python bench/treewalk/server_walk.py [--workdir DIR] [--repeats 5] [--cpu 1]

For a 100-tree RandomForest (joblib), a 100-tree XGBoost (native JSON) and a 100-tree LightGBM (native text) on
the serving benchmark's data (bench.py's artifacts: 2,000 rows, 20 features), each loaded by the server's own
readers, it prints:
- µs per predict_proba call on 1 and 100 rows: the model's own (what `compiledKernels: false` serves, but for
  the forest, which then gets the numpy walk: also shown), the server's kernel with the compiled walk, and, for
  the forest, numba's walk as the server had it before (compiled_forest.py read from git; when numba imports);
- in fresh processes (median of 3): seconds from the loaded model to the verified kernel (build_kernels: the
  table, the probe rows, the library's and the walk's predictions on them, the comparison) and the RSS and PSS
  that adds over the loaded model;
- seconds from `mlmodel-server serve` starting on a fetched model directory to its first answer on /ready, with
  --compiled-kernels true and false (median of 3; imports included).
Nothing here is a test: the numbers go to the report that changes the walk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402  (the artifacts, timing and memory helpers of the prototype's benchmark)

MODELS = ("random-forest", "xgboost", "lightgbm")
SERVER_BIN = Path(sys.executable).parent / "mlmodel-server"


def load(path: Path):
    """The estimator as the server reads it (native files through native_models), served single-threaded."""
    from mlmodel_server.loading import LOADERS
    from mlmodel_server.predictor import serve_single_threaded

    if path.suffix in (".json", ".txt"):
        estimator = LOADERS["xgboost" if path.suffix == ".json" else "lightgbm"](path)
    else:
        import joblib

        estimator = joblib.load(path)
    serve_single_threaded(estimator)
    return estimator


def kernels(estimator, compiled: bool):
    from mlmodel_server.kernels import build_kernels
    from mlmodel_server.signature import signature_of

    return build_kernels(estimator, signature_of(estimator), compiled=compiled)


def has_numba() -> bool:
    """numba is no longer a dependency: its walk is measured when it is importable (e.g. PYTHONPATH=<a
    `pip install --no-deps --target DIR numba llvmlite`>)."""
    import importlib.util

    return importlib.util.find_spec("numba") is not None


def numba_proba(estimator):
    build_table, table_predictor = bench.numba_walk()
    n_classes = int(estimator.n_classes_)
    walk = table_predictor(build_table([m.tree_ for m in estimator.estimators_], lambda t: t.value[:, 0, :n_classes]))
    return lambda X: walk(np.ascontiguousarray(X, dtype=np.float32))


def probe(name: str, workdir: Path, candidate: str) -> dict:
    """In a fresh process: the loaded model's memory, then what the candidate adds."""
    estimator = load(bench.artifact(name, workdir))
    rows = bench.probe_rows(20)
    expected = estimator.predict_proba(rows)
    before = bench.memory_kib()
    started = time.perf_counter()
    if candidate == "numba":
        proba = numba_proba(estimator)
        fast_kernel = "numba"
    else:
        built = kernels(estimator, compiled=candidate == "compiled")
        proba, fast_kernel = built.predict_proba, built.fast_kernel
    same = bool(np.array_equal(proba(rows), expected))
    seconds = time.perf_counter() - started
    after = bench.memory_kib()
    return {"seconds": seconds, "fast_kernel": fast_kernel, "same": same} | {
        key: after[key] - before[key] for key in after
    }


def fresh(name: str, workdir: Path, candidate: str, cpu: int, runs: int = 3) -> dict:
    command = [
        "taskset",
        "-c",
        str(cpu),
        sys.executable,
        __file__,
        "--probe",
        name,
        candidate,
        "--workdir",
        str(workdir),
    ]
    results = [
        json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout) for _ in range(runs)
    ]
    merged = dict(results[-1])
    for key in ("seconds", "rss", "pss"):
        merged[key] = statistics.median(result[key] for result in results)
    return merged


def timings(name: str, workdir: Path, repeats: int) -> dict[str, dict[str, float]]:
    estimator = load(bench.artifact(name, workdir))
    functions = {"library": estimator.predict_proba, "server compiled": kernels(estimator, True).predict_proba}
    if name == "random-forest":
        functions["server numpy walk"] = kernels(estimator, False).predict_proba
        if has_numba():
            functions["numba (before)"] = numba_proba(estimator)
    x, _ = bench.data()
    batches = {"1": np.ascontiguousarray(x[:1]), "100": np.ascontiguousarray(x[:100])}
    samples: dict[str, dict[str, list[float]]] = {c: {b: [] for b in batches} for c in functions}
    for _ in range(repeats):
        for candidate, function in functions.items():
            for batch, rows in batches.items():
                samples[candidate][batch].append(bench.seconds_per_call(function, rows))
    return {c: {b: statistics.median(v) * 1e6 for b, v in per.items()} for c, per in samples.items()}


def free_port() -> int:
    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        return probe_socket.getsockname()[1]


def ready_seconds(models: Path, compiled: str, cpu: int) -> float:
    port = free_port()
    command = ["taskset", "-c", str(cpu), str(SERVER_BIN), "serve", "--model", str(models), "--name", "m"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--compiled-kernels", compiled]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.perf_counter() - started < 120:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1) as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.02)
        raise TimeoutError("the server did not get ready")
    finally:
        process.terminate()
        process.wait(30)


def fetched(name: str, workdir: Path) -> Path:
    path = bench.artifact(name, workdir)
    models = workdir / f"{name}-models"
    if not (models / "model.json").exists():
        command = [str(SERVER_BIN), "fetch", "--uri", f"file://{path}", "--dest", str(models)]
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        command += ["--termination-message-path", str(workdir / "termination"), "--sha256", sha256]
        subprocess.run(command, check=True, capture_output=True)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mlmodel-server-walk"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "CANDIDATE"))
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe[0], args.workdir, args.probe[1])))
        return
    import os

    os.sched_setaffinity(0, {args.cpu})
    for name in MODELS:
        print(f"== {name}")
        for candidate, per in timings(name, args.workdir, args.repeats).items():
            print(f"  {candidate:20} 1 row {per['1']:9.1f} µs   100 rows {per['100']:9.1f} µs")
        for candidate in ("compiled", "plain") + (("numba",) if name == "random-forest" and has_numba() else ()):
            result = fresh(name, args.workdir, candidate, args.cpu)
            print(
                f"  {candidate:20} build {result['seconds']:.3f} s  +RSS {result['rss'] / 1024:6.1f} MiB"
                f"  +PSS {result['pss'] / 1024:6.1f} MiB  kernel {result['fast_kernel']}  same {result['same']}"
            )
        models = fetched(name, args.workdir)
        for compiled in ("true", "false"):
            seconds = statistics.median(ready_seconds(models, compiled, args.cpu) for _ in range(3))
            print(f"  serve --compiled-kernels {compiled:5}: ready in {seconds:.2f} s")


if __name__ == "__main__":
    main()
