"""Keep credentials out of every log line, message and metadata file (pure functions)."""

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

from mlmodel_contract.pod import SECRET_CREDENTIAL_KEYS
from mlmodel_contract.redaction import REDACTED, redact_userinfo

__all__ = ["REDACTED", "redact_uri", "redact_userinfo", "scrub"]

# Query parameters that carry signatures or tokens: presigned S3/GCS URLs, Azure SAS, API tokens.
_SECRET_QUERY_KEY = re.compile(
    r"^(x-amz-|x-goog-)|sig|token|key|secret|pass|auth|credential|session|code", re.IGNORECASE
)

# Environment variables whose values must never be printed (the credentials the operator injects).
CREDENTIAL_ENV_NAMES = SECRET_CREDENTIAL_KEYS


def redact_uri(uri: str) -> str:
    """Drop userinfo and the values of signature-like query parameters; leave the rest readable."""
    if "://" not in uri:
        return redact_userinfo(uri)
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(key, safe='-_.~')}={REDACTED if _SECRET_QUERY_KEY.search(key) else quote(value, safe='-_.~/')}"
            for key, value in pairs
        )
    return redact_userinfo(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def scrub(text: str, uris: Iterable[str] = (), env: Mapping[str, str] | None = None) -> str:
    """Replace every raw URI with its redacted form, every credential value from `env` and any other
    userinfo-shaped text with REDACTED."""
    for uri in uris:
        if uri:
            text = text.replace(uri, redact_uri(uri))
    for name in CREDENTIAL_ENV_NAMES:
        value = (env or {}).get(name, "")
        if len(value) >= 4:  # a 1–3 character "secret" would blank out ordinary words
            text = text.replace(value, REDACTED)
            _scheme, _, token = value.partition(" ")  # "Bearer abc": the token alone must go too
            if token and len(token) >= 4:
                text = text.replace(token, REDACTED)
    return redact_userinfo(text)
