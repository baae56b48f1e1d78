"""One `Failure` subclass per way a fetch can end; each has the exit code the pod contract gives it."""

from mlmodel_contract import exit_codes
from mlmodel_server.termination import Failure


class UsageError(Failure):
    """Bad flags, an unsupported URI scheme or a format that cannot be told: fix the MLModel, not the store."""

    exit_code = exit_codes.USAGE.code


class ChecksumMismatch(Failure):
    exit_code = exit_codes.CHECKSUM_MISMATCH.code


class NotFound(Failure):
    exit_code = exit_codes.NOT_FOUND.code


class AccessDenied(Failure):
    exit_code = exit_codes.ACCESS_DENIED.code


class FetchTimeout(Failure):
    exit_code = exit_codes.FETCH_TIMEOUT.code


class Truncated(Failure):
    exit_code = exit_codes.TRUNCATED.code
    retryable = True


class TooLarge(Failure):
    exit_code = exit_codes.TOO_LARGE.code


class FetchError(Failure):
    """Any other fetch failure; `retryable` says whether another attempt may succeed (5xx, reset connection)."""

    exit_code = exit_codes.FETCH_FAILED.code

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def is_retryable(failure: Failure) -> bool:
    return bool(getattr(failure, "retryable", False))
