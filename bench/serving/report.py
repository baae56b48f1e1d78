"""The printed tables, the RATIOS section (targets against the anchors of the same run) and the JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from load import BATCH_C8, SCENARIOS, SINGLE_C8, SINGLE_C64, Measurement
from models import BATCH_ROWS
from servers import ANCHORS, FLOOR, OURS, OURS_GUNICORN

# results[model][server][scenario key]
Results = dict[str, dict[str, dict[str, Measurement]]]


@dataclass(frozen=True)
class Target:
    label: str
    measured: str
    goal: str
    passed: bool | None  # None: a server it needs was not measured

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else "PASS" if self.passed else "MISS"


def _ms(value: float | None) -> str:
    return f"{'-':>9}" if value is None else f"{value:>9.2f}"


def table(model: str, results: Results, pss_kib: dict[str, int], in_process_s: dict[str, dict[str, float]]) -> str:
    lines = [f"== {model} =="]
    for call, seconds in in_process_s.items():
        one, batch = seconds["1"], seconds[str(BATCH_ROWS)]
        lines.append(
            f"in-process {call}: 1 row {one * 1e6:.1f} us ({1 / one:,.0f} calls/s), "
            f"{BATCH_ROWS} rows {batch * 1e6:.1f} us ({BATCH_ROWS / batch:,.0f} rows/s)"
        )
    lines += [
        f"{'server':<15}{'scenario':<11}{'req/s':>10}{'rows/s':>11}{'req/cpu-s':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'PSS MiB':>9}",
    ]
    for server, points in results.get(model, {}).items():
        pss = f"{pss_kib[server] / 1024:.0f}" if server in pss_kib else "-"
        for scenario in SCENARIOS:
            m = points.get(scenario.key)
            if m is None:
                continue
            lines.append(
                f"{server:<15}{scenario.key:<11}{m.req_per_s:>10,.0f}{m.rows_per_s:>11,.0f}{m.req_per_cpu_s:>11,.0f}"
                f"{_ms(m.p50_ms)}{_ms(m.p99_ms)}{m.errors:>8}{pss:>9}"
            )
    return "\n".join(lines)


def _best_anchor(results: Results, model: str, scenario: str) -> tuple[str, Measurement] | None:
    measured = [(s, p[scenario]) for s, p in results.get(model, {}).items() if s in ANCHORS and scenario in p]
    return max(measured, key=lambda item: item[1].rows_per_s, default=None)


def _point(results: Results, model: str, server: str, scenario: str) -> Measurement | None:
    return results.get(model, {}).get(server, {}).get(scenario)


def _speedup(results: Results, model: str, scenario: str, goal: float, server: str = OURS) -> Target:
    unit = "rows/s" if scenario == BATCH_C8 else "req/s"
    label = f"{model} {scenario} {unit}{'' if server == OURS else ', ' + server} vs best anchor"
    ours, best = _point(results, model, server, scenario), _best_anchor(results, model, scenario)
    if ours is None or best is None:
        return Target(label, "-", f">= {goal}x", None)
    ratio = ours.rows_per_s / best[1].rows_per_s
    return Target(
        label,
        f"{ratio:.2f}x ({ours.rows_per_s:,.0f} vs {best[0]} {best[1].rows_per_s:,.0f})",
        f">= {goal}x",
        ratio >= goal,
    )


def _stack_against_gunicorn(results: Results, model: str, scenario: str, goal: float, server: str = OURS) -> Target:
    """Ours on another HTTP stack (the default, eventloop, unless `server` names one) against ours on gunicorn's
    gthread worker (the server before the eventloop worker), same run, same settings otherwise."""
    unit = "rows/s" if scenario == BATCH_C8 else "req/s"
    label = f"{model} {scenario} {unit}, {server} vs {OURS_GUNICORN}"
    new, old = _point(results, model, server, scenario), _point(results, model, OURS_GUNICORN, scenario)
    if new is None or old is None or old.rows_per_s == 0:
        return Target(label, "-", f">= {goal}x", None)
    ratio = new.rows_per_s / old.rows_per_s
    cpu = f", per CPU s {new.req_per_cpu_s / old.req_per_cpu_s:.2f}x" if new.req_per_cpu_s and old.req_per_cpu_s else ""
    return Target(
        label, f"{ratio:.2f}x ({new.rows_per_s:,.0f} vs {old.rows_per_s:,.0f}{cpu})", f">= {goal}x", ratio >= goal
    )


def _p99_against_gunicorn(results: Results) -> Target:
    label = f"forest {SINGLE_C64} p99, {OURS} vs {OURS_GUNICORN}"
    new, old = _point(results, "forest", OURS, SINGLE_C64), _point(results, "forest", OURS_GUNICORN, SINGLE_C64)
    if new is None or old is None or new.p99_ms is None or old.p99_ms is None:
        return Target(label, "-", "no higher", None)
    return Target(label, f"{new.p99_ms:.1f} ms vs {old.p99_ms:.1f} ms", "no higher", new.p99_ms <= old.p99_ms)


def _no_errors(results: Results) -> Target:
    points = [p for by_server in results.values() for p in by_server.get(OURS, {}).values()]
    errors = sum(p.errors for p in points)
    return Target(
        "ours: errors over every point", "-" if not points else str(errors), "0", None if not points else errors == 0
    )


def _c64_quality(results: Results) -> list[Target]:
    ours = _point(results, "forest", OURS, SINGLE_C64)
    clean = [
        (s, p[SINGLE_C64])
        for s, p in results.get("forest", {}).items()
        if s in ANCHORS and SINGLE_C64 in p and p[SINGLE_C64].errors == 0 and p[SINGLE_C64].p99_ms is not None
    ]
    errors = Target(
        f"forest {SINGLE_C64} errors",
        "-" if ours is None else str(ours.errors),
        "0",
        None if ours is None else ours.errors == 0,
    )
    label, goal = f"forest {SINGLE_C64} p99 vs lowest error-free anchor p99", "lower"
    if ours is None or ours.p99_ms is None or not clean:
        return [errors, Target(label, "-", goal, None)]
    name, best = min(clean, key=lambda item: item[1].p99_ms)
    return [
        errors,
        Target(label, f"{ours.p99_ms:.1f} ms vs {name} {best.p99_ms:.1f} ms", goal, ours.p99_ms < best.p99_ms),
    ]


def _floor_share(results: Results, model: str) -> Target:
    label = f"{model} {SINGLE_C8} vs constant-response floor"
    ours, floor = _point(results, model, OURS, SINGLE_C8), _point(results, model, FLOOR, SINGLE_C8)
    if ours is None or floor is None:
        return Target(label, "-", ">= 70%", None)
    share = ours.req_per_s / floor.req_per_s
    return Target(label, f"{share:.0%} ({ours.req_per_s:,.0f} vs {floor.req_per_s:,.0f})", ">= 70%", share >= 0.7)


def _memory(memory_kib: dict[int, int]) -> Target:
    label = "forest PSS, 4 workers vs 1 worker"
    if 1 not in memory_kib or 4 not in memory_kib:
        return Target(label, "-", "<= 1.5x", None)
    ratio = memory_kib[4] / memory_kib[1]
    measured = f"{ratio:.2f}x ({memory_kib[4] / 1024:.0f} vs {memory_kib[1] / 1024:.0f} MiB)"
    return Target(label, measured, "<= 1.5x", ratio <= 1.5)


def targets(results: Results, memory_kib: dict[int, int]) -> list[Target]:
    return [
        _speedup(results, "forest", SINGLE_C8, 5),
        _speedup(results, "forest", SINGLE_C64, 3),
        *_c64_quality(results),
        _speedup(results, "forest", BATCH_C8, 5),
        _speedup(results, "iris", SINGLE_C8, 1.6),
        _speedup(results, "iris", BATCH_C8, 1.5),
        # issue 15: gradient-boosted trees in their libraries' own files
        _speedup(results, "xgboost", SINGLE_C8, 5),
        _speedup(results, "xgboost", BATCH_C8, 5),
        _speedup(results, "lightgbm", SINGLE_C8, 5),
        _speedup(results, "lightgbm", BATCH_C8, 5),
        _floor_share(results, "iris"),
        _floor_share(results, "forest"),
        _memory(memory_kib),
        # issue 16: the HTTP stack, the default (eventloop) against the gthread server it replaced
        _stack_against_gunicorn(results, "iris", SINGLE_C8, 2.5),
        _stack_against_gunicorn(results, "iris", SINGLE_C64, 2.5),
        _speedup(results, "iris", SINGLE_C8, 6),
        _speedup(results, "iris", SINGLE_C64, 6),
        _stack_against_gunicorn(results, "forest", SINGLE_C8, 2),
        _stack_against_gunicorn(results, "forest", SINGLE_C64, 2),
        _stack_against_gunicorn(results, "iris", BATCH_C8, 1),
        _stack_against_gunicorn(results, "forest", BATCH_C8, 1),
        _p99_against_gunicorn(results),
        _no_errors(results),
    ]


def ratios(found: list[Target]) -> str:
    width = max(len(t.label) for t in found)
    lines = ["== RATIOS (ours against the anchors of this run) =="]
    lines += [f"{t.verdict:<5}{t.label:<{width + 2}}{t.measured:<64}target {t.goal}" for t in found]
    return "\n".join(lines)


def write_json(
    path: Path,
    meta: dict,
    results: Results,
    pss_kib: dict[str, dict[str, int]],
    in_process_s: dict[str, dict[str, dict[str, float]]],
    memory_kib: dict[int, int],
    found: list[Target],
    failures: list[str],
) -> None:
    document = {
        "meta": meta,
        "in_process_seconds_per_call": in_process_s,
        "results": {
            m: {s: {k: p.as_dict() for k, p in points.items()} for s, points in by_server.items()}
            for m, by_server in results.items()
        },
        "pss_kib": pss_kib,
        "memory_forest_pss_kib_by_workers": memory_kib,
        "targets": [asdict(t) | {"verdict": t.verdict} for t in found],
        "failures": failures,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
