"""Serving benchmark: our model server side by side with the servers a user would pick instead.

    python bench/serving/run.py [--quick] [--models iris,forest,xgboost,lightgbm] [--servers floor,classic,...]

Each server is pinned to CPU 0, wrk to CPU 1; see bench/README.md for what is measured.
Exits 1 when a server could not start or answered wrongly; a missed target is reported, not fatal.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import load
import models
import report
import servers
import venvs
from threadpoolctl import threadpool_info

DEFAULT_WORKDIR = venvs.CACHE_ROOT.parent / "bench-work"
ANCHOR_VENV = {
    "floor": "classic",
    "floor-granian": "classic",
    "classic": "classic",
    "mlserver": "mlserver",
    "mlserver-batch": "mlserver",
    "kserve": "kserve",
}
VERSION_PACKAGES = {
    "classic": ("flask", "gunicorn", "granian", "scikit-learn", "numpy"),
    "mlserver": (
        "mlserver",
        "mlserver-sklearn",
        "mlserver-xgboost",
        "mlserver-lightgbm",
        "scikit-learn",
        "xgboost-cpu",
        "lightgbm",
        "numpy",
        "uvloop",
    ),
    "kserve": ("kserve", "scikit-learn", "xgboost-cpu", "lightgbm", "numpy", "uvicorn"),
}
OUR_PACKAGES = (
    "mlmodel-operator",
    "scikit-learn",
    "xgboost-cpu",
    "lightgbm",
    "numpy",
    "flask",
    "gunicorn",
    "httptools",
    "granian",
)
MEMORY_WORKERS = (1, 4)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run of 2 s after 1 s of warmup per point")
    parser.add_argument(
        "--models", default=",".join(models.MODELS), help=f"comma-separated, from: {', '.join(models.MODELS)}"
    )
    parser.add_argument(
        "--servers",
        default=",".join(servers.ALL_SERVERS),
        help=f"comma-separated, from: {', '.join(servers.ALL_SERVERS)}",
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes for every server (default 1)")
    parser.add_argument("--runs", type=int, help="runs per point, median reported (default 3, quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 5, quick 2)")
    parser.add_argument("--warmup", type=float, help="warmup seconds per point (default 2, quick 1)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="model files, logs, scripts")
    parser.add_argument("--out", type=Path, help="results JSON (default WORKDIR/results-<time>.json)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.models = [m for m in args.models.split(",") if m]
    args.servers = [s for s in args.servers.split(",") if s]
    unknown = set(args.servers) - set(servers.ALL_SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    unknown = set(args.models) - set(models.MODELS)
    if unknown:
        parser.error(f"unknown models: {', '.join(sorted(unknown))}")
    return args


def blas_kernels() -> list[str]:
    return [
        f"{i['internal_api']} {i.get('version')} {i.get('architecture')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]


Started = dict[str, tuple[servers.Launch, "subprocess.Popen[bytes]"]]


def measure_model(
    model: models.BenchModel, args: argparse.Namespace, wrk: str, failures: list[str]
) -> tuple[dict[str, dict[str, load.Measurement]], dict[str, int]]:
    """Every server for one model, all started at once, every scenario measured in rounds (see
    measure_scenario), then the PSS of each server's process tree."""
    points: dict[str, dict[str, load.Measurement]] = {}
    with ExitStack() as stack:
        started: Started = {}
        for server in args.servers:
            if not servers.serves(server, model):
                print(f"  {server:<15}does not serve {model.kind} model files: not run for {model.name}", flush=True)
                continue
            launch = servers.plan(server, model, args.workdir, args.workers)
            try:
                process = stack.enter_context(
                    servers.running(launch, args.workdir / "logs" / f"{model.name}-{server}.log")
                )
                servers.check(launch)
            except servers.ServerError as error:
                failures.append(str(error))
                print(f"FAILED {error}", file=sys.stderr, flush=True)
                continue
            started[server] = (launch, process)
            points[server] = {}
        for scenario in load.SCENARIOS:
            for server, point in measure_scenario(scenario, started, model, args, wrk).items():
                points[server][scenario.key] = point
                p99 = "-" if point.p99_ms is None else f"{point.p99_ms:.1f} ms"
                print(
                    f"  {server:<15}{scenario.key:<11}{point.req_per_s:>9,.0f} req/s {point.rows_per_s:>10,.0f} rows/s "
                    f"{point.req_per_cpu_s:>9,.0f} req/cpu-s p99 {p99} errors {point.errors}",
                    flush=True,
                )
        return points, {server: servers.pss_kib(process.pid) for server, (_, process) in started.items()}


def measure_scenario(
    scenario: load.Scenario, started: Started, model: models.BenchModel, args: argparse.Namespace, wrk: str
) -> dict[str, load.Measurement]:
    """A warmup run per server, then rounds in which every server gets one run, in an order that rotates
    from round to round, so that whatever else the machine does weighs on all servers alike."""
    plans = {}
    for server, (launch, _) in started.items():
        request = launch.batch if scenario.batch else launch.single
        if request is not None:
            script = load.write_script(request, args.workdir / "scripts", f"{model.name}-{server}-{scenario.key}")
            plans[server] = (launch.base_url, script, request.rows)
    if args.warmup > 0:
        for url, script, _ in plans.values():
            load.run_once(wrk, url, script, scenario.concurrency, args.warmup)
    samples: dict[str, list[dict[str, float]]] = {server: [] for server in plans}
    order = list(plans)
    for round_ in range(args.runs):
        shift = round_ % len(order)
        for server in order[shift:] + order[:shift]:
            url, script, _ = plans[server]
            pid = started[server][1].pid
            cpu_before = servers.cpu_seconds(pid)
            sample: dict[str, float] = load.run_once(wrk, url, script, scenario.concurrency, args.duration)
            sample["cpu_s"] = servers.cpu_seconds(pid) - cpu_before
            samples[server].append(sample)
    return {
        server: load.summarize(samples[server], rows, scenario.concurrency) for server, (_, _, rows) in plans.items()
    }


def measure_memory(model: models.BenchModel, args: argparse.Namespace, wrk: str) -> dict[int, int]:
    """PSS of our server's process tree with 1 and with 4 workers, after every worker has served load."""
    memory: dict[int, int] = {}
    for workers in MEMORY_WORKERS:
        launch = servers.plan(servers.OURS, model, args.workdir, workers)
        with servers.running(launch, args.workdir / "logs" / f"ours-memory-{workers}.log") as process:
            script = load.write_script(launch.single, args.workdir / "scripts", f"ours-memory-{workers}")
            load.run_once(wrk, launch.base_url, script, 8, max(2.0, args.warmup))
            memory[workers] = servers.pss_kib(process.pid)
        print(f"  ours forest, {workers} worker(s): PSS {memory[workers] / 1024:.0f} MiB", flush=True)
    return memory


def load_average() -> str:
    """The machine's 1, 5 and 15 minute load averages: how much else ran beside the benchmark."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def environment(args: argparse.Namespace) -> dict[str, object]:
    versions = {
        name: venvs.installed_versions(venvs.anchor_specs()[name], packages)
        for name, packages in VERSION_PACKAGES.items()
        if any(ANCHOR_VENV.get(s) == name for s in args.servers)
    }
    versions["ours"] = {p: metadata.version(p) for p in OUR_PACKAGES}
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_start": load_average(),
        "cpus": {"server": servers.SERVER_CPU, "load": load.LOAD_CPU},
        "blas": blas_kernels(),
        "openblas_env": {k: os.environ.get(k, "unset") for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "versions": versions,
        "workers": args.workers,
        "runs": args.runs,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so every server is stopped
    started = time.monotonic()
    wrk = load.ensure_wrk()
    for name in sorted({ANCHOR_VENV[s] for s in args.servers if s in ANCHOR_VENV}):
        venvs.ensure(venvs.anchor_specs()[name])
    meta = environment(args)
    print(
        f"BLAS: {'; '.join(meta['blas'])}; OPENBLAS_CORETYPE={meta['openblas_env']['OPENBLAS_CORETYPE']} "
        f"OPENBLAS_L2_SIZE={meta['openblas_env']['OPENBLAS_L2_SIZE']}"
    )
    for name, found in meta["versions"].items():
        print(f"{name}: {' '.join(f'{k}=={v}' for k, v in found.items())}")

    results: report.Results = {}
    pss: dict[str, dict[str, int]] = {}
    in_process: dict[str, dict[str, dict[str, float]]] = {}
    memory: dict[int, int] = {}
    failures: list[str] = []
    for model_name in args.models:
        model = models.build(model_name, args.workdir)
        in_process[model_name] = models.floors(model, int(servers.SERVER_CPU))
        print(f"[{model_name}] {model.path}", flush=True)
        results[model_name], pss[model_name] = measure_model(model, args, wrk, failures)
        if model_name == "forest" and servers.OURS in args.servers:
            try:
                memory = measure_memory(model, args, wrk)
            except servers.ServerError as error:
                failures.append(str(error))
                print(f"FAILED {error}", file=sys.stderr, flush=True)

    meta["elapsed_s"] = round(time.monotonic() - started)
    meta["load_average_end"] = load_average()
    print()
    for model_name in args.models:
        print(report.table(model_name, results, pss[model_name], in_process[model_name]) + "\n")
    found = report.targets(results, memory)
    print(report.ratios(found))
    out = args.out or args.workdir / f"results-{datetime.now():%Y%m%d-%H%M%S}.json"
    report.write_json(out, meta, results, pss, in_process, memory, found, failures)
    print(
        f"\nresults: {out} (elapsed {meta['elapsed_s']} s; load average {meta['load_average_start']} at the start, "
        f"{meta['load_average_end']} at the end)"
    )
    if failures:
        print(f"{len(failures)} server(s) failed to start or answered wrongly", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
