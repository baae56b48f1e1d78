"""Pure: when the worker's main thread hands a request on (serving/request_framing.py), fed byte by byte."""

import pytest

from mlmodel_server.serving.request_framing import BODY, HEAD, READY, RequestScan

HEAD_ONLY = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
WITH_LENGTH = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;a=b\r\n}\r\n0\r\nX: 1\r\n\r\n"
)
EXPECT = b"POST /predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}"


def states(raw: bytes) -> list[int]:
    """The scan's state after each byte, as the request arrives one byte at a time."""
    scan = RequestScan(gather_limit=1 << 20)
    return [scan.scan(raw[: end + 1]) for end in range(len(raw))]


@pytest.mark.parametrize("raw", [HEAD_ONLY, WITH_LENGTH, CHUNKED, EXPECT])
def test_ready_exactly_when_the_last_byte_arrives(raw):
    seen = states(raw)
    assert seen[-1] == READY and READY not in seen[:-1]


def test_head_then_body():
    seen = states(WITH_LENGTH)
    head_end = WITH_LENGTH.index(b"\r\n\r\n") + 4
    assert set(seen[: head_end - 1]) == {HEAD} and seen[head_end - 1] == BODY


def test_100_continue_is_noticed_only_for_http_1_1():
    scan = RequestScan(1 << 20)
    scan.scan(EXPECT[:-2])
    assert scan.continue_expected
    old = RequestScan(1 << 20)
    old.scan(EXPECT.replace(b"HTTP/1.1", b"HTTP/1.0")[:-2])
    assert not old.continue_expected


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\nHost: x\n\n",  # bare line feeds
        b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        b"POST / HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX",
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 2000,
    ],
)
def test_what_the_parser_refuses_is_handed_on_at_once(raw):
    assert RequestScan(1 << 20).scan(raw) == READY


def test_a_large_request_is_handed_on_at_the_gather_limit():
    scan = RequestScan(gather_limit=1000)
    raw = b"POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 900
    assert scan.scan(raw) == BODY
    assert scan.scan(raw + b"x" * 100) == READY
