"""Spec defaults in one pure place, mirroring the CRD's schema defaults.

The API server applies the schema defaults to every stored object; this module applies the same ones again
because objects stored before a default existed, and tests calling the renderer directly, may lack them.
tests/operator/test_defaults.py checks that both agree.
"""

from __future__ import annotations

import copy
import re
from typing import Any

DEFAULT_RESOURCES: dict[str, dict[str, str]] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
DEFAULT_AUTOSCALING: dict[str, Any] = {
    "enabled": True,
    "minReplicas": 3,
    "maxReplicas": 10,
    "targetCPUUtilizationPercentage": 70,
    "targetMemoryUtilizationPercentage": 80,
}
DEFAULT_SERVER: dict[str, Any] = {
    "workers": 1,
    "threads": 16,
    "timeoutSeconds": 30,
    "logLevel": "info",
    "maxRequestBytes": 10485760,
    "sklearnVersionPolicy": "warn",
    "compiledKernels": False,
    "accessLog": False,
    "accessLogSamplePercent": 100,
    "httpServer": "gunicorn",
}
DEFAULT_ROLLOUT: dict[str, Any] = {"maxSurge": "25%", "maxUnavailable": 0, "progressDeadlineSeconds": 600}
DEFAULT_NETWORK_POLICY: dict[str, Any] = {"enabled": True, "allowSameNamespace": True}
DEFAULT_INGRESS: dict[str, Any] = {"enabled": False, "path": "/", "pathType": "Prefix"}
DEFAULT_API_KEY = "api-key"
DEFAULT_PDB_MAX_UNAVAILABLE = 1

FORMAT_BY_EXTENSION = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".skops": "skops"}
PICKLE_BASED_FORMATS = frozenset({"joblib", "pickle"})


def format_from_uri(uri: str) -> str:
    """The artifact format implied by the URI's extension (query and fragment ignored), or '' if none is."""
    path = re.split(r"[?#]", uri, maxsplit=1)[0].lower()
    for extension, fmt in FORMAT_BY_EXTENSION.items():
        if path.endswith(extension):
            return fmt
    return ""


def _with_defaults(value: dict[str, Any] | None, defaults: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(defaults)
    merged.update(copy.deepcopy(value or {}))
    return merged


def spec_with_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """Return a new spec with every schema default filled in and model.format derived when empty."""
    result = copy.deepcopy(spec)

    model = result.setdefault("model", {})
    model.setdefault("allowUnverified", False)
    if not model.get("format"):
        derived = format_from_uri(model.get("uri", ""))
        if derived:
            model["format"] = derived

    result.setdefault("replicas", 1)
    if "autoscaling" in result:
        result["autoscaling"] = _with_defaults(result["autoscaling"], DEFAULT_AUTOSCALING)

    resources = result.setdefault("resources", {})
    for section in ("requests", "limits"):
        if section not in resources:
            resources[section] = dict(DEFAULT_RESOURCES[section])

    result["server"] = _with_defaults(result.get("server"), DEFAULT_SERVER)
    result["rollout"] = _with_defaults(result.get("rollout"), DEFAULT_ROLLOUT)
    result["networkPolicy"] = _with_defaults(result.get("networkPolicy"), DEFAULT_NETWORK_POLICY)
    result["ingress"] = _with_defaults(result.get("ingress"), DEFAULT_INGRESS)
    result.setdefault("podDisruptionBudget", {})
    if "apiKeySecret" in result:
        result["apiKeySecret"].setdefault("key", DEFAULT_API_KEY)
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
