"""wrk as the load generator: a Lua script per request body, one wrk process per measurement, and
the parsing of the JSON line that the script's done() prints."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

LOAD_CPU = "1"
RESULT_MARKER = "BENCH-RESULT "

LUA_TEMPLATE = """\
wrk.method = "POST"
wrk.path = [==[{path}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[{body}]==]

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{marker}{{"duration_us": %d, "requests": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}}\\n',
    summary.duration, summary.requests, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True)
class Scenario:
    """A load shape: single-row or batch requests at one concurrency."""

    batch: bool
    concurrency: int

    @property
    def key(self) -> str:
        return f"{'batch' if self.batch else 'single'}-c{self.concurrency}"


SCENARIOS = (Scenario(False, 1), Scenario(False, 8), Scenario(False, 64), Scenario(True, 8))
SINGLE_C8, SINGLE_C64, BATCH_C8 = SCENARIOS[1].key, SCENARIOS[2].key, SCENARIOS[3].key


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    rows: int


@dataclass(frozen=True)
class Measurement:
    """One point: the median of the runs for rates and latencies, the sum of the runs for errors.
    Latencies are None when no request completed in any run (a server too slow for the run's length)."""

    concurrency: int
    rows_per_request: int
    req_per_s: float
    rows_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    runs: int
    # successful requests per CPU second of the server's process tree: the rate per core with the share of
    # the core other processes took removed (the machine may be shared); 0 when no CPU time was read
    req_per_cpu_s: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def ensure_wrk() -> str:
    """Path to wrk, installing the Debian package when it is missing (the bench runs as root)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("[load] wrk not found: installing the Debian package", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


def write_script(request: Request, directory: Path, name: str) -> Path:
    body = request.body.decode()
    if "]==]" in body or "]==]" in request.path:
        raise ValueError("request text collides with the Lua long-string delimiter")
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"{name}.lua"
    script.write_text(LUA_TEMPLATE.format(path=request.path, body=body, marker=RESULT_MARKER))
    return script


def run_once(wrk: str, url: str, script: Path, concurrency: int, seconds: float) -> dict[str, int]:
    """One wrk run: the counters and latencies its script's done() printed."""
    command = [
        "taskset",
        "-c",
        LOAD_CPU,
        wrk,
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=seconds + 60)
    for line in out.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    raise RuntimeError(f"wrk printed no result line:\n{out.stdout}\n{out.stderr}")


def summarize(samples: list[dict[str, float]], rows: int, concurrency: int) -> Measurement:
    """The median of the runs for rates and latencies; req/s counts 2xx/3xx responses only."""
    ok_rates = [(s["requests"] - s["status"]) / (s["duration_us"] / 1e6) for s in samples]
    req_per_s = statistics.median(ok_rates)
    cpu_rates = [(s["requests"] - s["status"]) / s["cpu_s"] for s in samples if s.get("cpu_s", 0) > 0]
    answered = [s for s in samples if s["requests"] > 0]
    return Measurement(
        concurrency=concurrency,
        rows_per_request=rows,
        req_per_s=req_per_s,
        rows_per_s=req_per_s * rows,
        p50_ms=statistics.median(s["p50_us"] for s in answered) / 1000 if answered else None,
        p99_ms=statistics.median(s["p99_us"] for s in answered) / 1000 if answered else None,
        errors=int(sum(s["status"] + s["connect"] + s["read"] + s["write"] + s["timeout"] for s in samples)),
        runs=len(samples),
        req_per_cpu_s=statistics.median(cpu_rates) if cpu_rates else 0.0,
    )
