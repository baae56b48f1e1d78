"""gunicorn launched from Python: the config is a dict, the WSGI app is already built in this process.

The model and the app are built before gunicorn starts (that is gunicorn's preload), so every worker is a
fork of a master that already holds the model: the estimator's memory is shared copy-on-write, and
`gc.freeze()` keeps the collector from touching (and so copying) those pages in the workers.
"""

import gc
import os
import shutil
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger

from mlmodel_server import metrics
from mlmodel_server.logs import logging_config
from mlmodel_server.serving.loop_worker import EventLoopWorker
from mlmodel_server.serving.worker import KeepAliveThreadWorker
from mlmodel_server.settings import ServeSettings


class GunicornLogger(Logger):
    """gunicorn's own access log is off (the app writes its JSON access line), but with a `logconfig_dict` set
    gunicorn counts it as enabled and builds its log atoms for every request only to drop the line."""

    @property
    def access_log_enabled(self) -> bool:
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


def freeze_heap(server: Any) -> None:
    gc.collect()
    gc.freeze()


def forget_worker(server: Any, worker: Any) -> None:
    metrics.worker_exited(worker.pid)


def heartbeat_dir() -> str | None:
    """Workers touch a heartbeat file constantly: keep it in memory (a disk-backed /tmp can stall them)."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None


def worker_class(settings: ServeSettings, request_threads: int) -> type:
    if settings.http_server == "eventloop":
        return EventLoopWorker.configured(
            settings.header_timeout_seconds, settings.body_timeout_seconds, settings.max_request_bytes, request_threads
        )
    return KeepAliveThreadWorker.configured(
        settings.header_timeout_seconds, settings.body_timeout_seconds, settings.max_request_bytes
    )


def gunicorn_options(
    settings: ServeSettings, request_threads: int, remove_at_exit: str | None = None
) -> dict[str, Any]:
    def on_exit(server: Any) -> None:
        if remove_at_exit:
            shutil.rmtree(remove_at_exit, ignore_errors=True)

    return {
        "bind": f"{settings.host}:{settings.port}"
        if ":" not in settings.host
        else f"[{settings.host}]:{settings.port}",
        "workers": settings.workers,
        "worker_class": worker_class(settings, request_threads),
        "threads": max(request_threads, 1),
        "timeout": settings.timeout_seconds,
        "graceful_timeout": settings.graceful_timeout_seconds,
        "keepalive": 5,
        "preload_app": True,
        "accesslog": None,
        "loglevel": settings.log_level,
        "logconfig_dict": logging_config(settings.log_level),
        "logger_class": GunicornLogger,
        "control_socket_disable": True,
        "worker_tmp_dir": heartbeat_dir(),
        "proc_name": "mlmodel-server",
        "when_ready": freeze_heap,
        "child_exit": forget_worker,
        "on_exit": on_exit,
    }


class ModelServerApplication(BaseApplication):
    def __init__(self, wsgi_app: Any, options: dict[str, Any]):
        self._wsgi_app = wsgi_app
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            if value is not None or key == "accesslog":
                self.cfg.set(key, value)

    def load(self) -> Any:
        return self._wsgi_app
