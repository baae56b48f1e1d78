"""metav1.Condition handling: build the full list, keeping lastTransitionTime while a status does not flip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .redaction import redact

READY = "Ready"
RECONCILING = "Reconciling"
STALLED = "Stalled"
# Present (True) only while a current pod reports a scikit-learn version skew; never changes Ready.
VERSION_SKEW = "VersionSkew"

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"
MAX_MESSAGE_LENGTH = 32768


@dataclass(frozen=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str


def format_time(now: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API server stores metav1.Time."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: list[dict[str, Any]] | None, condition_type: str) -> dict[str, Any] | None:
    for condition in conditions or []:
        if condition.get("type") == condition_type:
            return condition
    return None


def is_true(conditions: list[dict[str, Any]] | None, condition_type: str) -> bool:
    condition = find(conditions, condition_type)
    return condition is not None and condition.get("status") == TRUE


def merge(
    previous: list[dict[str, Any]] | None, desired: list[Condition], generation: int, now: datetime
) -> list[dict[str, Any]]:
    """The complete condition list for a status write: desired conditions in order, each stamped with the
    generation; lastTransitionTime comes from the previous condition of that type if its status is unchanged.
    Messages are redacted: a pod's termination message or an API error may quote a URI with a password."""
    result = []
    for condition in desired:
        before = find(previous, condition.type) or {}
        kept_time = before.get("lastTransitionTime") if before.get("status") == condition.status else None
        result.append(
            {
                "type": condition.type,
                "status": condition.status,
                "observedGeneration": generation,
                "lastTransitionTime": kept_time or format_time(now),
                "reason": condition.reason,
                "message": redact(condition.message)[:MAX_MESSAGE_LENGTH],
            }
        )
    return result
