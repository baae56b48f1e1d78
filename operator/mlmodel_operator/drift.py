"""Does a live child still carry everything the operator wants in it? (pure)

Server-side apply owns exactly the fields the operator sends, so a child has drifted when one of
those fields is missing or different; fields the API server or other controllers added are not
drift. Comparing before applying is what lets a no-op resync write nothing.
"""

from __future__ import annotations

from typing import Any

from kubernetes.utils import parse_quantity


def has_drifted(desired: dict, actual: dict | None) -> bool:
    return actual is None or not _contains(actual, desired)


def owns_field(obj: dict, manager: str, path: tuple[str, ...]) -> bool:
    """Whether `manager`'s server-side apply owns the field at `path` (e.g. ("spec", "replicas"))."""
    for entry in obj.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        fields = entry.get("fieldsV1") or {}
        for key in path:
            fields = fields.get(f"f:{key}")
            if fields is None:
                break
        else:
            return True
    return False


def releases_replicas(desired: dict, actual: dict | None, manager: str) -> bool:
    """An HPA is taking over: the desired Deployment has no replicas, but `manager` still owns them."""
    return (actual is not None and desired["kind"] == "Deployment" and "replicas" not in desired["spec"]
            and owns_field(actual, manager, ("spec", "replicas")))


def _contains(actual: Any, desired: Any) -> bool:
    if isinstance(desired, dict):
        if not desired:
            return actual in (None, {})
        if not isinstance(actual, dict):
            return False
        return all(_contains(actual.get(key), value) for key, value in desired.items())
    if isinstance(desired, list):
        if not desired:
            return actual in (None, [])
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        return all(_contains(a, d) for a, d in zip(actual, desired))
    if desired is None:
        return True
    if actual == desired:
        return True
    return isinstance(desired, str) and isinstance(actual, str) and _same_quantity(actual, desired)


def _same_quantity(a: str, b: str) -> bool:
    """The API server stores resource quantities canonically ("0.5" comes back as "500m")."""
    if not (a[:1].isdigit() or a[:1] == ".") or not (b[:1].isdigit() or b[:1] == "."):
        return False
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return False
