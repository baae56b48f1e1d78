"""Label and annotation keys shared by every child, and the selector that must never change."""

from __future__ import annotations

from mlmodel_contract import api

APP_NAME = "mlmodel"
COMPONENT = "predictor"
PART_OF = "mlmodel-operator"
MANAGED_BY = "mlmodel-operator"

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
        "app.kubernetes.io/instance": instance,
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
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    version_label = label_value(version)
    if version_label:
        labels["app.kubernetes.io/version"] = version_label
    return labels
