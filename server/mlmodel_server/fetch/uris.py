"""The fetcher's view of an artifact URI: the contract's parser, with URIs redacted in its messages."""

import dataclasses

from mlmodel_contract import artifacts
from mlmodel_server.fetch.errors import UsageError
from mlmodel_server.fetch.redaction import redact_uri


@dataclasses.dataclass(frozen=True)
class Location(artifacts.Location):
    @property
    def redacted(self) -> str:
        return redact_uri(self.uri)


def parse_uri(uri: str) -> Location:
    """mlmodel_contract.artifacts.parse_uri; a URI it refuses is a usage error (exit 2)."""
    try:
        parsed = artifacts.parse_uri(uri, display=redact_uri)
    except artifacts.InvalidUri as error:
        raise UsageError(str(error)) from None
    return Location(**dataclasses.asdict(parsed))
