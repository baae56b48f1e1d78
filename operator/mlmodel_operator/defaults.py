"""Spec defaults in one pure place, mirroring the CRD's schema defaults.

The API server applies the schema defaults to every stored object; this module applies the same ones again
because objects stored before a default existed, and tests calling the renderer directly, may lack them.
tests/operator/test_spec_defaults.py checks that both agree; the values live in mlmodel_contract.spec_defaults.
"""

from __future__ import annotations

import copy
from typing import Any

from mlmodel_contract import spec_defaults as defaults
from mlmodel_contract.artifacts import format_from_uri


def _with_defaults(value: dict[str, Any] | None, fallback: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(fallback)
    merged.update(copy.deepcopy(value or {}))
    return merged


def spec_with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a new spec with every schema default filled in and model.format derived when empty."""
    result = copy.deepcopy(spec)

    model = result.setdefault("model", {})
    model.setdefault("allowUnverified", defaults.ALLOW_UNVERIFIED)
    if not model.get("format"):
        derived = format_from_uri(model.get("uri", ""))
        if derived:
            model["format"] = derived

    result.setdefault("replicas", defaults.REPLICAS)
    if "autoscaling" in result:
        result["autoscaling"] = _with_defaults(result["autoscaling"], defaults.AUTOSCALING)

    resources = result.setdefault("resources", {})
    for section in ("requests", "limits"):
        if section not in resources:
            resources[section] = dict(defaults.RESOURCES[section])

    result["server"] = _with_defaults(result.get("server"), defaults.SERVER)
    result["rollout"] = _with_defaults(result.get("rollout"), defaults.ROLLOUT)
    result["networkPolicy"] = _with_defaults(result.get("networkPolicy"), defaults.NETWORK_POLICY)
    result["ingress"] = _with_defaults(result.get("ingress"), defaults.INGRESS)
    result.setdefault("podDisruptionBudget", {})
    if "apiKeySecret" in result:
        result["apiKeySecret"].setdefault("key", defaults.API_KEY_SECRET_KEY)
    return result


def autoscaling_enabled(spec: dict[str, Any]) -> bool:
    """True when an HPA owns the replica count (a defaulted spec)."""
    return bool(spec.get("autoscaling", {}).get("enabled", False))


def pdb_enabled(spec: dict[str, Any]) -> bool:
    """An explicit podDisruptionBudget.enabled wins; otherwise on when more than one replica may run."""
    explicit = spec["podDisruptionBudget"].get("enabled")
    if explicit is not None:
        return bool(explicit)
    return autoscaling_enabled(spec) or spec["replicas"] > 1
