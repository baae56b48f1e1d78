"""Whether the API server answers: one log line when it stops, one when it answers again.

An API server restart or a network cut is an expected outage, not a crash: every request made
meanwhile fails the same way, and a line (or a traceback) per failed request would bury the one
fact that matters. The Kube boundary reports every request's outcome here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

# Answers that mean "the API server is not serving right now", as opposed to a refusal of this request.
UNAVAILABLE_STATUSES = frozenset({0, 502, 503, 504})
# A restarted API server answers before its caches are warm: for a little while it refuses what it will
# allow (403 while the RBAC authorizer syncs) or asks to wait (429 "storage is (re)initializing").
SETTLING_SECONDS = 30.0


class Reachability:
    def __init__(self, logger: logging.Logger, clock: Callable[[], float] = time.monotonic):
        self._logger = logger
        self._clock = clock
        self._guard = threading.Lock()
        self._down_since: float | None = None
        self._back_at: float | None = None

    @property
    def reachable(self) -> bool:
        return self._down_since is None

    def settling(self) -> bool:
        """Unreachable now, or answering again for less than SETTLING_SECONDS: refusals may be the restart's."""
        back_at = self._back_at
        return not self.reachable or (back_at is not None and self._clock() - back_at < SETTLING_SECONDS)

    def failed(self, reason: str) -> None:
        with self._guard:
            if self._down_since is not None:
                return
            self._down_since = self._clock()
        self._logger.warning("the API server is unreachable (%s); retrying until it answers", reason)

    def succeeded(self) -> None:
        with self._guard:
            if self._down_since is None:
                return
            self._back_at = self._clock()
            seconds, self._down_since = self._back_at - self._down_since, None
        self._logger.warning("the API server answers again after %.0f s unreachable", seconds)
