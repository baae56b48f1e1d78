"""Micro-benchmark of compiled tree walks against each library's own predict, measured in the same run.

    python bench/treewalk/bench.py [--workdir DIR] [--repeats 5] [--cpu 1] [--out results.json]

Trains six 100-tree binary classifiers on the serving benchmark's data (make_classification, 2000 rows,
20 features, seed 0): RandomForest, ExtraTrees, GradientBoosting, HistGradientBoosting, XGBoost (native JSON)
and LightGBM (native text). For each model and candidate (the library's own predict, the prototype walk.c
through forest.py (both read from git, as of f27e6d0), treelite's GTIL, numba's compiled_forest.py (read from git, as of ef24a87) for the two forests) it prints:
- time per call on 1 row and on 100 rows (best of each round, median over rounds; the candidates take
  turns in every round, so background load weighs on all of them alike) and the ratio to the library's;
- whether the outputs equal the library's bit for bit on probe rows (else the largest difference);
- in fresh processes (median of 3): for the library, the seconds from the artifact on disk to its first
  prediction (its import included); for a candidate, the seconds it adds from there to its first checked
  prediction, and the memory (RSS, PSS) it adds over the library's own loaded model.
Needs numpy, scikit-learn, xgboost, lightgbm, treelite and numba in the running Python, and a C compiler.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

MODELS = ("random-forest", "extra-trees", "gradient-boosting", "hist-gradient-boosting", "xgboost", "lightgbm")
FORESTS = ("random-forest", "extra-trees")
SEED = 0


def data() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=SEED)


def artifact(name: str, workdir: Path) -> Path:
    """Train (once) and save the model the way a user ships it: joblib for scikit-learn, native files else."""
    suffix = {"xgboost": ".json", "lightgbm": ".txt"}.get(name, ".joblib")
    path = workdir / f"{name}{suffix}"
    if path.exists():
        return path
    workdir.mkdir(parents=True, exist_ok=True)
    x, y = data()
    if name == "xgboost":
        import xgboost

        xgboost.XGBClassifier(n_estimators=100, random_state=SEED).fit(x, y).get_booster().save_model(path)
    elif name == "lightgbm":
        import lightgbm

        lightgbm.LGBMClassifier(n_estimators=100, random_state=SEED, verbose=-1).fit(x, y).booster_.save_model(path)
    else:
        import joblib
        from sklearn import ensemble

        estimator = {
            "random-forest": ensemble.RandomForestClassifier(n_estimators=100, random_state=SEED),
            "extra-trees": ensemble.ExtraTreesClassifier(n_estimators=100, random_state=SEED),
            "gradient-boosting": ensemble.GradientBoostingClassifier(n_estimators=100, random_state=SEED),
            "hist-gradient-boosting": ensemble.HistGradientBoostingClassifier(
                max_iter=100, early_stopping=False, random_state=SEED
            ),
        }[name]
        joblib.dump(estimator.fit(x, y), path)
    return path


def load_library(path: Path):
    """The model as the library loads it, and the library's own fastest predict of probabilities."""
    if path.suffix == ".json":
        import xgboost

        booster = xgboost.Booster(model_file=str(path))
        booster.set_param({"nthread": 1})
        return booster, booster.inplace_predict
    if path.suffix == ".txt":
        import lightgbm

        booster = lightgbm.Booster(model_file=str(path))
        return booster, lambda X: booster.predict(X, num_threads=1)
    import joblib

    model = joblib.load(path)
    return model, model.predict_proba


def candidate_predictor(candidate: str, model, path: Path):
    """Build the candidate's predictor from the loaded model (or from the artifact, for treelite)."""
    if candidate == "walk.c":
        return prototype_forest().compile_model(model).predict
    if candidate == "gtil":
        import treelite

        if path.suffix == ".json":
            tl_model = treelite.frontend.load_xgboost_model(str(path))
        elif path.suffix == ".txt":
            tl_model = treelite.frontend.load_lightgbm_model(str(path))
        else:
            tl_model = treelite.sklearn.import_model(model)

        def gtil(X):
            return treelite.gtil.predict(tl_model, X, nthread=1)

        return gtil
    if candidate in ("numba", "numba-cache"):
        build_table, table_predictor = numba_walk(path.parent / "numba-cache" if candidate == "numba-cache" else None)
        n_classes = int(model.n_classes_)
        walk = table_predictor(build_table([m.tree_ for m in model.estimators_], lambda t: t.value[:, 0, :n_classes]))
        return lambda X: walk(np.ascontiguousarray(X, dtype=np.float32))
    raise ValueError(candidate)


def numba_walk(cache_in: Path | None = None):
    """mlmodel_server.compiled_forest's build_table and table_predictor, from a copy of the module with two
    changes: its build_table zips the trees with one leaf offset too many under strict=True since 2c271ef
    (it raises, and kernels.py then falls back to the numpy walk), fixed here; and with `cache_in`, its
    kernels compiled with numba's on-disk cache (cache=True) in that directory. That cache misses every time
    (NUMBA_DEBUG_CACHE=1: a new index entry per process), since the kernels are closures of compiled_walk()."""
    import importlib.util

    source = git_file(NUMBA_WALK_COMMIT, "server/mlmodel_server/compiled_forest.py")
    source = source.replace("counts, leaf_rows, strict=True)", "counts, leaf_rows[:-1], strict=True)")
    name = "compiled_forest_copy"
    if cache_in is not None:
        os.environ["NUMBA_CACHE_DIR"] = str(cache_in)
        source = source.replace('inline="always")', 'inline="always", cache=True)')
        source = source.replace("boundscheck=False)", "boundscheck=False, cache=True)")
        name = "compiled_forest_cached"
    directory = (cache_in or Path(tempfile.gettempdir()) / "mlmodel-treewalk-numba") / "module"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.py"
    if not path.exists() or path.read_text() != source:
        path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_table, module.table_predictor


# compiled_forest.py as it was when numba still walked the forests (the C walk replaced it)
NUMBA_WALK_COMMIT = "ef24a87"
# The prototype this benchmark chose the C walk with (forest.py and walk.c), before the server got its own
# (server/mlmodel_server/tree_walk.py and _treewalk.c; bench/treewalk/server_walk.py measures those).
PROTOTYPE_COMMIT = "f27e6d0"


def prototype_forest():
    """The prototype's forest.py (with its walk.c beside it), read from git."""
    import importlib.util

    directory = Path(tempfile.gettempdir()) / "mlmodel-treewalk-prototype"
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("forest.py", "walk.c"):
        source = git_file(PROTOTYPE_COMMIT, f"bench/treewalk/{name}")
        path = directory / name
        if not path.exists() or path.read_text() != source:
            path.write_text(source)
    spec = importlib.util.spec_from_file_location("forest_prototype", directory / "forest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def git_file(commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(HERE.parents[1]), "show", f"{commit}:{path}"], check=True, capture_output=True, text=True
    ).stdout


def candidates_for(name: str) -> tuple[str, ...]:
    return ("walk.c", "gtil", "numba", "numba-cache") if name in FORESTS else ("walk.c", "gtil")


def probe_rows(n_features: int) -> np.ndarray:
    x, _ = data()
    generator = np.random.default_rng(1)
    return np.concatenate([x[:500], generator.normal(scale=3, size=(500, n_features))])


def difference(ours: np.ndarray, theirs: np.ndarray) -> str:
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape == theirs.shape and ours.dtype == theirs.dtype and np.array_equal(ours, theirs):
        return "identical"
    ours, theirs = ours.reshape(len(theirs), -1).astype(np.float64), theirs.reshape(len(theirs), -1)
    if ours.shape[1] != theirs.shape[1]:  # one column of a binary model's probabilities against two
        ours, theirs = ours[:, -1:], theirs[:, -1:]
    if np.array_equal(ours, theirs):
        return "equal values (other shape or dtype)"
    return f"max |diff| {np.abs(ours - theirs).max():.2g}"


def memory_kib() -> dict[str, int]:
    """This process's RSS and PSS, after giving freed heap back (so a build's garbage does not count)."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return {"rss": fields["Rss"], "pss": fields["Pss"]}


def probe(name: str, candidate: str, workdir: Path) -> dict:
    """In a fresh process: artifact → library model → (candidate built and checked) → first prediction."""
    path = artifact(name, workdir)
    started = time.perf_counter()
    model, own = load_library(path)
    rows = probe_rows(20)
    expected = own(rows)
    loaded = time.perf_counter() - started
    before = memory_kib()
    result = {"library_seconds": loaded, "library": before}
    if candidate != "library":
        started = time.perf_counter()
        predict = candidate_predictor(candidate, model, path)
        result["same"] = difference(predict(rows), expected)
        result["candidate_seconds"] = time.perf_counter() - started
        after = memory_kib()
        result["extra"] = {key: after[key] - before[key] for key in after}
    return result


def fresh_probe(name: str, candidate: str, workdir: Path, cpu: int, runs: int = 3) -> dict:
    """probe() in `runs` fresh processes: the median of each number (the last run's outputs check)."""
    command = ["taskset", "-c", str(cpu), sys.executable, __file__, "--probe", name, candidate]
    command += ["--workdir", str(workdir)]
    results = []
    for _ in range(runs):
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.splitlines()[-1]))
    merged = dict(results[-1])
    for key in ("library_seconds", "candidate_seconds"):
        if key in merged:
            merged[key] = statistics.median(result[key] for result in results)
    for key in ("library", "extra"):
        if key in merged:
            merged[key] = {field: statistics.median(result[key][field] for result in results) for field in merged[key]}
    return merged


def seconds_per_call(function, rows: np.ndarray, target: float = 0.05) -> float:
    number = max(1, int(target / max(timeit.timeit(lambda: function(rows), number=3) / 3, 1e-7)))
    return min(timeit.repeat(lambda: function(rows), number=number, repeat=3)) / number


def timings(name: str, workdir: Path, repeats: int) -> dict[str, dict[str, float]]:
    path = artifact(name, workdir)
    model, own = load_library(path)
    functions = {"library": own} | {c: candidate_predictor(c, model, path) for c in candidates_for(name)}
    x, _ = data()
    batches = {"1": np.ascontiguousarray(x[:1]), "100": np.ascontiguousarray(x[:100])}
    samples: dict[str, dict[str, list[float]]] = {c: {b: [] for b in batches} for c in functions}
    for _ in range(repeats):
        for candidate, function in functions.items():  # every round runs each candidate once: same background load
            for batch, rows in batches.items():
                samples[candidate][batch].append(seconds_per_call(function, rows))
    return {c: {b: statistics.median(v) for b, v in per.items()} for c, per in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache/mlmodel-operator/bench-work/treewalk")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cpu", type=int, default=1, help="the CPU every measurement is pinned to")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path)
    parser.add_argument("--probe", nargs=2, metavar=("MODEL", "CANDIDATE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(*args.probe, args.workdir)))
        return
    os.sched_setaffinity(0, {args.cpu})
    results = {}
    print(f"{'model':24} {'candidate':8} {'1 row µs':>9} {'×lib':>6} {'100 rows µs':>12} {'×lib':>6}"
          f" {'load s':>7} {'+RSS MiB':>9} {'+PSS MiB':>9}  outputs")  # fmt: skip
    for name in args.models.split(","):
        times = timings(name, args.workdir, args.repeats)
        results[name] = {}
        for candidate, per_batch in times.items():
            loaded = fresh_probe(name, candidate, args.workdir, args.cpu)
            results[name][candidate] = {"seconds_per_call": per_batch, **loaded}
            library = times["library"]
            # the library's row: artifact → loaded → first prediction; a candidate's: what it adds to that
            ready = loaded.get("candidate_seconds", loaded["library_seconds"])
            extra = loaded.get("extra", {"rss": 0, "pss": 0})
            print(
                f"{name:24} {candidate:8} {per_batch['1'] * 1e6:9.1f} {library['1'] / per_batch['1']:6.2f}"
                f" {per_batch['100'] * 1e6:12.1f} {library['100'] / per_batch['100']:6.2f} {ready:7.2f}"
                f" {extra['rss'] / 1024:9.1f} {extra['pss'] / 1024:9.1f}  {loaded.get('same', '(reference)')}",
                flush=True,
            )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
