"""The Kubernetes resource types the operator reads and writes: the MLModel, its children, the Lease.

One description for every module that names a resource: the renderer (which kinds, in which order), the
client boundary (request paths), the watches (kopf's group, version and plural) and the reconciler (which
live children are its own). It depends on nothing of the operator's.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    kind: str
    api_version: str  # "v1" for the core group
    plural: str

    @property
    def group(self) -> str:
        """The API group, "" for the core group."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    def collection_path(self, namespace: str) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"


MLMODEL_TYPE = ResourceType("MLModel", "serving.mlops.dev/v1alpha1", "mlmodels")
LEASE_TYPE = ResourceType("Lease", "coordination.k8s.io/v1", "leases")

# By kind, in apply order: the Service and the policies exist before the first pod does.
CHILD_TYPES: dict[str, ResourceType] = {
    child.kind: child
    for child in (
        ResourceType("Service", "v1", "services"),
        ResourceType("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
        ResourceType("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
        ResourceType("Deployment", "apps/v1", "deployments"),
        ResourceType("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        ResourceType("Ingress", "networking.k8s.io/v1", "ingresses"),
    )
}
