"""Fixtures for the image tests: both images built by hack/images.sh (cached: a second session only
checks the inputs), working containers removed after each test, a model served over local http."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from .buildah_support import OPERATOR_IMAGE, SERVER_IMAGE, WorkingContainer, build_images


@pytest.fixture(scope="session")
def images() -> dict[str, str]:
    """Both images, built (or found up to date) by the same script as `make images`. Fails, never skips,
    when buildah cannot build or run here."""
    log = build_images()
    return {"server": SERVER_IMAGE, "operator": OPERATOR_IMAGE, "log": log}


@pytest.fixture
def container_factory(images) -> Iterator:
    made: list[WorkingContainer] = []

    def make(image: str) -> WorkingContainer:
        container = WorkingContainer(image).create()
        made.append(container)
        return container

    yield make
    for container in made:
        container.remove()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def model_http(tmp_path_factory) -> Iterator[dict]:
    """An iris classifier as a joblib file, served by an http server on 127.0.0.1 (what the init container fetches)."""
    root = tmp_path_factory.mktemp("artifacts")
    X, y = load_iris(return_X_y=True)
    path = root / "iris.joblib"
    joblib.dump(LogisticRegression(max_iter=1000).fit(X, y), path)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "uri": f"http://127.0.0.1:{server.server_address[1]}/{path.name}",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "path": Path(path),
    }
    server.shutdown()
    server.server_close()
