"""Start the real `mlmodel-server serve` as a subprocess on a free 127.0.0.1 port; stop it by PID."""

import hashlib
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import joblib
import requests
import skops.io

from mlmodel_contract.spec_defaults import HTTP_SERVERS
from mlmodel_server.cli import NATIVE_THREAD_VARIABLES

REPO = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(sys.executable).with_name("mlmodel-server")
START_TIMEOUT_SECONDS = 60
# The HTTP stack every server of this test run is started on: the server's default, or the one named by
# MLMODEL_TEST_HTTP_SERVER (test_serve_other_stack.py runs the HTTP-facing tests again on the other one).
TEST_HTTP_SERVER_VARIABLE = "MLMODEL_TEST_HTTP_SERVER"
HTTP_SERVER = os.environ.get(TEST_HTTP_SERVER_VARIABLE) or HTTP_SERVERS[0]
if HTTP_SERVER not in HTTP_SERVERS:
    raise RuntimeError(f"{TEST_HTTP_SERVER_VARIABLE}={HTTP_SERVER!r}: expected one of {', '.join(HTTP_SERVERS)}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_manifest(model_file: Path, verified: bool = True, sha256: str | None = None) -> Path:
    digest = sha256 or hashlib.sha256(model_file.read_bytes()).hexdigest()
    manifest = {
        "file": model_file.name,
        "format": model_file.suffix.lstrip(".").replace("pkl", "pickle"),
        "sha256": digest,
        "verified": verified,
        "uri": f"file://{model_file}",
        "size": model_file.stat().st_size,
    }
    (model_file.parent / "model.json").write_text(json.dumps(manifest))
    return model_file.parent


def dump(estimator, directory: Path, file_name: str, verified: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    if file_name.endswith(".skops"):
        skops.io.dump(estimator, path)
    elif file_name.endswith(".pkl"):
        path.write_bytes(pickle.dumps(estimator))
    else:
        joblib.dump(estimator, path)
    write_manifest(path, verified=verified)
    return directory


@dataclass
class RunningServer:
    process: subprocess.Popen
    port: int
    workdir: Path
    log_path: Path
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def termination_path(self) -> Path:
        return self.workdir / "termination-log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_entries(self) -> list[dict]:
        """The JSON log lines written so far (the last line may still be in the middle of a write)."""
        complete = self.log().split("\n")[:-1]
        return [json.loads(line) for line in complete if line.strip()]

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            return self.process.wait(10)
        finally:
            self.stopped = True


def launch(workdir: Path, model: Path, *args: str, env: dict[str, str] | None = None) -> RunningServer:
    """Start without waiting; `wait_ready` or `process.wait` decide what happens next."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environment = {  # as in a pod: nothing of ours, and no native thread settings unless a test gives them
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MLMODEL_") and k != "PROMETHEUS_MULTIPROC_DIR" and k not in NATIVE_THREAD_VARIABLES
    }
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "metrics")
    environment["PYTHONPATH"] = str(Path(__file__).parents[1])  # the server unpickles tests.server classes
    environment["MLMODEL_HTTP_SERVER"] = HTTP_SERVER  # a test's env or --http-server still wins
    environment.update(env or {})
    log_path = workdir / "server.log"
    command = [
        str(SERVER_BIN),
        "serve",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--termination-message-path",
        str(workdir / "termination-log"),
        *args,
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=environment, cwd=workdir)
    return RunningServer(process, port, workdir, log_path)


def wait_ready(server: RunningServer) -> RunningServer:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            if requests.get(server.url + "/ready", timeout=1).status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):  # not bound yet, or bound with no worker accepting yet
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready after {START_TIMEOUT_SECONDS}s:\n{server.log()}")


def start(workdir: Path, model: Path, *args: str, env: dict[str, str] | None = None) -> RunningServer:
    return wait_ready(launch(workdir, model, *args, env=env))


def run_to_exit(workdir: Path, model: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    """For start-up failures: the server must exit by itself, with a code and a message."""
    server = launch(workdir, model, *args)
    try:
        code = server.process.wait(timeout)
    except subprocess.TimeoutExpired:
        server.stop()
        raise AssertionError(f"server did not exit:\n{server.log()}") from None
    return code, server.log()
