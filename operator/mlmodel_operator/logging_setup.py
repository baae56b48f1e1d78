"""The operator's log: JSON lines (the image's default) or timestamped text (`make run`), and the lines a
person needs: one per reconcile that changed something, one per failure, one per API server outage and
one per recovery. Not one per no-op resync, and no traceback for an expected outage.

kopf logs each failed attempt of each of its watch requests while the API server is away ("Request
attempt #1/9 failed; will retry: ... ClientConnectorError"): those are folded into the one outage line
(`Reachability`). A request that still fails after kopf's last retry is logged as kopf logs it.
"""

from __future__ import annotations

import logging

import kopf

from mlmodel_operator.reachability import Reachability

# kopf's names for "the API server did not answer" (aiohttp's connection errors, kopf's 5xx, timeouts).
_UNREACHABLE_MARKERS = (
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "ClientPayloadError",
    "TimeoutError",
    "APIServerError",
    "ConnectionResetError",
    "ConnectionRefusedError",
)
# What a starting API server answers before its caches are warm: 429 "storage is (re)initializing", 403
# while its RBAC authorizer syncs, and 5xx while its storage reconnects. Part of the outage when it follows
# one (a watch that failed during the outage may report only after the recovery line); otherwise a 5xx opens an
# outage and the others are logged as kopf logs them.
_SETTLING_MARKERS = ("APITooManyRequestsError", "APIForbiddenError", "APIServerError")


class KopfRetriesAsOutage(logging.Filter):
    def __init__(self, reachability: Reachability):
        super().__init__()
        self._reachability = reachability

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            not isinstance(record.msg, str)
            or not record.msg.startswith("Request attempt")
            or "will retry" not in record.msg
        ):
            return True
        if self._reachability.settling() and any(marker in record.msg for marker in _SETTLING_MARKERS):
            return False
        found = next((marker for marker in _UNREACHABLE_MARKERS if marker in record.msg), None)
        if found is not None:
            self._reachability.failed(f"{found} on kopf's watch")
            return False
        return True


def configure(log_format: str, verbose: bool, reachability: Reachability) -> None:
    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON if log_format == "json" else kopf.LogFormat.FULL)
    if not verbose:
        # kopf logs "Handler '...' succeeded." at INFO for every watch event of every child and pod (a dozen
        # per MLModel created): noise, and formatting it cost the event loop more than the handlers did.
        # Failures are warnings and errors, and still logged.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # urllib3 warns about each of its own connection retries; the outage line says it once.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(KopfRetriesAsOutage(reachability))
