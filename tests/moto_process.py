"""moto in server mode: a real S3-compatible (and IAM/STS) process on loopback, for the tests that fetch from s3://."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from localcluster import free_port

MOTO_SERVER = Path(sys.executable).parent / "moto_server"


@contextmanager
def running_moto(log_path: Path, start_timeout: float = 30) -> Iterator[str]:
    """Start moto_server on 127.0.0.1 (without the caller's AWS_ variables), wait until it answers, yield its endpoint,
    stop it on exit. Fails the test, with the log's tail, when it does not start."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
