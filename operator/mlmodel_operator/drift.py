"""Does a live child still carry everything the operator wants in it? (pure)

Server-side apply owns exactly the fields the operator sends, so a child has drifted when one of
those fields is missing or different; fields the API server or other controllers added are not
drift. Comparing before applying is what lets a no-op resync write nothing.
"""

from __future__ import annotations

import json
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
    return (
        actual is not None
        and desired["kind"] == "Deployment"
        and "replicas" not in desired["spec"]
        and owns_field(actual, manager, ("spec", "replicas"))
    )


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
        return all(_contains(a, d) for a, d in zip(actual, desired, strict=True))
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


# --- fields other managers added ------------------------------------------------------------------
#
# Server-side apply with force takes back the fields the operator sends, but leaves the fields another
# manager (`kubectl edit`, `kubectl label`, a script) added next to them: a label on the pod template, an
# env entry, a port whose key was changed by hand (our apply then adds a second port of the same name, and
# the API server refuses the pair). managedFields say who set what: a field that only another manager
# owns, inside what the operator renders, and absent from the rendered object is a hand edit's addition.
# Defaults the API server fills in are owned by nobody, the controllers' writes go through subresources
# (status, scale), so neither counts. The top-level metadata is left open: tools legitimately add labels
# and annotations there (the Deployment controller's revision, Argo CD's tracking).

Step = str  # one fieldsV1 step: "f:<field>", "k:<json key of a list-map entry>", "v:<json set value>"
_OUT_OF_SCOPE = frozenset({"f:metadata", "f:status", "f:apiVersion", "f:kind"})


def foreign_additions(desired: dict, actual: dict | None, own_managers: frozenset[str]) -> list[tuple[Step, ...]]:
    """Paths (fieldsV1 steps) that other managers added to `actual` and the operator does not render."""
    if actual is None:
        return []
    found: list[tuple[Step, ...]] = []
    for entry in actual.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") in own_managers or entry.get("subresource"):
            continue
        for step, children in (entry.get("fieldsV1") or {}).items():
            if step not in _OUT_OF_SCOPE:
                _collect_additions(desired, actual, (step,), children, found)
    return [path for path in dict.fromkeys(found) if not _left_to_others(desired, path)]


def _collect_additions(rendered: Any, live: Any, path: tuple[Step, ...], fields: dict, found: list) -> None:
    node, live_node = _step_into(rendered, path[-1]), _step_into(live, path[-1])
    if node is _ABSENT:
        found.append(path)
        return
    if node is _UNKNOWN:
        return
    children = {step: sub for step, sub in fields.items() if step != "."}
    if not children and isinstance(node, dict) and isinstance(live_node, dict):
        # An atomic map (a Service's selector) is owned whole: its keys are not listed one by one.
        found.extend((*path, f"f:{key}") for key in live_node if key not in node)
        return
    for step, sub in children.items():
        _collect_additions(node, live_node, (*path, step), sub, found)


_ABSENT = object()
_UNKNOWN = object()  # a step this code cannot follow: never call what is below it an addition


def _step_into(value: Any, step: Step) -> Any:
    kind, _, name = step.partition(":")
    if kind == "f":
        return value.get(name, _ABSENT) if isinstance(value, dict) else _ABSENT
    if not isinstance(value, list):
        return _ABSENT
    try:
        wanted = json.loads(name)
    except ValueError:
        return _UNKNOWN
    if kind == "v":
        return wanted if wanted in value else _ABSENT
    if kind == "k" and isinstance(wanted, dict):
        # A key field the operator leaves to its default (a port's protocol) matches any value.
        for item in value:
            if (
                isinstance(item, dict)
                and all(item.get(k, v) == v for k, v in wanted.items())
                and any(k in item for k in wanted)
            ):
                return item
        return _ABSENT
    return _UNKNOWN


def _left_to_others(desired: dict, path: tuple[Step, ...]) -> bool:
    """Fields another owner legitimately holds: an autoscaled Deployment's replicas belong to the HPA."""
    return desired.get("kind") == "Deployment" and path == ("f:spec", "f:replicas")


def removal_patch(desired: dict, additions: list[tuple[Step, ...]], *, every_list: bool = False) -> dict:
    """A JSON merge patch that removes `additions`: a map entry or field becomes null; a list (merge patches
    replace lists whole) becomes the rendered list, which drops what was added to it or to its entries.
    With `every_list`, every list the operator renders is sent whole, whatever it holds now."""
    patch: dict = {}
    for path in additions:
        target, rendered = patch, desired
        for index, step in enumerate(path):
            name = step.partition(":")[2]
            if index == len(path) - 1:
                target[name] = None
                break
            rendered = rendered[name]
            if isinstance(rendered, list):
                target[name] = rendered
                break
            target = target.setdefault(name, {})
            if not isinstance(target, dict):  # already replaced by a whole list further up
                break
    if every_list:
        _merge_lists(patch, {k: v for k, v in desired.items() if k not in ("apiVersion", "kind", "metadata")})
    return patch


def _merge_lists(patch: dict, rendered: dict) -> None:
    for name, value in rendered.items():
        if isinstance(value, list):
            patch[name] = value
        elif isinstance(value, dict) and isinstance(patch.get(name, {}), dict):
            child = patch.get(name, {})
            _merge_lists(child, value)
            if child:
                patch[name] = child


def fields_worth_keeping(entries: list[dict], own_manager: str) -> list[dict]:
    """The managedFields an index keeps of a child: the operator's own entries (releases_replicas reads
    them), and of other managers' entries on the main resource only the part foreign_additions reads."""
    kept = []
    for entry in entries:
        if entry.get("manager") == own_manager:
            kept.append(entry)
        elif not entry.get("subresource"):
            fields = {k: v for k, v in (entry.get("fieldsV1") or {}).items() if k not in _OUT_OF_SCOPE}
            if fields:
                kept.append({"manager": entry.get("manager"), "operation": entry.get("operation"), "fieldsV1": fields})
    return kept
