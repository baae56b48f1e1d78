"""`file://` URIs and plain paths."""

import os
from collections.abc import Generator
from pathlib import Path

from mlmodel_server.fetch.context import CHUNK_SIZE, FetchContext
from mlmodel_server.fetch.errors import AccessDenied, FetchError, NotFound
from mlmodel_server.fetch.uris import Location


def stream(location: Location, context: FetchContext) -> Generator[bytes, None, None]:
    return read_file(Path(location.path), location.redacted, context)


def read_file(path: Path, label: str, context: FetchContext) -> Generator[bytes, None, None]:
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"not found: {label}") from None
    except PermissionError:
        raise AccessDenied(f"access denied: cannot read {label}") from None
    except IsADirectoryError:
        raise FetchError(f"{label} is a directory; the URI must name one model file") from None
    except OSError as error:
        raise FetchError(f"cannot read {label}: {error.strerror}") from None
    with handle:
        context.check_announced_size(os.fstat(handle.fileno()).st_size, label)
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk
            context.check_deadline(label)
