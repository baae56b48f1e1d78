"""Pure: has the first HTTP/1.1 request in a buffer arrived whole? (serving/worker.py gathers requests with it.)

This decides only *when* a request is handed to a request thread, never what the request means: gunicorn's
parser still reads every byte and refuses what is malformed. So anything this scan does not understand, and
anything too large to keep gathering, is `READY`: handed over at once, for the parser to judge.
"""

from dataclasses import dataclass

HEAD = 0  # still waiting for the end of the head
BODY = 1  # the head is here, the body is not
READY = 2  # the request is here (or the parser may as well look at it now)

HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
MAX_CHUNK_LINE = 1024  # a chunk-size line longer than this is refused by the parser anyway


def header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of a header in a lowercased head, None when absent, b"?" when it appears more than once."""
    key = b"\r\n" + name + b":"
    start = head.find(key)
    if start < 0:
        return None
    if head.find(key, start + 1) >= 0:
        return b"?"
    start += len(key)
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip(b" \t")


@dataclass
class RequestScan:
    """Where the scan of one request stands; `scan` resumes from there as more bytes arrive."""

    gather_limit: int
    state: int = HEAD
    body_start: int = 0
    body_end: int = -1  # a body of known length ends here
    chunked: bool = False
    chunk_position: int = 0  # the next chunk-size line starts here
    continue_expected: bool = False  # the client waits for "100 Continue" before it sends the body

    def scan(self, data: bytes | bytearray) -> int:
        if self.state == HEAD:
            self._scan_head(data)
        if self.state == BODY:
            if self.chunked:
                self._scan_chunks(data)
            elif len(data) >= self.body_end:
                self.state = READY
        if self.state != READY and len(data) >= self.gather_limit:
            self.state = READY  # a client this fast is no slow client; the rest is read by the request thread
        return self.state

    def _scan_head(self, data: bytes | bytearray) -> None:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            if data.find(b"\n\n") >= 0:  # bare line feeds: malformed, the parser says so
                self.state = READY
            return
        head = bytes(data[:end]).lower()
        self.body_start = end + 4
        transfer_encoding = header_value(head, b"transfer-encoding")
        length = header_value(head, b"content-length")
        expect = header_value(head, b"expect")
        if (expect is not None and expect != b"100-continue") or (transfer_encoding is not None and length is not None):
            self.state = READY
            return
        # HTTP/1.0 clients do not wait, and the parser ignores their expectation
        self.continue_expected = expect is not None and head[: head.find(b"\r\n")].endswith(b" http/1.1")
        if transfer_encoding is not None:
            self.chunked = transfer_encoding.rsplit(b",", 1)[-1].strip(b" \t") == b"chunked"
            self.state = BODY if self.chunked else READY
            self.chunk_position = self.body_start
        elif length is not None and length.isdigit():
            self.body_end = self.body_start + int(length)
            self.state = BODY
        else:
            self.state = READY  # no body, or a Content-Length the parser refuses

    def _scan_chunks(self, data: bytes | bytearray) -> None:
        while True:
            line_end = data.find(b"\r\n", self.chunk_position)
            if line_end < 0:
                if len(data) - self.chunk_position > MAX_CHUNK_LINE:
                    self.state = READY
                return
            size_text = bytes(data[self.chunk_position : line_end]).split(b";", 1)[0].rstrip(b" \t")
            if not size_text or not HEX_DIGITS.issuperset(size_text):
                self.state = READY
                return
            size = int(size_text, 16)
            if size == 0:
                # the last chunk: then trailer lines, if any, and an empty line
                if data.find(b"\r\n\r\n", line_end) >= 0 or len(data) - line_end > MAX_CHUNK_LINE * 8:
                    self.state = READY
                return
            chunk_end = line_end + 2 + size
            if len(data) < chunk_end + 2:
                return
            if data[chunk_end : chunk_end + 2] != b"\r\n":
                self.state = READY
                return
            self.chunk_position = chunk_end + 2
