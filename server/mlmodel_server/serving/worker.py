"""gunicorn's gthread worker, except that a request thread keeps serving its kept-alive connection.

In gthread every request of a kept-alive connection travels through the worker's main thread: the request
thread hands the connection back (a queue and a pipe write), the main thread registers it with epoll again,
wakes when the next request arrives and submits it to the thread pool: three thread switches per request,
each one a hand-over of the GIL, on a core that also runs the model. A client that sends requests back to
back (a load balancer, a batch job) pays for that on every request.

Here a request thread that has just answered on a kept-alive connection waits up to `LINGER_MILLISECONDS` for
the next request on it and serves it at once. It does so only while the worker has no more connections
than threads, so a waiting thread never keeps another connection from being served; beyond that the worker
behaves exactly like gthread, where every connection waits its turn in the pool's queue (with 64 connections
and 64 threads instead, the p99 doubled: 64 threads take turns at the GIL less fairly than a queue does).
Measured on one core against gthread, forest with compiled kernels: 100-row batches at concurrency 8
+15-21 % requests/s, single rows at concurrency 8 +7-25 %, at concurrency 64 (more connections than
threads) unchanged.

A request is handed to a request thread only once it has arrived whole (`request_framing.py`): until then the
main thread gathers its bytes from the poller, with no thread waiting on it. gthread instead reads a request in
the thread it gave the connection to, so clients that send part of a request and wait (a slowloris) held every
thread and starved the rest. A request whose head has not arrived within `header_timeout` seconds, or whose
body has not arrived `body_timeout` seconds after its head, is answered 408 and its connection closed; a
request thread's own reads (the rest of a request too large to gather: over the body limit, or past the
worker's gathering budget) are bounded by `body_timeout` too. A client that expects "100 Continue" gets it
from the main thread, which then gathers the body as any other.

What gunicorn's parser refuses is answered with a JSON error (gunicorn writes an HTML page), and a body the app
left unread that turns out broken costs the connection, not a second response.

This builds on gthread's internals in gunicorn 27 (pinned in pyproject.toml): `finish_request`, `murder_pending`,
`handle_request`, `_keepalive_after`, `TConn` and the parser's unreader; the tests in tests/server exercise
every one of them over real sockets.
"""

import select
import selectors
import socket
import time
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

from mlmodel_server.errors import error_body
from mlmodel_server.serving.request_framing import BODY, HEAD, READY, RequestScan

# How long a request thread waits for the next request on its connection before handing the connection
# back to the main thread's poller. Clients sending back to back answer within a fraction of this.
LINGER_MILLISECONDS = 2
# A request is gathered up to the largest body the app accepts plus this much for its head (gunicorn's largest
# head is below it); beyond, the app refuses it anyway, and it is handed over for the parser and app to say so.
HEAD_ALLOWANCE = 1 << 20
# What a worker holds of requests still arriving, all connections together. Past it a request is handed over as
# it is and its thread reads the rest, as in gthread: memory stays bounded, threads may then wait again.
GATHER_BUDGET = 128 << 20
RECV_BYTES = 1 << 16
SWEEP_SECONDS = 0.25
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# What `handle` returns for a connection whose request has not arrived whole: the main thread gathers the rest.
GATHER = object()


# What gunicorn's parser refuses is the client's error: 400 unless one of these says better. gunicorn itself
# answers an unsupported transfer coding with 501; nothing a client sends gets a 5xx here.
CLIENT_ERROR_STATUS: dict[type, tuple[int, str]] = {
    http_errors.LimitRequestLine: (414, "URI Too Long"),
    http_errors.LimitRequestHeaders: (431, "Request Header Fields Too Large"),
    http_errors.ExpectationFailed: (417, "Expectation Failed"),
    http_errors.ForbiddenProxyRequest: (403, "Forbidden"),
}
# Raised while writing the response: the application's fault, not the client's.
APPLICATION_ERRORS = (http_errors.InvalidResponseHeader, http_errors.InvalidResponseHeaderName)


def may_linger(alive: bool, connections: int, threads: int) -> bool:
    return alive and connections <= threads


def error_status(error: BaseException) -> tuple[int, str]:
    if isinstance(error, http_errors.ParseException) and not isinstance(error, APPLICATION_ERRORS):
        for kind, status in CLIENT_ERROR_STATUS.items():
            if isinstance(error, kind):
                return status
        return 400, "Bad Request"
    return 500, "Internal Server Error"


def error_response(status: int, reason: str, message: str) -> bytes:
    """A JSON error in the app's shape (errors.py), for a request the app never saw; the connection closes."""
    body = error_body(message, "")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class DeadlineReads:
    """The socket as gunicorn's parser reads it: every read fails with TimeoutError past `deadline`."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.deadline = 0.0

    def recv(self, size: int) -> bytes:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or not wait_readable(self.sock, remaining):
            raise TimeoutError("the request did not arrive in time")
        return self.sock.recv(size)


def wait_readable(sock: socket.socket, seconds: float) -> bool:
    poller = select.poll()  # not select.select: descriptors above 1023 are normal here
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(max(seconds, 0.0) * 1000))


class Gathering:
    """One connection's request while it arrives: its bytes so far, how far they were scanned, its deadline."""

    def __init__(self, deadline: float, gather_limit: int):
        self.data = bytearray()
        self.scan = RequestScan(gather_limit)
        self.state = HEAD
        self.deadline = deadline
        self.eof = False
        self.continue_sent = False


class KeepAliveThreadWorker(ThreadWorker):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    gather_limit: int = 10 * 1024 * 1024 + HEAD_ALLOWANCE

    @classmethod
    def configured(
        cls, header_timeout: float, body_timeout: float, max_request_bytes: int
    ) -> type["KeepAliveThreadWorker"]:
        """gunicorn takes a worker class and has no setting for these: a subclass carries them."""
        return type(
            cls.__name__,
            (cls,),
            {
                "header_timeout": header_timeout,
                "body_timeout": body_timeout,
                "gather_limit": max_request_bytes + HEAD_ALLOWANCE,
            },
        )

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.gathering: dict[TConn, Gathering] = {}
        self.gathered_bytes = 0  # of the requests in `gathering`
        self.next_sweep = 0.0

    def handle(self, conn: Any) -> Any:
        if not self.take_request(conn):
            return GATHER
        keep_alive = super().handle(conn)
        while keep_alive is True and may_linger(self.alive, self.nr_conns, self.cfg.threads):
            # gunicorn may have read the start of the next request already (draining a body reads ahead).
            if not conn.parser.unreader.buf.getvalue() and not wait_readable(conn.sock, LINGER_MILLISECONDS / 1000):
                break
            if not self.take_request(conn):
                return GATHER
            keep_alive = super().handle(conn)
        return keep_alive

    # Request threads ---------------------------------------------------------------------------------------

    def take_request(self, conn: Any) -> bool:
        """Whether the connection's next request is here whole, read without waiting; if so it is put where
        gunicorn's parser reads it. Runs in a request thread."""
        conn.init()  # once per connection: the parser; the socket blocks from here on in request threads
        unreader = conn.parser.unreader
        if not isinstance(unreader.sock, DeadlineReads):
            unreader.sock = DeadlineReads(conn.sock)
        gathering = getattr(conn, "gathered", None) or Gathering(
            time.monotonic() + self.header_timeout, self.gather_limit
        )
        conn.gathered = None
        gathering.data += unreader.take_buffered()  # read ahead while the last request's body was drained
        if gathering.state != READY and not gathering.eof:
            self.advance(conn.sock, gathering)
            if gathering.state != READY:
                self.receive(conn.sock, gathering, socket.MSG_DONTWAIT)
            # A new connection's first bytes, or a request's second packet, are usually a moment away.
            if gathering.state != READY and not gathering.eof and wait_readable(conn.sock, LINGER_MILLISECONDS / 1000):
                self.receive(conn.sock, gathering, socket.MSG_DONTWAIT)
        if gathering.state != READY and not gathering.eof:
            conn.gathered = gathering
            return False
        unreader.unread(bytes(gathering.data))
        unreader.sock.deadline = time.monotonic() + self.body_timeout
        conn.continue_sent = gathering.continue_sent
        return True

    def receive(self, sock: socket.socket, gathering: Gathering, flags: int = 0) -> None:
        try:
            data = sock.recv(RECV_BYTES, flags)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset: the parser meets the end of the stream and the connection closes
        if not data:
            gathering.eof = True
            return
        if gathering.state == HEAD and not gathering.data:  # the request starts: its head has this long
            gathering.deadline = time.monotonic() + self.header_timeout
        gathering.data += data
        self.advance(sock, gathering)

    def advance(self, sock: socket.socket, gathering: Gathering) -> None:
        state = gathering.scan.scan(gathering.data)
        if state == BODY and gathering.state == HEAD:  # the head is complete: the body has this long
            gathering.deadline = time.monotonic() + self.body_timeout
            if gathering.scan.continue_expected:
                # The client sends the body only when asked; gathering it must not wait for a request thread.
                try:
                    sock.send(CONTINUE)
                except OSError:
                    pass
                gathering.continue_sent = True
        gathering.state = state

    def handle_request(self, req: Any, conn: Any) -> Any:
        if getattr(conn, "continue_sent", False):
            req._expected_100_continue = False  # sent while gathering: gunicorn would send it again
        return super().handle_request(req, conn)

    # The main thread ---------------------------------------------------------------------------------------

    def finish_request(self, conn: Any, fs: Any) -> None:
        if not fs.cancelled() and fs.exception() is None and fs.result() is GATHER:
            self.gather(conn)
            return
        super().finish_request(conn, fs)

    def gather(self, conn: Any) -> None:
        gathering = conn.gathered
        conn.sock.setblocking(False)
        self.gathering[conn] = gathering
        self.gathered_bytes += len(gathering.data)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_gathering_readable, conn))

    def on_gathering_readable(self, conn: Any, client: Any) -> None:
        gathering = self.gathering[conn]
        before = len(gathering.data)
        self.receive(conn.sock, gathering)
        self.gathered_bytes += len(gathering.data) - before
        if gathering.state == READY or gathering.eof or self.gathered_bytes > GATHER_BUDGET:
            self.stop_gathering(conn)
            self.enqueue_req(conn)

    def stop_gathering(self, conn: Any) -> Gathering:
        gathering = self.gathering.pop(conn)
        self.gathered_bytes -= len(gathering.data)
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        return gathering

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        if now < self.next_sweep:
            return
        self.next_sweep = now + SWEEP_SECONDS
        for conn, gathering in list(self.gathering.items()):
            if not self.alive:  # a stopping worker waits for a request in progress as it does for kept-alive ones
                gathering.deadline = min(gathering.deadline, now + STOP_KEEPALIVE_LINGER)
            if gathering.deadline > now:
                continue
            self.stop_gathering(conn)
            if gathering.data:
                late = "head" if gathering.state == HEAD else "body"
                timeout = self.header_timeout if gathering.state == HEAD else self.body_timeout
                message = f"the request {late} did not arrive within {timeout:g} seconds"
                try:
                    util.write_nonblock(conn.sock, error_response(408, "Request Timeout", message))
                except OSError:
                    pass
            self.nr_conns -= 1
            conn.close()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        """gunicorn answers what its parser refuses with an HTML page: answer JSON instead."""
        status, reason = error_status(exc)
        if status >= 500:
            self.log.exception("Error handling request")
            message = f"internal error ({type(exc).__name__})"
        else:
            self.log.debug("Invalid request: %s: %s", type(exc).__name__, exc)
            message = f"malformed request ({type(exc).__name__}: {str(exc)[:200]})"
        try:
            util.write_nonblock(client, error_response(status, reason, message))
        except Exception:
            self.log.debug("Failed to send error message.")

    def _keepalive_after(self, conn: Any, keepalive: bool) -> bool:
        """The response is out; if the unread rest of the body is broken, only the connection is lost."""
        try:
            return super()._keepalive_after(conn, keepalive)
        except Exception:
            return False
