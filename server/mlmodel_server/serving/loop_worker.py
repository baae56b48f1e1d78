"""A gunicorn worker of our own: one event loop per worker process, the HTTP parsed by llhttp (httptools), the
app called on the loop's thread (for a slow model, in request threads: see `app_threads`).

gthread spends most of a small request's CPU on itself: a pure-Python parser, a thread pool and three thread
hand-overs of the GIL per request (a constant JSON body: ≈ 5,500 requests/s on one core; this loop: several
times that). Here one thread does everything in turn: it accepts, reads what every connection sent, parses it
in C, and once a turn of the loop (one `select()`) has read its connections, hands the requests that arrived
whole to the app together (`answer_round`: their rows share the model's calls, as a micro-batch) and writes
the answers. That is gunicorn's sync worker's model (the app runs on one thread per process, `--workers` for
parallelism, a turn longer than `--timeout-seconds` restarts its worker) with keep-alive and without a thread
per connection: a client that sends part of a request and stalls costs its own connection's buffer, nothing
more.

Every HTTP-layer mistake gets a JSON error (errors.py's shape) and the connection closes: a malformed head
400 (414 and 431 past the limits gunicorn has, 417 for an unknown expectation), a head that has not arrived
`header_timeout` seconds after it started, or a body `body_timeout` seconds after its head, 408. What goes
wrong in a body is the app's to say, as on gunicorn: the app gets the request with a body stream that fails
(broken chunked framing), ends early (EOF before its Content-Length) or stops at the limit (too large), and
answers it (401 before reading it, 400 or 413 when it reads); the connection closes after that answer.

gunicorn's arbiter stays: it loads the model once and forks the workers, restarts dead or silent ones, runs
`child_exit`, and SIGTERM makes a worker stop accepting and finish what it has (kept-alive connections get
`STOP_LINGER_SECONDS` for a request already on its way, answered with "Connection: close").
"""

import contextlib
import io
import os
import queue
import re
import selectors
import socket
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote_to_bytes

import httptools
from gunicorn.workers.base import Worker
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER as STOP_LINGER_SECONDS

# GATHER_BUDGET: what a worker holds of bodies still arriving, all connections together; past it, connections
# with a body on its way are not read until others finish (they may then meet their body timeout).
from mlmodel_server.serving.worker import CONTINUE, GATHER_BUDGET, RECV_BYTES, SWEEP_SECONDS, error_response

NOTIFY_SECONDS = 1.0
ACCEPTS_PER_WAKE = 64

IDLE, HEAD, BODY = 0, 1, 2  # where a connection's current request stands
# llhttp knows a fixed list of methods; gunicorn takes any such token, and the app answers it 405 (and counts
# it as `other`). A request that starts with one is parsed with POST's framing under its own method.
INVENTED_METHOD = re.compile(rb"([A-Z]{3,20}) ")


def environ_key(name: bytes) -> str | None:
    """A header's WSGI environ key; None for a name with an underscore (gunicorn's habit: it could pass for a
    dash in a proxy's header)."""
    key = name.decode("latin-1").upper()
    if "_" in key:
        return None
    key = key.replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


# The headers clients send most, as they send them: their keys without the work.
ENVIRON_KEYS = {
    name: environ_key(name)
    for spelled in ("Host", "Content-Type", "Content-Length", "Accept", "User-Agent", "Connection", "X-Request-ID")
    for name in (spelled.encode(), spelled.lower().encode())
}


class HeadRefused(Exception):
    """A head the loop answers itself, before any app: (status, reason, message)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason = status, reason


class BodyEnds(Exception):
    """The body cannot be read to its end (too large): the app gets the request as it stands, then the
    connection closes."""


class BrokenBody:
    """A body whose framing broke: the bytes before the break, then the error, as gunicorn's reader raises it."""

    def __init__(self, data: bytes, error: str):
        self._data = io.BytesIO(data)
        self._error = error

    def read(self, size: int = -1) -> bytes:
        data = self._data.read(size)
        if size < 0 or len(data) < size:
            raise ValueError(self._error)
        return data


class Request:
    __slots__ = (
        "body",
        "body_bytes",
        "chunked",
        "expect_continue",
        "headers",
        "keep_alive",
        "method",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_bytes = 0
        self.method = "GET"
        self.version = "1.1"
        self.keep_alive = True
        self.expect_continue = False
        self.chunked = False


class Connection:
    """One client connection: the parser's callbacks fill `request`; whole requests wait in `ready`."""

    def __init__(self, worker: "EventLoopWorker", sock: socket.socket, address: Any, now: float):
        self.worker = worker
        self.sock = sock
        self.address = address
        self.parser = httptools.HttpRequestParser(self)
        self.request = Request()
        self.ready: list[Request] = []
        self.state = IDLE
        self.deadline = now + worker.header_timeout  # a new connection has this long to start a request
        self.output = bytearray()
        self.close_after_output = False
        self.continue_sent = False
        self.events = selectors.EVENT_READ
        self.invented_method: str | None = None
        self.busy = False  # its request is in an app thread: not read, not timed out, until answered
        # what every request's WSGI environ on this connection starts from
        self.base_environ: dict[str, Any] = {
            "SCRIPT_NAME": "",
            "SERVER_NAME": worker.cfg.proc_name or "localhost",
            "SERVER_PORT": str(sock.getsockname()[1]) if sock.family != socket.AF_UNIX else "",
            "REMOTE_ADDR": address[0] if isinstance(address, tuple) else "",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": worker.wsgi_errors,
            "wsgi.multithread": worker.app_threads > 0,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    # The parser's callbacks -------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.request = Request()
        self.state = HEAD
        self.deadline = time.monotonic() + self.worker.header_timeout
        self.continue_sent = False

    # gunicorn's limits on a head (its settings: 4094, 100 and 8190 by default), kept
    def on_url(self, url: bytes) -> None:
        self.request.url += url
        limit = self.worker.cfg.limit_request_line
        if limit and len(self.request.url) > limit:
            raise HeadRefused(414, "URI Too Long", f"the request target is longer than {limit} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self.request.headers
        fields, field_size = self.worker.cfg.limit_request_fields, self.worker.cfg.limit_request_field_size
        if len(headers) >= fields:
            raise HeadRefused(431, "Request Header Fields Too Large", f"more than {fields} header fields")
        if field_size and len(name) + len(value) > field_size:
            raise HeadRefused(
                431, "Request Header Fields Too Large", f"a header field is longer than {field_size} bytes"
            )
        headers.append((name, value))

    def on_headers_complete(self) -> None:
        request = self.request
        parser = self.parser
        request.method = self.invented_method or parser.get_method().decode("latin-1")
        self.invented_method = None
        request.version = parser.get_http_version()
        if request.version == "0.9":
            raise HeadRefused(400, "Bad Request", "malformed request (no HTTP version: HTTP/0.9 is not served)")
        request.keep_alive = parser.should_keep_alive()
        self.state = BODY
        self.deadline = time.monotonic() + self.worker.body_timeout
        length = None
        for name, value in request.headers:
            lowered = name.lower()
            if lowered == b"expect":
                if value.strip().lower() != b"100-continue":
                    raise HeadRefused(417, "Expectation Failed", f"unknown expectation {value[:100]!r}")
                request.expect_continue = request.version == "1.1"
            elif lowered == b"transfer-encoding":
                request.chunked = True  # llhttp takes a request coding only when it ends in chunked
            elif lowered == b"content-length":
                length = int(value)  # llhttp refused what is not a number
        if length is not None and length > self.worker.max_request_bytes:
            raise BodyEnds()

    def on_body(self, body: bytes) -> None:
        request = self.request
        request.body.append(body)
        request.body_bytes += len(body)
        self.worker.gathered_bytes += len(body)
        if request.body_bytes > self.worker.max_request_bytes:
            raise BodyEnds()  # chunked: the app sees one byte over its limit and says 413

    def on_message_complete(self) -> None:
        self.ready.append(self.request)
        self.worker.gathered_bytes -= self.request.body_bytes
        self.state = IDLE
        self.request = Request()


class AppAnswer:
    """What a WSGI call answered: its start_response and its body."""

    __slots__ = ("chunks", "headers", "status")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []

    def start(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        self.status, self.headers = status, headers
        return self.chunks.append

    def read(self, result: Any) -> None:
        try:
            self.chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


def answers_together(app: Any) -> Callable[[list[tuple[dict[str, Any], Any]]], list[Any]] | None:
    """The app's way to answer several WSGI calls at once (lean_routes.LeanRoutes.call_together), if it has
    one: Flask keeps its WSGI callable as `wsgi_app`."""
    return getattr(getattr(app, "wsgi_app", app), "call_together", None)


class EventLoopWorker(Worker):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_request_bytes: int = 10 * 1024 * 1024
    # 0: the app runs on the loop's thread. N: in N threads, so that concurrent requests can share a slow
    # model's calls (the micro-batcher), at the price of two thread hand-overs per request.
    app_threads: int = 0

    @classmethod
    def configured(
        cls, header_timeout: float, body_timeout: float, max_request_bytes: int, app_threads: int = 0
    ) -> type["EventLoopWorker"]:
        """gunicorn takes a worker class and has no setting for these: a subclass carries them."""
        return type(
            cls.__name__,
            (cls,),
            {
                "header_timeout": header_timeout,
                "body_timeout": body_timeout,
                "max_request_bytes": max_request_bytes,
                "app_threads": app_threads,
            },
        )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.connections: dict[int, Connection] = {}
        self.gathered_bytes = 0
        self.paused: set[Connection] = set()
        self.selector: selectors.BaseSelector | None = None
        self.accepting = False
        self.date = ("", 0)
        self.app_pool: ThreadPoolExecutor | None = None
        self.wsgi_errors = sys.stderr
        self.answered: queue.SimpleQueue[tuple[Connection, bytes, bool]] = queue.SimpleQueue()
        self.answered_pipe = (-1, -1)
        self.together: Callable[[list[tuple[dict[str, Any], Any]]], list[Any]] | None = None
        self.round: list[Connection] = []  # connections with whole requests, answered after this select()

    def init_process(self) -> None:
        self.selector = selectors.DefaultSelector()
        if self.app_threads:
            self.app_pool = ThreadPoolExecutor(self.app_threads, thread_name_prefix="mlmodel-request")
            self.answered_pipe = os.pipe()
            for end in self.answered_pipe:
                os.set_blocking(end, False)
            self.selector.register(self.answered_pipe[0], selectors.EVENT_READ, self.on_answered)
        super().init_process()

    def run(self) -> None:
        selector = self.selector
        assert selector is not None
        selector.register(self.PIPE[0], selectors.EVENT_READ, self.on_wakeup)
        if self.app_pool is None:
            self.together = answers_together(self.wsgi)
        for listener in self.sockets:
            listener.setblocking(False)
        self.set_accepting(True)
        next_sweep = next_notify = 0.0
        while self.alive:
            self.dispatch(SWEEP_SECONDS)
            now = time.monotonic()
            if now >= next_notify:
                self.notify()
                next_notify = now + NOTIFY_SECONDS
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
            if now >= next_sweep:
                self.sweep(now)
                next_sweep = now + SWEEP_SECONDS
        self.stop()

    def stop(self) -> None:
        """Stop accepting; finish the requests on their way within the graceful timeout, then close all."""
        self.set_accepting(False)
        now = time.monotonic()
        graceful_end = now + self.cfg.graceful_timeout
        for connection in self.connections.values():
            if connection.state == IDLE and not connection.output:
                connection.deadline = min(connection.deadline, now + STOP_LINGER_SECONDS)
        while self.connections and time.monotonic() < graceful_end:
            self.notify()
            self.dispatch(SWEEP_SECONDS)
            self.sweep(time.monotonic())
        for connection in list(self.connections.values()):
            self.close(connection)
        for listener in self.sockets:
            listener.close()
        if self.app_pool is not None:
            self.app_pool.shutdown(wait=False)

    def dispatch(self, timeout: float) -> None:
        assert self.selector is not None
        try:
            events = self.selector.select(timeout)
        except InterruptedError:
            return
        for key, mask in events:
            key.data(key.fileobj, mask)
        if self.round:
            self.answer_round()

    def on_wakeup(self, fileobj: Any, mask: int) -> None:
        try:
            os.read(self.PIPE[0], 64)  # a signal arrived (gunicorn's wakeup fd): the loop looks at `alive`
        except OSError:
            pass

    def set_accepting(self, accepting: bool) -> None:
        if accepting == self.accepting:
            return
        assert self.selector is not None
        for listener in self.sockets:
            if accepting:
                self.selector.register(listener, selectors.EVENT_READ, self.on_acceptable)
            else:
                self.selector.unregister(listener)
        self.accepting = accepting

    def on_acceptable(self, listener: Any, mask: int) -> None:
        assert self.selector is not None
        now = time.monotonic()
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, address = listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # another worker took it, or there is none left
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, address, now)
            self.connections[sock.fileno()] = connection
            self.selector.register(sock, selectors.EVENT_READ, self.on_event)
            if len(self.connections) >= self.cfg.worker_connections:
                self.set_accepting(False)
                return

    def on_event(self, sock: Any, mask: int) -> None:
        connection = self.connections.get(sock.fileno())
        if connection is None:
            return
        try:
            if mask & selectors.EVENT_WRITE:
                self.flush(connection)
            elif mask & selectors.EVENT_READ:
                self.on_readable(connection)
        except Exception:
            # A fault of ours in one connection's handling costs that connection, never the worker's others.
            self.log.exception("Error handling request")
            self.fail(connection)

    def fail(self, connection: Connection) -> None:
        if not self.is_open(connection):
            return
        if not connection.output and not connection.close_after_output:
            with contextlib.suppress(OSError):
                connection.sock.send(error_response(500, "Internal Server Error", "internal error"))
        self.close(connection)

    # Reading and answering -------------------------------------------------------------------------------

    def on_readable(self, connection: Connection) -> None:
        if connection.state == BODY and self.gathered_bytes > GATHER_BUDGET:
            self.pause(connection)
            return
        try:
            data = connection.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.on_end_of_stream(connection)
            return
        try:
            self.feed(connection, data)
        except httptools.HttpParserCallbackError as error:
            self.answer_ready(connection)
            cause = error.__cause__ or error.__context__
            if isinstance(cause, HeadRefused):
                self.refuse(connection, cause.status, cause.reason, str(cause))
            elif isinstance(cause, BodyEnds):
                self.answer_unfinished(connection, b"".join(connection.request.body), None)
            else:
                raise
            return
        except httptools.HttpParserUpgrade:
            self.answer_ready(connection)  # an upgrade is not served: what came before it is, then the end
            connection.close_after_output = True
            self.after_output(connection)
            return
        except httptools.HttpParserError as error:
            self.answer_ready(connection)
            self.on_parse_error(connection, error)
            return
        if self.together is not None and connection.ready:
            self.round.append(connection)  # answered with the other requests of this select() (answer_round)
            return
        self.answer_ready(connection)
        self.offer_continue(connection)

    def offer_continue(self, connection: Connection) -> None:
        """A request on its way that expects 100 Continue gets it once the answers before it are out."""
        if (
            connection.state == BODY
            and not connection.busy
            and connection.request.expect_continue
            and not connection.continue_sent
            and not connection.output
        ):
            connection.continue_sent = True
            self.send(connection, CONTINUE)

    def feed(self, connection: Connection, data: bytes) -> None:
        starts_request = connection.state == IDLE and not connection.ready
        try:
            connection.parser.feed_data(data)
        except httptools.HttpParserInvalidMethodError:
            invented = INVENTED_METHOD.match(data) if starts_request else None
            if invented is None:
                raise
            connection.parser = httptools.HttpRequestParser(connection)  # the failed one stays failed
            connection.invented_method = invented.group(1).decode("ascii")
            connection.parser.feed_data(b"POST" + data[len(invented.group(1)) :])

    def on_parse_error(self, connection: Connection, error: Exception) -> None:
        detail = f"{type(error).__name__}: {str(error)[:200]}"
        if connection.state == BODY:  # the head was fine: the app says what a broken body means
            self.answer_unfinished(connection, b"".join(connection.request.body), f"malformed request body ({detail})")
        else:
            self.refuse(connection, 400, "Bad Request", f"malformed request ({detail})")

    def on_end_of_stream(self, connection: Connection) -> None:
        """The client is done sending. A request half-sent is answered (the client may still read); else the end."""
        if connection.state == BODY:
            request = connection.request
            broken = (
                "malformed request body (the chunked body ended before its last chunk)" if request.chunked else None
            )
            self.answer_unfinished(connection, b"".join(request.body), broken)
        elif connection.state == HEAD:
            self.refuse(connection, 400, "Bad Request", "malformed request (the head ended before its blank line)")
        elif connection.output:
            connection.close_after_output = True
        else:
            self.close(connection)

    def answer_round(self) -> None:
        """The whole requests of one select() round, answered in order per connection; the app answers them
        together (`together`), so a model call can serve several requests. A fault of ours here costs the
        round's connections, never the worker."""
        connections, self.round = self.round, []
        try:
            if len(connections) == 1 and len(connections[0].ready) == 1:  # alone: the plain WSGI call
                self.answer_ready(connections[0])
                self.offer_continue(connections[0])
            else:
                self.answer_together(connections)
        except Exception:
            self.log.exception("Error handling request")
            for connection in connections:
                self.fail(connection)

    def answer_together(self, connections: list[Connection]) -> None:
        calls: list[tuple[Connection, dict[str, Any], bool, bool]] = []  # connection, environ, head only, keep
        for connection in connections:
            while connection.ready and not connection.close_after_output:
                request = connection.ready.pop(0)
                environ, head_only, keep_alive = self.call_for(connection, request, io.BytesIO(b"".join(request.body)))
                calls.append((connection, environ, head_only, keep_alive))
                if not keep_alive:
                    connection.ready.clear()  # what a client sends after "Connection: close" is not answered
        responses = self.call_app_together([(environ, head_only, keep) for _, environ, head_only, keep in calls])
        for (connection, _, _, keep_alive), response in zip(calls, responses, strict=True):
            if self.is_open(connection):  # not closed by a failed send
                self.deliver(connection, response, keep_alive)
        for connection in connections:
            if self.is_open(connection):
                self.offer_continue(connection)

    def is_open(self, connection: Connection) -> bool:
        return self.connections.get(connection.sock.fileno()) is connection

    def answer_ready(self, connection: Connection) -> None:
        while connection.ready and not connection.close_after_output and not connection.busy:
            request = connection.ready.pop(0)
            self.answer(connection, request, io.BytesIO(b"".join(request.body)), whole=True)

    def answer_unfinished(self, connection: Connection, body: bytes, broken: str | None) -> None:
        """The app answers a request whose body will not arrive whole; the connection closes after it."""
        request = connection.request
        self.gathered_bytes -= request.body_bytes
        request.keep_alive = False
        connection.state = IDLE
        if connection.close_after_output:
            return
        stream = BrokenBody(body, broken) if broken else io.BytesIO(body)
        self.answer(connection, request, stream, whole=False)

    def call_for(
        self, connection: Connection, request: Request, stream: Any, whole: bool = True
    ) -> tuple[dict[str, Any], bool, bool]:
        """The app call of a request: its environ, whether it is a HEAD, whether its connection stays open."""
        keep_alive = request.keep_alive and whole and self.alive
        return self.environ(connection, request, stream), request.method == "HEAD", keep_alive

    def answer(self, connection: Connection, request: Request, stream: Any, whole: bool) -> None:
        environ, head_only, keep_alive = self.call_for(connection, request, stream, whole)
        if self.app_pool is None:
            self.deliver(connection, self.call_app(environ, head_only, keep_alive), keep_alive)
            return
        connection.busy = True
        self.hold(connection)
        self.app_pool.submit(self.call_app_in_thread, connection, environ, head_only, keep_alive)

    def call_app_in_thread(self, connection: Connection, environ: dict[str, Any], head_only: bool, keep: bool) -> None:
        self.answered.put((connection, self.call_app(environ, head_only, keep), keep))
        try:
            os.write(self.answered_pipe[1], b"!")
        except BlockingIOError:
            pass  # the loop has wake-ups pending already: it drains the queue whole

    def on_answered(self, fileobj: Any, mask: int) -> None:
        try:
            os.read(self.answered_pipe[0], 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                connection, response, keep_alive = self.answered.get_nowait()
            except queue.Empty:
                return
            connection.busy = False
            if not self.is_open(connection):
                continue  # closed meanwhile (the worker is stopping)
            self.release(connection)
            self.deliver(connection, response, keep_alive)
            self.answer_ready(connection)  # pipelined requests wait for their turn

    def deliver(self, connection: Connection, response: bytes, keep_alive: bool) -> None:
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
        connection.deadline = time.monotonic() + (self.cfg.keepalive if self.alive else STOP_LINGER_SECONDS)
        if not keep_alive:
            connection.close_after_output = True
        self.send(connection, response)

    def refuse(self, connection: Connection, status: int, reason: str, message: str) -> None:
        if connection.close_after_output:
            return  # the connection ends with the answer already given
        self.log.debug("Invalid request: %s", message)
        connection.close_after_output = True
        connection.state = IDLE
        self.send(connection, error_response(status, reason, message))

    def call_app(self, environ: dict[str, Any], head_only: bool, keep_alive: bool) -> bytes:
        response = AppAnswer()
        try:
            response.read(self.wsgi(environ, response.start))
        except Exception:
            self.log.exception("Error handling request")
            return error_response(500, "Internal Server Error", "internal error")
        return self.response_bytes(response, head_only, keep_alive)

    def call_app_together(self, calls: list[tuple[dict[str, Any], bool, bool]]) -> list[bytes]:
        """The answers to (environ, head only, keep alive) calls, made in one `together` call."""
        assert self.together is not None
        responses = [AppAnswer() for _ in calls]
        results = self.together(
            [(environ, response.start) for (environ, _, _), response in zip(calls, responses, strict=True)]
        )
        for response, result in zip(responses, results, strict=True):
            response.read(result)
        return [
            self.response_bytes(response, head_only, keep_alive)
            for response, (_, head_only, keep_alive) in zip(responses, calls, strict=True)
        ]

    def response_bytes(self, response: AppAnswer, head_only: bool, keep_alive: bool) -> bytes:
        status, headers, body = response.status, response.headers, b"".join(response.chunks)
        lines = [f"HTTP/1.1 {status}\r\n"]
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                has_length = True
            lines.append(f"{name}: {value}\r\n")
        if not has_length:
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append(f"Date: {self.http_date()}\r\n")
        lines.append("\r\n" if keep_alive else "Connection: close\r\n\r\n")
        head = "".join(lines).encode("latin-1")
        return head if head_only else head + body

    def http_date(self) -> str:
        now = int(time.time())
        if self.date[1] != now:
            self.date = (formatdate(now, usegmt=True), now)
        return self.date[0]

    def environ(self, connection: Connection, request: Request, stream: Any) -> dict[str, Any]:
        url = request.url
        if url[:1] != b"/":
            try:
                parsed = httptools.parse_url(url)
                path, query = parsed.path or b"/", parsed.query or b""
            except httptools.HttpParserInvalidURLError:
                path, query = url, b""
        else:
            path, _, query = url.partition(b"?")
            query = query.partition(b"#")[0]
        environ = connection.base_environ.copy()
        environ["REQUEST_METHOD"] = request.method
        environ["PATH_INFO"] = (unquote_to_bytes(path) if b"%" in path else path).decode("latin-1")
        environ["QUERY_STRING"] = query.decode("latin-1")
        environ["SERVER_PROTOCOL"] = "HTTP/1.1" if request.version == "1.1" else f"HTTP/{request.version}"
        environ["wsgi.input"] = stream
        for name, value in request.headers:
            key = ENVIRON_KEYS.get(name)
            if key is None:
                key = environ_key(name)
                if key is None:
                    continue
            text = value.decode("latin-1")
            environ[key] = environ[key] + "," + text if key in environ else text
        return environ

    # Writing --------------------------------------------------------------------------------------------

    def send(self, connection: Connection, data: bytes) -> None:
        if not connection.output:
            try:
                sent = connection.sock.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.close(connection)
                return
            data = data[sent:]
        if data:
            connection.output += data
            connection.deadline = time.monotonic() + self.body_timeout  # a client that does not read
            self.watch(connection, selectors.EVENT_WRITE)
            return
        self.after_output(connection)

    def flush(self, connection: Connection) -> None:
        try:
            sent = connection.sock.send(connection.output)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(connection)
            return
        del connection.output[:sent]
        if not connection.output:
            self.after_output(connection)

    def after_output(self, connection: Connection) -> None:
        if connection.output:
            return
        if connection.close_after_output:
            self.close(connection)
            return
        self.watch(connection, selectors.EVENT_READ)

    def watch(self, connection: Connection, events: int) -> None:
        """Read or write, not both: nothing more is read from a client that does not read its answers."""
        assert self.selector is not None
        if connection.events == events or connection in self.paused:
            return
        try:
            self.selector.modify(connection.sock, events, self.on_event)
        except (KeyError, ValueError):
            return
        connection.events = events

    def hold(self, connection: Connection) -> None:
        """Nothing is read from a connection while its request is in an app thread."""
        assert self.selector is not None
        self.selector.unregister(connection.sock)

    def release(self, connection: Connection) -> None:
        assert self.selector is not None
        connection.events = selectors.EVENT_READ
        self.selector.register(connection.sock, selectors.EVENT_READ, self.on_event)

    def pause(self, connection: Connection) -> None:
        assert self.selector is not None
        self.paused.add(connection)
        self.selector.unregister(connection.sock)
        connection.events = selectors.EVENT_READ

    def resume_paused(self) -> None:
        assert self.selector is not None
        while self.paused and self.gathered_bytes <= GATHER_BUDGET:
            connection = self.paused.pop()
            self.selector.register(connection.sock, selectors.EVENT_READ, self.on_event)

    def close(self, connection: Connection) -> None:
        assert self.selector is not None
        fileno = connection.sock.fileno()
        if self.connections.pop(fileno, None) is None:
            return
        if connection.state == BODY:
            self.gathered_bytes -= connection.request.body_bytes
        if connection in self.paused:
            self.paused.discard(connection)
        elif not connection.busy:
            try:
                self.selector.unregister(connection.sock)
            except (KeyError, ValueError):
                pass
        try:
            connection.sock.close()
        except OSError:
            pass
        if self.alive and len(self.connections) < self.cfg.worker_connections:
            self.set_accepting(True)

    def sweep(self, now: float) -> None:
        """Close what has waited too long: a request that has not arrived in time gets 408 first."""
        assert self.selector is not None
        for connection in list(self.connections.values()):
            if connection.deadline > now or connection.busy:
                continue
            if connection.state == IDLE or connection.output:
                self.close(connection)
                continue
            late = "head" if connection.state == HEAD else "body"
            timeout = self.header_timeout if connection.state == HEAD else self.body_timeout
            if connection.state == BODY:
                self.gathered_bytes -= connection.request.body_bytes
            if connection in self.paused:
                self.paused.discard(connection)
                self.selector.register(connection.sock, selectors.EVENT_READ, self.on_event)
            connection.state = IDLE
            self.refuse(
                connection, 408, "Request Timeout", f"the request {late} did not arrive within {timeout:g} seconds"
            )
        self.resume_paused()
