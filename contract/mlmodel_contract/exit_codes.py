"""Every exit code of `mlmodel-server fetch` and `serve`, with the status reason the operator reports for it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExitCode:
    code: int
    reason: str  # the MLModel's Ready condition reason when a container exits with this code
    meaning: str  # for people: docs/pod-contract.md


OK = 0
USAGE = ExitCode(2, "FetchUsageError", "usage: bad flags, an unsupported URI scheme or a format that cannot be told")
CHECKSUM_MISMATCH = ExitCode(10, "ArtifactDigestMismatch", "sha256 mismatch")
NOT_FOUND = ExitCode(11, "ArtifactNotFound", "not found")
ACCESS_DENIED = ExitCode(12, "ArtifactAccessDenied", "access denied / auth failed")
FETCH_TIMEOUT = ExitCode(13, "ArtifactFetchTimeout", "timeout")
TRUNCATED = ExitCode(14, "ArtifactTruncated", "truncated body")
TOO_LARGE = ExitCode(15, "ArtifactTooLarge", "too large")
FETCH_FAILED = ExitCode(16, "ArtifactFetchFailed", "other fetch error")
ARCHIVE_REFUSED = ExitCode(
    17,
    "ArtifactArchiveRefused",
    "directory artifact refused: an archive or s3 prefix that escapes its directory, holds a link, exceeds the "
    "file-count, size or expansion caps, cannot be read, or holds no model",
)

LOAD_FAILED = ExitCode(20, "ModelLoadFailed", "load failed (also: unreadable or empty API key file)")
UNVERIFIED_MODEL_REFUSED = ExitCode(
    21, "UnverifiedModelRefused", "unverified pickle refused, or the file no longer matches the sha256 in `model.json`"
)
SKLEARN_VERSION_MISMATCH = ExitCode(22, "SklearnVersionMismatch", "scikit-learn version mismatch (policy `error`)")

FETCH: tuple[ExitCode, ...] = (
    USAGE,
    CHECKSUM_MISMATCH,
    NOT_FOUND,
    ACCESS_DENIED,
    FETCH_TIMEOUT,
    TRUNCATED,
    TOO_LARGE,
    FETCH_FAILED,
    ARCHIVE_REFUSED,
)
SERVE: tuple[ExitCode, ...] = (LOAD_FAILED, UNVERIFIED_MODEL_REFUSED, SKLEARN_VERSION_MISMATCH)
# A successful `fetch` that found a version skew writes one termination-message line starting with this; the
# operator turns it into the VersionSkew condition (the server exits 22 with the same reason under `error`).
VERSION_SKEW_MESSAGE_PREFIX = f"{SKLEARN_VERSION_MISMATCH.reason}:"


def reasons(codes: tuple[ExitCode, ...]) -> dict[int, str]:
    """{exit code: status reason}"""
    return {exit_code.code: exit_code.reason for exit_code in codes}
