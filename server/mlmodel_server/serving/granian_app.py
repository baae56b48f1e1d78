"""granian launched from Python: a Rust HTTP/1.1 server (hyper) that calls the WSGI app from blocking threads.

As with gunicorn's preload, the model and the app are built before the server starts: granian starts its
workers with multiprocessing's start method, which is `fork` on Linux with Python < 3.14 (and is asked for
explicitly here), and each worker calls `target_loader` after the fork, which hands it the app this process
already holds. The estimator's memory is shared copy-on-write; `gc.freeze()` keeps the collector from
copying those pages in the workers.
"""

import gc
import logging
import multiprocessing
import shutil
from typing import Any

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer, WorkerProcess

from mlmodel_server import metrics
from mlmodel_server.logs import logging_config
from mlmodel_server.serving.transport import TransportGuard
from mlmodel_server.settings import ServeSettings

# Time a client has to send a request's headers, and (kept alive) to start its next request.
HEADER_READ_TIMEOUT_SECONDS = 10
CONNECTIONS_PER_WORKER = 1024


class MetricsAwareWorker(WorkerProcess):
    """granian's worker handle, telling prometheus_client when its process is gone (gunicorn's child_exit)."""

    def _watcher(self) -> None:
        self.inner.join()
        metrics.worker_exited(self.inner.pid)
        super()._watcher()  # the join returns at once now; granian logs the exit and respawns the worker


class NoThreadCountAdvice(logging.Filter):
    """granian warns at start that many blocking threads may mean much concurrency in Python: here they read
    bodies, and only --threads of them at once run Python (transport.Gate)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Python threads" not in record.getMessage()


class ModelServer(MPServer):
    # MPServer's own override already drops AbstractServer's socket_loader parameter.
    def _spawn_worker(self, idx: int, target: Any, callback_loader: Any) -> WorkerProcess:  # type: ignore[override]
        worker = super()._spawn_worker(idx, target, callback_loader)
        worker.__class__ = MetricsAwareWorker
        return worker


def serve(wsgi_app: Any, settings: ServeSettings, remove_at_exit: str | None = None) -> None:
    multiprocessing.set_start_method("fork", force=True)  # workers must inherit the loaded model
    guarded = TransportGuard(wsgi_app, settings.max_request_bytes, settings.threads)
    server = ModelServer(
        target="mlmodel_server",  # a label only: target_loader below hands over the app itself
        address=settings.host,
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.workers,
        # a thread per connection to read bodies; --threads of them at once in the app (transport.Gate)
        blocking_threads=CONNECTIONS_PER_WORKER,
        # granian's backpressure counts connections (a permit per accepted connection, kept-alive ones too),
        # not requests: connections beyond this wait in the kernel's accept queue
        backpressure=CONNECTIONS_PER_WORKER,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=HEADER_READ_TIMEOUT_SECONDS * 1000, keep_alive=True),
        websockets=False,
        log_level=LogLevels(settings.log_level),
        log_dictconfig=logging_config(settings.log_level),
        log_access=False,  # the app writes its own JSON access line
        respawn_failed_workers=True,  # a killed worker is replaced, as gunicorn does
        workers_kill_timeout=settings.graceful_timeout_seconds,
    )
    logging.getLogger("_granian").addFilter(NoThreadCountAdvice())
    if remove_at_exit:
        server.on_shutdown(lambda: shutil.rmtree(remove_at_exit, ignore_errors=True))
    gc.collect()
    gc.freeze()
    server.serve(target_loader=lambda _target: guarded)
