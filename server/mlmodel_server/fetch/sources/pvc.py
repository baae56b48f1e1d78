"""`pvc://<claim>/<path>`: a file on a PersistentVolumeClaim the operator mounts at `<pvc-root>/<claim>`."""

from collections.abc import Generator

from mlmodel_server.fetch.context import FetchContext
from mlmodel_server.fetch.errors import NotFound
from mlmodel_server.fetch.sources.local import read_file
from mlmodel_server.fetch.uris import Location


def stream(location: Location, context: FetchContext) -> Generator[bytes, None, None]:
    claim_root = context.pvc_root / location.host
    if not claim_root.is_dir():
        raise NotFound(f"not found: claim {location.host!r} is not mounted at {claim_root} ({location.redacted})")
    return read_file(claim_root / location.path, location.redacted, context)
