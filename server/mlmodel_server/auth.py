"""The optional API key: `X-API-Key: KEY` or `Authorization: Bearer KEY`, compared in constant time."""

import hmac
from pathlib import Path

from mlmodel_contract import exit_codes
from mlmodel_contract.pod import ServeEnv
from mlmodel_server.termination import Failure

API_KEY_VARIABLE = ServeEnv.API_KEY

# Probes, metrics scrapes and the API description never need the key: kubelet and Prometheus do not have it.
OPEN_PATHS = frozenset({"/health", "/ready", "/metrics", "/openapi.json", "/v2/health/live", "/v2/health/ready"})


class ApiKeyUnreadable(Failure, code=exit_codes.LOAD_FAILED): ...


def load_api_key(key_file: str | None, environment: dict[str, str]) -> bytes | None:
    if key_file:
        try:
            key = Path(key_file).read_text().strip()
        except OSError as error:
            raise ApiKeyUnreadable(f"cannot read the API key file {key_file}: {error.strerror}") from None
        if not key:
            raise ApiKeyUnreadable(f"the API key file {key_file} is empty")
        return key.encode()
    key = environment.get(API_KEY_VARIABLE, "").strip()
    return key.encode() if key else None


def presented_key(headers) -> bytes | None:
    key = headers.get("X-API-Key")
    if key is None:
        authorization = headers.get("Authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return None
        key = credentials
    return key.strip().encode("utf-8", errors="replace")


def is_authorized(headers, expected: bytes) -> bool:
    presented = presented_key(headers)
    return presented is not None and hmac.compare_digest(presented, expected)
