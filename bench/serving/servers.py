"""How each server is started, checked, measured for memory and stopped.

Every server runs pinned to SERVER_CPU (`taskset -c`), listens on 127.0.0.1 on free ports, is
started in its own session so that its process group id is its PID, and is stopped by that PID
when the `running` block exits, whatever the reason (end, failure, Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import venvs
from load import Request
from models import LIGHTGBM, SKLEARN, XGBOOST, BenchModel

SERVER_CPU = "0"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BENCH_DIR = Path(__file__).resolve().parent.parent
ANCHORS_DIR = BENCH_DIR / "anchors"
OUR_VENV = BENCH_DIR.parent / ".venv"

CLASSIC_THREADS = 4  # gunicorn gthread threads per worker, for the classic app and the floor
MLSERVER_MAX_BATCH_SIZE = 32
MLSERVER_MAX_BATCH_TIME_S = 0.005

FLOOR = "floor"
FLOOR_GRANIAN = "floor-granian"
FLOOR_EVENTLOOP = "floor-eventloop"
OURS = "ours"  # default settings (the eventloop stack): the one every target is measured with
OURS_GUNICORN = "ours-gunicorn"  # gunicorn's gthread worker: the server before the eventloop worker
OURS_GRANIAN = "ours-granian"
OURS_LIBRARY = "ours-library"  # --compiled-kernels false: the libraries' own predict, shown for reference
FLOORS = (FLOOR, FLOOR_GRANIAN, FLOOR_EVENTLOOP)
OUR_FLAGS = {
    OURS: (),
    OURS_GUNICORN: ("--http-server", "gunicorn"),
    OURS_GRANIAN: ("--http-server", "granian"),
    OURS_LIBRARY: ("--compiled-kernels", "false"),
}
ANCHORS = ("classic", "mlserver", "mlserver-batch", "kserve")
ALL_SERVERS = (FLOOR, FLOOR_GRANIAN, FLOOR_EVENTLOOP, *ANCHORS, *OUR_FLAGS)
# The floor on our own HTTP stack: the same constant app, run by the project's gunicorn with our worker class.
EVENTLOOP_WORKER = "mlmodel_server.serving.loop_worker.EventLoopWorker"
# the tutorial app unpickles a scikit-learn estimator: it has no XGBoost or LightGBM model file reader
SKLEARN_ONLY = ("classic",)
MLSERVER_RUNTIMES = {
    SKLEARN: "mlserver_sklearn.SKLearnModel",
    XGBOOST: "mlserver_xgboost.XGBoostModel",
    LIGHTGBM: "mlserver_lightgbm.LightGBMModel",
}


class ServerError(RuntimeError):
    """A server did not start, or answered a correctness check wrongly."""


@dataclass(frozen=True)
class Launch:
    server: str
    command: list[str]
    port: int
    ready_path: str
    single: Request
    batch: Request | None  # None: the server's contract has one row per request
    count: Callable[[dict], int]  # number of predictions in a response body
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _one_prediction(body: dict) -> int:
    return 1 if "prediction" in body else 0


def _kserve_count(body: dict) -> int:
    return len(body.get("predictions", []))


def _mlserver_count(body: dict) -> int:
    return body["outputs"][0]["shape"][0]


def _our_count(body: dict) -> int:
    """/predict answers one row with scalars and several rows with lists."""
    prediction = body.get("prediction")
    return len(prediction) if isinstance(prediction, list) else _one_prediction(body)


def _gunicorn(app: str, port: int, workers: int, eventloop: bool = False) -> list[str]:
    return [
        str(OUR_VENV / "bin" / "gunicorn" if eventloop else venvs.anchor_specs()["classic"].bin("gunicorn")),
        "--worker-class",
        EVENTLOOP_WORKER if eventloop else "gthread",
        "--workers",
        str(workers),
        "--threads",
        str(CLASSIC_THREADS),
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(ANCHORS_DIR),
        "--log-level",
        "warning",
        app,
    ]


def _granian(app: str, port: int, workers: int) -> list[str]:
    return [
        str(venvs.anchor_specs()["classic"].bin("granian")),
        "--interface",
        "wsgi",
        "--workers",
        str(workers),
        "--blocking-threads",
        str(CLASSIC_THREADS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--working-dir",
        str(ANCHORS_DIR),
        "--log-level",
        "warning",
        "--no-ws",
        app,
    ]


def _floor(model: BenchModel, workdir: Path, workers: int, server: str) -> Launch:
    """The constant-response app on gunicorn gthread, on granian's WSGI server (floor-granian) or on gunicorn with
    our event-loop worker (floor-eventloop)."""
    port = free_port()
    single = Request("/predict", _json({"features": model.row}), 1)
    if server == FLOOR_GRANIAN:
        command = _granian("constant_app:app", port, workers)
    else:
        command = _gunicorn("constant_app:app", port, workers, eventloop=server == FLOOR_EVENTLOOP)
    return Launch(server, command, port, "/health", single, None, _one_prediction)


def _classic(model: BenchModel, workdir: Path, workers: int) -> Launch:
    port = free_port()
    single = Request("/predict", _json({"features": model.row}), 1)
    return Launch(
        "classic",
        _gunicorn("classic_app:app", port, workers),
        port,
        "/health",
        single,
        None,
        _one_prediction,
        env={"MODEL_PATH": str(model.path)},
    )


def _v2_request(model: BenchModel, rows: list[list[float]]) -> Request:
    """MLServer's sklearn and xgboost runtimes are asked for their predict_proba output; the lightgbm runtime has
    one output, `predict`, the booster's own prediction (for a binary objective, the positive class's probability)."""
    flat = [value for row in rows for value in row]
    payload: dict[str, object] = {
        "inputs": [{"name": "input-0", "shape": [len(rows), model.n_features], "datatype": "FP64", "data": flat}],
    }
    if model.kind != LIGHTGBM:
        payload["outputs"] = [{"name": "predict_proba"}]
    return Request(f"/v2/models/{model.name}/infer", _json(payload), len(rows))


def _mlserver(model: BenchModel, workdir: Path, workers: int, batching: bool) -> Launch:
    name = "mlserver-batch" if batching else "mlserver"
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    root = workdir / "mlserver" / f"{name}-{model.name}"
    (root / "model").mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": workers,
        "debug": False,
    }
    model_settings: dict[str, object] = {
        "name": model.name,
        "implementation": MLSERVER_RUNTIMES[model.kind],
        "parameters": {"uri": str(model.path)},
    }
    if batching:
        model_settings |= {"max_batch_size": MLSERVER_MAX_BATCH_SIZE, "max_batch_time": MLSERVER_MAX_BATCH_TIME_S}
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    (root / "model" / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    command = [str(venvs.anchor_specs()["mlserver"].bin("mlserver")), "start", str(root)]
    return Launch(
        name,
        command,
        http_port,
        f"/v2/models/{model.name}/ready",
        _v2_request(model, [model.row]),
        _v2_request(model, model.batch),
        _mlserver_count,
    )


def _kserve(model: BenchModel, workdir: Path, workers: int) -> Launch:
    http_port = free_port()
    command = [
        str(venvs.anchor_specs()["kserve"].bin("python")),
        str(ANCHORS_DIR / "kserve_model.py"),
        "--model_name",
        model.name,
        "--model_path",
        str(model.path),
        "--model_kind",
        model.kind,
        "--http_port",
        str(http_port),
        "--enable_grpc",
        "false",
        "--workers",
        str(workers),
    ]
    path = f"/v1/models/{model.name}:predict"
    return Launch(
        "kserve",
        command,
        http_port,
        f"/v1/models/{model.name}",
        Request(path, _json({"instances": [model.row]}), 1),
        Request(path, _json({"instances": model.batch}), len(model.batch)),
        _kserve_count,
    )


def _ours(model: BenchModel, workdir: Path, workers: int, server: str = OURS) -> Launch:
    """Our server with its default settings (ours), on another HTTP stack (ours-gunicorn, ours-granian), or with
    `--compiled-kernels false` (ours-library: the libraries' own predict, no compiled tree walk)."""
    port = free_port()
    metrics_dir = workdir / "prometheus" / f"{model.name}-{workers}-{port}"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(OUR_VENV / "bin" / "mlmodel-server"),
        "serve",
        "--model",
        str(model.path),
        "--name",
        model.name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        *OUR_FLAGS[server],
    ]
    return Launch(
        server,
        command,
        port,
        "/ready",
        Request("/predict", _json({"features": model.row}), 1),
        Request("/predict", _json({"instances": model.batch}), len(model.batch)),
        _our_count,
        # The bench made the model file itself: no fetch step wrote a verified model.json beside it.
        env={"MLMODEL_ALLOW_UNVERIFIED": "true", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )


def serves(server: str, model: BenchModel) -> bool:
    return model.kind == SKLEARN or server not in SKLEARN_ONLY


def plan(server: str, model: BenchModel, workdir: Path, workers: int) -> Launch:
    if server in FLOORS:
        return _floor(model, workdir, workers, server)
    if server == "classic":
        return _classic(model, workdir, workers)
    if server in ("mlserver", "mlserver-batch"):
        return _mlserver(model, workdir, workers, batching=server == "mlserver-batch")
    if server == "kserve":
        return _kserve(model, workdir, workers)
    if server in OUR_FLAGS:
        return _ours(model, workdir, workers, server)
    raise ValueError(f"unknown server {server!r} (one of {', '.join(ALL_SERVERS)})")


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)  # the group id is the server's PID (start_new_session)
    except ProcessLookupError:
        pass


def _stop(process: subprocess.Popen[bytes], grace_s: float = 15) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever of it is left after `grace_s`
    or as soon as the wait is interrupted (Ctrl-C, SIGTERM): no worker outlives the benchmark."""
    try:
        _signal_group(process, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    finally:
        _signal_group(process, signal.SIGKILL)
        process.wait()


@contextmanager
def running(launch: Launch, log_path: Path, start_timeout_s: float = 120) -> Iterator[subprocess.Popen[bytes]]:
    """Start the server on SERVER_CPU, wait until its readiness path answers 200, stop it on exit."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PYTHONUNBUFFERED": "1"} | launch.env
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *launch.command],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(ANCHORS_DIR),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise ServerError(
                    f"{launch.server} exited with {process.returncode}; log {log_path}:\n{_tail(log_path)}"
                )
            try:
                if _http("GET", launch.base_url + launch.ready_path, timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"{launch.server} not ready after {start_timeout_s:.0f} s; log {log_path}:\n{_tail(log_path)}"
                )
            time.sleep(0.25)
        yield process
    finally:
        _stop(process)


def check(launch: Launch) -> None:
    """One request of each kind the benchmark will send: 200 and one prediction per row sent."""
    for request in (launch.single, launch.batch):
        if request is None:
            continue
        status, raw = _http("POST", launch.base_url + request.path, request.body)
        if status != 200:
            raise ServerError(f"{launch.server} {request.path} answered {status}: {raw[:300]!r}")
        got = launch.count(json.loads(raw))
        if got != request.rows:
            raise ServerError(f"{launch.server} returned {got} predictions for {request.rows} rows: {raw[:300]!r}")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its descendants so far (/proc/<pid>/stat)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = (Path("/proc") / str(current) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
        pending.extend(_children(current))
    return total / CLOCK_TICKS


def pss_kib(pid: int) -> int:
    """Proportional set size of a process and all its descendants, from /proc/<pid>/smaps_rollup."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in (Path("/proc") / str(current) / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        pending.extend(_children(current))
    return total
