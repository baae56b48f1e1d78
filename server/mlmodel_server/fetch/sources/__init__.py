"""One module per URI scheme, each exposing `stream(location, context) -> Generator[bytes, None, None]`.

A stream yields the artifact's bytes in order and raises a `Failure` from `mlmodel_server.fetch.errors`
for anything that goes wrong (not found, denied, truncated, ...). Hashing, the size cap while writing,
retries and landing the file are the caller's job, so every scheme gets them the same way.
"""

import importlib
from collections.abc import Generator
from typing import Protocol

from mlmodel_server.fetch.context import FetchContext
from mlmodel_server.fetch.uris import Location

_MODULE_BY_SCHEME = {
    "file": "local",
    "pvc": "pvc",
    "http": "http",
    "https": "http",
    "s3": "s3",
}


class Stream(Protocol):
    def __call__(self, location: Location, context: FetchContext) -> Generator[bytes, None, None]: ...


def stream_for(scheme: str) -> Stream:
    # Imported on demand: a file:// fetch should not pay for importing boto3.
    module = importlib.import_module(f"{__name__}.{_MODULE_BY_SCHEME[scheme]}")
    return module.stream
