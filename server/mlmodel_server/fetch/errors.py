"""One `Failure` subclass per way a fetch can end; each has the exit code the pod contract gives it."""

from mlmodel_server.termination import Failure


class UsageError(Failure):
    """Bad flags, an unsupported URI scheme or a format that cannot be told: fix the MLModel, not the store."""

    exit_code = 2


class ChecksumMismatch(Failure):
    exit_code = 10


class NotFound(Failure):
    exit_code = 11


class AccessDenied(Failure):
    exit_code = 12


class FetchTimeout(Failure):
    exit_code = 13


class Truncated(Failure):
    exit_code = 14
    retryable = True


class TooLarge(Failure):
    exit_code = 15


class FetchError(Failure):
    """Any other fetch failure; `retryable` says whether another attempt may succeed (5xx, reset connection)."""

    exit_code = 16

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def is_retryable(failure: Failure) -> bool:
    return bool(getattr(failure, "retryable", False))
