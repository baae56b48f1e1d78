"""The Kubernetes resource types the operator reads and writes: the MLModel, its children, the Lease.

One description for every module that names a resource: the renderer (which kinds, in which order), the
client boundary (request paths), the watches (kopf's group, version and plural) and the reconciler (which
live children are its own). The names come from the contract (mlmodel_contract.api); nothing of the
operator's is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlmodel_contract import api


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


MLMODEL_TYPE = ResourceType(api.KIND, api.API_VERSION, api.PLURAL)
LEASE_TYPE = ResourceType("Lease", "coordination.k8s.io/v1", "leases")

# By kind, in apply order: the Service and the policies exist before the first pod does.
CHILD_TYPES: dict[str, ResourceType] = {
    child.kind: ResourceType(child.kind, child.api_version, child.plural) for child in api.CHILD_KINDS
}
