"""What the HTTP layer must do around the app that granian (2.8, measured) does not do by itself.

Broken bodies. granian's WSGI body turns a body error into the end of the body: a body shorter than its
Content-Length followed by EOF, or a chunked body whose framing breaks, reaches the app as the bytes that
did arrive. The guard reads a declared-length body in full before the app runs; the app's request pipeline
(pipeline.py) then refuses a short one as it does on gunicorn, by comparing it with its Content-Length. A
chunked body carries no length to compare against: framing broken before a whole JSON document arrived
leaves the app a truncated or empty body, which it refuses as malformed JSON (400); broken after one, what
arrived is the document the client sent (no proper prefix of a JSON object is a complete one).

Slow bodies. granian calls the app as soon as the headers are in, and its body read cannot be interrupted
from Python (nor has granian a body read timeout): a client that stalls its body holds the thread reading it
until it finishes or goes away. So bodies are read by many cheap threads (granian's blocking threads, as many
as a worker takes connections: a stalled one waits in Rust, without the GIL) and only requests whose body is
in enter the app, at most `--threads` at once and in arrival order (`Gate`). A stalled body then costs its
own connection and an idle thread, never a request thread.
"""

import io
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class Gate:
    """At most `limit` holders at once, admitted in arrival order; a waiter waits on a held lock of its own
    (one C-level hand-over), not on a Condition."""

    def __init__(self, limit: int):
        self._free = limit
        self._guard = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._guard:
            if self._free > 0:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by a leaving holder, who passed its place on

    def __exit__(self, *exc_info: object) -> None:
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


class TransportGuard:
    def __init__(self, app: WsgiApp, max_request_bytes: int, app_threads: int):
        self._app = app
        self._max_request_bytes = max_request_bytes
        self._gate = Gate(app_threads)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        limit = self._max_request_bytes
        stream = environ["wsgi.input"]
        declared = environ.get("CONTENT_LENGTH")
        if "HTTP_TRANSFER_ENCODING" in environ:
            # one byte over the limit is enough for the app to answer 413
            environ["wsgi.input"] = io.BytesIO(stream.read(limit + 1))
        elif declared and declared.isdigit() and int(declared) > 0:
            length = int(declared)
            if length > limit:
                # the app answers 413 after draining a little, without the model: no need to queue for it
                return self._app(environ, start_response)
            environ["wsgi.input"] = io.BytesIO(stream.read(length))  # a short one: the app refuses it
        with self._gate:
            return self._app(environ, start_response)
