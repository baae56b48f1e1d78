"""The wait before each retry: exponential, capped, with jitter so replicas do not retry in lockstep."""

import random
from collections.abc import Callable

BASE_SECONDS = 0.5
CAP_SECONDS = 30.0


def backoff_delay(
    retry: int,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number `retry` (0-based): between half and all of min(cap, base·2^retry)."""
    ceiling = min(cap, base * 2**retry)
    return ceiling * (0.5 + 0.5 * jitter())
