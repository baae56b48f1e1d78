"""Parse an artifact URI into a `Location` (pure functions)."""

from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from mlmodel_server.fetch.errors import UsageError
from mlmodel_server.fetch.redaction import redact_uri

SUPPORTED_SCHEMES = ("file", "http", "https", "s3", "pvc")


@dataclass(frozen=True)
class Location:
    """Where an artifact lives. `host` is the bucket (s3) or claim (pvc); `path` is the key for s3."""

    uri: str
    scheme: str
    host: str
    path: str

    @property
    def redacted(self) -> str:
        return redact_uri(self.uri)


def parse_uri(uri: str) -> Location:
    uri = uri.strip()
    if not uri:
        raise UsageError("empty model URI")
    if "://" not in uri:
        return Location(uri=uri, scheme="file", host="", path=uri)
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_SCHEMES:
        raise UsageError(
            f"unsupported URI scheme {scheme!r} in {redact_uri(uri)} (supported: {', '.join(SUPPORTED_SCHEMES)})"
        )
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise UsageError(f"no host in {redact_uri(uri)}")
        return Location(uri=uri, scheme=scheme, host=parts.hostname, path=parts.path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file:// URIs must name a local path, not host {parts.netloc!r}: {redact_uri(uri)}")
        return Location(uri=uri, scheme="file", host="", path=unquote(parts.path))
    return _bucket_or_claim_location(uri, scheme, parts.netloc, unquote(parts.path))


def _bucket_or_claim_location(uri: str, scheme: str, host: str, path: str) -> Location:
    what = "bucket" if scheme == "s3" else "claim"
    relative = path.lstrip("/")
    if not host or not relative:
        raise UsageError(
            f"{scheme}:// URIs need a {what} and a path: {scheme}://<{what}>/<path>, got {redact_uri(uri)}"
        )
    if scheme == "pvc" and ".." in PurePosixPath(relative).parts:
        raise UsageError(f"pvc:// paths must stay inside the claim: {redact_uri(uri)}")
    return Location(uri=uri, scheme=scheme, host=host, path=relative)
