"""The total time budget of one fetch, shared by every attempt, retry wait and socket read."""

import time
from collections.abc import Callable


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._seconds = seconds
        self._ends_at = clock() + seconds

    @property
    def seconds(self) -> float:
        return self._seconds

    def remaining(self) -> float:
        return max(0.0, self._ends_at - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0
