"""The MLModel API: group, version, kind, names, and the kinds of the children the operator creates."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "serving.mlops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MLModel"
PLURAL = "mlmodels"
SINGULAR = "mlmodel"
SHORT_NAMES = ("mlmod",)
CATEGORIES = ("ml",)
CRD_NAME = f"{PLURAL}.{GROUP}"
# The one file the CRD generator writes and every install path (kustomize, Helm, make install) uses.
CRD_FILE_NAME = f"{GROUP}_{PLURAL}.yaml"
# Annotations the operator owns on the children it creates.
ANNOTATION_PREFIX = f"{GROUP}/"


@dataclass(frozen=True)
class ChildKind:
    kind: str
    api_version: str
    plural: str


SERVICE = ChildKind("Service", "v1", "services")
NETWORK_POLICY = ChildKind("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies")
POD_DISRUPTION_BUDGET = ChildKind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets")
DEPLOYMENT = ChildKind("Deployment", "apps/v1", "deployments")
HORIZONTAL_POD_AUTOSCALER = ChildKind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers")
INGRESS = ChildKind("Ingress", "networking.k8s.io/v1", "ingresses")

# In apply order: the Service and the policies exist before the first pod does.
CHILD_KINDS: tuple[ChildKind, ...] = (
    SERVICE,
    NETWORK_POLICY,
    POD_DISRUPTION_BUDGET,
    DEPLOYMENT,
    HORIZONTAL_POD_AUTOSCALER,
    INGRESS,
)
