"""Label and annotation keys shared by every child, their values, and the selector that must never change."""

from __future__ import annotations

import hashlib
from typing import Any

from mlmodel_contract import api

APP_NAME = "mlmodel"
COMPONENT = "predictor"
PART_OF = "mlmodel-operator"
MANAGED_BY = "mlmodel-operator"
INSTANCE_LABEL = "app.kubernetes.io/instance"  # the MLModel's name
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

ANNOTATION_PREFIX = api.ANNOTATION_PREFIX
# Pod-template annotations: a change in any of them rolls the pods out.
ARTIFACT_ANNOTATION = ANNOTATION_PREFIX + "artifact"
MODEL_VERSION_ANNOTATION = ANNOTATION_PREFIX + "model-version"
TEMPLATE_HASH_ANNOTATION = ANNOTATION_PREFIX + "template-hash"

LABEL_MAX_LENGTH = 63


def selector_labels(instance: str) -> dict[str, str]:
    """Labels the Deployment, Service, PDB and NetworkPolicy select on: immutable for the object's life."""
    return {
        "app.kubernetes.io/name": APP_NAME,
        INSTANCE_LABEL: instance,
    }


def selector_string(instance: str) -> str:
    """The serialised selector the /scale subresource reads from status.selector."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector_labels(instance).items()))


def label_value(text: str) -> str:
    """Squeeze free text (a model version) into a valid label value, or '' when nothing valid remains."""
    allowed = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in text)
    trimmed = allowed[:LABEL_MAX_LENGTH].strip("-_.")
    return trimmed


def recommended_labels(instance: str, version: str) -> dict[str, str]:
    """app.kubernetes.io/* labels on every child object (version only when it makes a valid label value)."""
    labels = {
        **selector_labels(instance),
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/part-of": PART_OF,
        MANAGED_BY_LABEL: MANAGED_BY,
    }
    version_label = label_value(version)
    if version_label:
        labels["app.kubernetes.io/version"] = version_label
    return labels


def artifact_identity(model: dict[str, Any]) -> str:
    """The ARTIFACT_ANNOTATION's value: the artifact's digest, or a hash of the URI when it has none."""
    if model.get("sha256"):
        return "sha256:" + model["sha256"]
    return "uri-sha256:" + hashlib.sha256(model["uri"].encode()).hexdigest()
