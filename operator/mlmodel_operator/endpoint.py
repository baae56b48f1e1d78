"""The operator's own HTTP port (beside kopf's liveness): /metrics for Prometheus and /readyz.

/readyz answers 200 on the leader and on a standby that read the Lease within one lease duration
(it can take over), 503 otherwise: a Deployment rollout then waits for the new replica to reach the
API server before it stops an old one, and the PodDisruptionBudget counts only replicas that could lead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import prometheus_client

Probe = Callable[[], bool]


def parse_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    return host or "0.0.0.0", int(port)


def serve(address: str, registry: prometheus_client.CollectorRegistry, ready: Probe) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; returns the server (its `server_address` has the bound port)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, content_type = prometheus_client.generate_latest(registry), prometheus_client.CONTENT_TYPE_LATEST
                self._answer(200, body, content_type)
            elif path == "/readyz":
                ok = ready()
                self._answer(200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # a scrape every few seconds is not news
            pass

    server = ThreadingHTTPServer(parse_address(address), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-endpoint", daemon=True).start()
    return server
