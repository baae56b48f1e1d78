"""One `Failure` subclass per way a fetch can end; each has the exit code the pod contract gives it."""

from mlmodel_contract import exit_codes
from mlmodel_server.termination import Failure


class UsageError(Failure, code=exit_codes.USAGE):
    """Bad flags, an unsupported URI scheme or a format that cannot be told: fix the MLModel, not the store."""


class ChecksumMismatch(Failure, code=exit_codes.CHECKSUM_MISMATCH): ...


class NotFound(Failure, code=exit_codes.NOT_FOUND): ...


class AccessDenied(Failure, code=exit_codes.ACCESS_DENIED): ...


class FetchTimeout(Failure, code=exit_codes.FETCH_TIMEOUT): ...


class Truncated(Failure, code=exit_codes.TRUNCATED):
    retryable = True


class TooLarge(Failure, code=exit_codes.TOO_LARGE): ...


class FetchError(Failure, code=exit_codes.FETCH_FAILED):
    """Any other fetch failure; `retryable` says whether another attempt may succeed (5xx, reset connection)."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def is_retryable(failure: Failure) -> bool:
    return bool(getattr(failure, "retryable", False))


class ArchiveRefused(Failure, code=exit_codes.ARCHIVE_REFUSED):
    """A directory artifact that cannot be landed safely, or holds no model: fix the artifact, not the store."""
