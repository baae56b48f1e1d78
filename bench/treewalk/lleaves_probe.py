"""lleaves (LightGBM only, compiled through LLVM) against LightGBM's own predict, in its own venv.

    python -m venv /tmp/lleaves && /tmp/lleaves/bin/pip install lleaves lightgbm scikit-learn
    /tmp/lleaves/bin/python bench/treewalk/lleaves_probe.py MODEL.txt [--cpu 1]

MODEL.txt: bench.py's lightgbm.txt (its --workdir). Prints, in fresh processes, the seconds to compile (no
cache, then from lleaves' cache file) and the memory added over the loaded LightGBM booster, then time
per call on 1 and 100 rows, both predicts taking turns in the same process, and whether the outputs match.
"""

from __future__ import annotations

import argparse
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


def memory_mib() -> dict[str, float]:
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    fields = dict(line.split(":", 1) for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:])
    return {key.lower(): int(fields[key].split()[0]) / 1024 for key in ("Rss", "Pss")}


def probe(model_file: str, cache: str) -> dict:
    import lightgbm
    from sklearn.datasets import make_classification

    booster = lightgbm.Booster(model_file=model_file)
    rows, _ = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    expected = booster.predict(rows, num_threads=1)
    before = memory_mib()
    started = time.perf_counter()
    import lleaves

    model = lleaves.Model(model_file=model_file)
    model.compile(cache=cache)
    same = np.array_equal(model.predict(rows, n_jobs=1), expected)
    seconds = time.perf_counter() - started
    after = memory_mib()
    return {"seconds": seconds, "same": same, "extra": {key: after[key] - before[key] for key in after}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_file")
    parser.add_argument("--cpu", type=int, default=1)
    parser.add_argument("--probe", metavar="CACHE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.model_file, args.probe)))
        return
    cache = Path(tempfile.mkdtemp()) / "lleaves.o"
    command = ["taskset", "-c", str(args.cpu), sys.executable, __file__, args.model_file, "--probe", str(cache)]
    for label in ("no cache", "cached", "cached"):
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"{label:9} compile+verify {result['seconds']:.2f} s, +RSS {result['extra']['rss']:.1f} MiB,"
              f" +PSS {result['extra']['pss']:.1f} MiB, identical: {result['same']}")  # fmt: skip

    import lightgbm
    import lleaves
    from sklearn.datasets import make_classification

    os.sched_setaffinity(0, {args.cpu})
    booster = lightgbm.Booster(model_file=args.model_file)
    model = lleaves.Model(model_file=args.model_file)
    model.compile(cache=str(cache))
    x, _ = make_classification(n_samples=2000, n_features=20, n_informative=10, random_state=0)
    functions = {
        "lightgbm": lambda X: booster.predict(X, num_threads=1),
        "lleaves": lambda X: model.predict(X, n_jobs=1),
    }
    samples: dict[str, dict[int, list[float]]] = {name: {1: [], 100: []} for name in functions}
    for _ in range(5):
        for name, function in functions.items():
            for count in (1, 100):
                rows = np.ascontiguousarray(x[:count])
                number = 2000 if count == 1 else 200
                samples[name][count].append(
                    min(timeit.repeat(lambda f=function, r=rows: f(r), number=number, repeat=3)) / number
                )
    for name, per in samples.items():
        one, hundred = statistics.median(per[1]), statistics.median(per[100])
        base_one, base_hundred = statistics.median(samples["lightgbm"][1]), statistics.median(samples["lightgbm"][100])
        print(f"{name:9} 1 row {one * 1e6:7.1f} µs ({base_one / one:5.2f}× lightgbm), 100 rows {hundred * 1e6:8.1f} µs"
              f" ({base_hundred / hundred:5.2f}×)")  # fmt: skip
    difference = np.abs(model.predict(x, n_jobs=1) - booster.predict(x, num_threads=1)).max()
    print("outputs identical:", difference == 0, f"(max abs difference {difference:.2g})")


if __name__ == "__main__":
    main()
