"""Failures that end the process with a distinct exit code and one readable line.

Kubernetes copies the termination-message file into the pod status, where the operator reads it
and shows it in the MLModel's `Ready` condition. The line must never contain credentials.
`fetch` also writes one line there when it succeeds with something to report (a scikit-learn version skew).
"""

import os
import sys
from pathlib import Path

from mlmodel_contract import exit_codes, pod

DEFAULT_TERMINATION_MESSAGE_PATH = pod.TERMINATION_MESSAGE_PATH


class Failure(Exception):
    """An expected, user-facing failure: `str(self)` is the one-line message. A subclass names its exit code
    from the contract: `class NotFound(Failure, code=exit_codes.NOT_FOUND)`."""

    exit_code = 1

    def __init_subclass__(cls, code: exit_codes.ExitCode | None = None, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.exit_code = code.code

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))  # one line, always


def termination_message_path(explicit: str | None = None) -> Path | None:
    path = explicit or os.environ.get(pod.TERMINATION_MESSAGE_PATH_ENV) or DEFAULT_TERMINATION_MESSAGE_PATH
    candidate = Path(path)
    if candidate.exists() and not os.access(candidate, os.W_OK):
        return None
    if not candidate.exists() and not os.access(candidate.parent, os.W_OK):
        return None
    return candidate


def report(failure: Failure, path: str | None = None) -> int:
    """Print the failure on stderr, write it to the termination-message file, return its exit code."""
    line = str(failure)
    print(line, file=sys.stderr, flush=True)
    write_termination_message(line, path)
    return failure.exit_code


def write_termination_message(line: str, path: str | None = None) -> None:
    target = termination_message_path(path)
    if target is not None:
        try:
            target.write_text(line + "\n")
        except OSError:
            pass  # the line is on stderr too; a read-only or missing file must not hide it
