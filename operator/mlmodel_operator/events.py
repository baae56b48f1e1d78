"""The Events an MLModel's status change is worth: transitions only, never a resync (pure)."""

from __future__ import annotations

from typing import Any, NamedTuple

from . import conditions as cond


class Event(NamedTuple):
    """An Event to post on the MLModel; unpacks as (type, reason, message)."""

    type: str  # "Normal" or "Warning"
    reason: str
    message: str


MAX_EVENT_MESSAGE = 1024


def _one_line(message: str) -> str:
    return " ".join(message.split())[:MAX_EVENT_MESSAGE]


def events_for_transition(old_status: dict[str, Any] | None, new_status: dict[str, Any]) -> list[Event]:
    """Events worth emitting when the status moves from old to new: transitions only, never on a resync."""
    old_conditions = (old_status or {}).get("conditions")
    new_conditions = new_status.get("conditions")
    old_ready, new_ready = cond.find(old_conditions, cond.READY), cond.find(new_conditions, cond.READY)
    old_stalled, new_stalled = cond.find(old_conditions, cond.STALLED), cond.find(new_conditions, cond.STALLED)
    events: list[Event] = []

    new_reconciling = cond.find(new_conditions, cond.RECONCILING)
    if (
        new_reconciling
        and new_reconciling["status"] == cond.TRUE
        and not cond.is_true(old_conditions, cond.RECONCILING)
    ):
        events.append(Event("Normal", "RolloutStarted", _one_line(new_reconciling["message"])))

    if (
        new_stalled
        and new_stalled["status"] == cond.TRUE
        and (
            not old_stalled
            or old_stalled.get("status") != cond.TRUE
            or old_stalled.get("reason") != new_stalled["reason"]
        )
    ):
        events.append(Event("Warning", new_stalled["reason"], _one_line(new_stalled["message"])))
    elif (
        new_ready
        and new_ready["status"] == cond.FALSE
        and (not old_ready or old_ready.get("status") != cond.FALSE or old_ready.get("reason") != new_ready["reason"])
    ):
        events.append(Event("Warning", new_ready["reason"], _one_line(new_ready["message"])))

    new_skew = cond.find(new_conditions, cond.VERSION_SKEW)
    if (
        new_skew
        and new_skew["status"] == cond.TRUE
        and not cond.is_true(old_conditions, cond.VERSION_SKEW)
        and all(e.reason != new_skew["reason"] for e in events)
    ):  # policy `error`: Ready=False says it already
        events.append(Event("Warning", new_skew["reason"], _one_line(new_skew["message"])))

    if new_ready and new_ready["status"] == cond.TRUE and not cond.is_true(old_conditions, cond.READY):
        events.append(Event("Normal", "ModelReady", _one_line(new_ready["message"])))
    return events
