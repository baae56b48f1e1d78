"""The one Kubernetes client boundary: server-side apply and delete of child objects.

Every write the operator makes to a child goes through `Kube`, with one fixed field manager, and
is counted (`writes`), so that tests and benchmarks can prove a no-op resync writes nothing.
"""

from __future__ import annotations

import collections
import datetime
import json
from dataclasses import dataclass

import kubernetes
import urllib3

from mlmodel_contract import api
from mlmodel_operator import metrics, render
from mlmodel_operator.reachability import UNAVAILABLE_STATUSES, Reachability
from mlmodel_operator.redaction import redact

FIELD_MANAGER = "mlmodel-operator"
# Applies the fields the operator is about to give up (spec.replicas when an HPA takes over), so that
# they keep their value instead of being reset when the operator's own apply drops them.
HANDOVER_FIELD_MANAGER = "mlmodel-operator-handover"
REQUEST_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ResourceType:
    kind: str
    group_version: str  # "v1" for the core group
    plural: str

    def collection_path(self, namespace: str) -> str:
        prefix = "/api/v1" if self.group_version == "v1" else f"/apis/{self.group_version}"
        return f"{prefix}/namespaces/{namespace}/{self.plural}"


CHILD_TYPES: dict[str, ResourceType] = {
    child.kind: ResourceType(child.kind, child.api_version, child.plural) for child in render.CHILD_TYPES
}


MLMODEL_TYPE = ResourceType(api.KIND, api.API_VERSION, api.PLURAL)
LEASE_TYPE = ResourceType("Lease", "coordination.k8s.io/v1", "leases")
_KINDS_BY_PLURAL = {t.plural: t.kind for t in (*CHILD_TYPES.values(), MLMODEL_TYPE, LEASE_TYPE)} | {"events": "Event"}


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


def load_api_client() -> kubernetes.client.ApiClient:
    """In a pod, the ServiceAccount's identity; elsewhere the current kubeconfig context."""
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    return kubernetes.client.ApiClient()


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient, reachability: Reachability | None = None):
        self._api = api_client
        self._reachability = reachability
        self.writes: collections.Counter[str] = collections.Counter()

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: dict | None = None,
        content_type: str = "application/json",
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> dict | None:
        verb = "apply" if content_type == "application/apply-patch+yaml" else method
        try:
            status, data = self._call(method, path, query, body, content_type, timeout)
        except KubeError as error:
            self._report(verb, path, error.status, error.message)
            raise
        self._report(verb, path, status, "")
        if status >= 400:
            raise _kube_error(status, data)
        return json.loads(data) if data else None

    def _call(self, method: str, path: str, query, body, content_type: str, timeout: float) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        _method, url, headers, serialized, _post = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(method, url, header_params=headers, body=serialized, _request_timeout=timeout)
            response.read()
        except kubernetes.client.ApiException as error:
            return error.status or 0, error.body
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # Connection refused or reset, timeouts, TLS cut short: the API server did not answer.
            raise KubeError(0, "Unavailable", _connection_problem(error)) from None
        return response.status, response.data

    def _report(self, verb: str, path: str, status: int, message: str) -> None:
        metrics.api_request(verb, _kind_of(path), status)
        if self._reachability is None:
            return
        if status in UNAVAILABLE_STATUSES:
            self._reachability.failed(message or f"HTTP {status}")
        else:
            self._reachability.succeeded()

    def get_lease(self, namespace: str, name: str, *, timeout: float) -> dict | None:
        try:
            return self._request("GET", f"{LEASE_TYPE.collection_path(namespace)}/{name}", timeout=timeout)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def create_lease(self, lease: dict, *, timeout: float) -> dict:
        return self._request(
            "POST", LEASE_TYPE.collection_path(lease["metadata"]["namespace"]), body=lease, timeout=timeout
        )

    def replace_lease(self, lease: dict, *, timeout: float) -> dict:
        """PUT with the lease's resourceVersion: refused (409) when someone else wrote it since it was read."""
        meta = lease["metadata"]
        return self._request(
            "PUT", f"{LEASE_TYPE.collection_path(meta['namespace'])}/{meta['name']}", body=lease, timeout=timeout
        )

    def apply(self, obj: dict, field_manager: str = FIELD_MANAGER) -> dict:
        """Server-side apply `obj` as the operator's field manager, taking fields back from hand edits."""
        resource = CHILD_TYPES[obj["kind"]]
        meta = obj["metadata"]
        self.writes[f"apply/{obj['kind']}"] += 1
        return self._request(
            "PATCH",
            f"{resource.collection_path(meta['namespace'])}/{meta['name']}",
            query=[("fieldManager", field_manager), ("force", "true")],
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    def merge_patch(self, obj: dict, patch: dict, resource_version: str | None = None) -> dict:
        """JSON-merge-patch the child `obj` names, as the operator's field manager: removes what a hand edit
        added (see drift.removal_patch). With `resource_version`, only the object version it was computed
        from is patched (409 otherwise)."""
        resource = CHILD_TYPES[obj["kind"]]
        meta = obj["metadata"]
        if resource_version:
            patch = {**patch, "metadata": {"resourceVersion": resource_version}}
        self.writes[f"repair/{obj['kind']}"] += 1
        return self._request(
            "PATCH",
            f"{resource.collection_path(meta['namespace'])}/{meta['name']}",
            query=[("fieldManager", FIELD_MANAGER)],
            body=patch,
            content_type="application/merge-patch+json",
        )

    def list(self, resource: ResourceType, namespace: str) -> list[dict]:
        return self._request("GET", resource.collection_path(namespace))["items"]

    def patch_status(self, namespace: str, name: str, changes: dict) -> None:
        """Merge-patch an MLModel's status subresource (a key set to None is removed)."""
        self.writes["status/MLModel"] += 1
        self._request(
            "PATCH",
            f"{MLMODEL_TYPE.collection_path(namespace)}/{name}/status",
            body={"status": changes},
            content_type="application/merge-patch+json",
        )

    def post_event(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event about `obj`, as `kubectl describe` shows them."""
        meta = obj["metadata"]
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.writes["create/Event"] += 1
        self._request(
            "POST",
            f"/api/v1/namespaces/{meta['namespace']}/events",
            body={
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {
                    "apiVersion": obj["apiVersion"],
                    "kind": obj["kind"],
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "uid": meta.get("uid", ""),
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "type": event_type,
                "reason": reason,
                "message": redact(message)[:1024],
                "source": {"component": FIELD_MANAGER},
                "reportingComponent": FIELD_MANAGER,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            },
        )

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        """Delete a child; its own dependents follow in the background. False when it was already gone."""
        resource = CHILD_TYPES[kind]
        self.writes[f"delete/{kind}"] += 1
        try:
            self._request(
                "DELETE",
                f"{resource.collection_path(namespace)}/{name}",
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status == 404:
                return False
            raise
        return True


def _kind_of(path: str) -> str:
    """The kind a request path is about ("/apis/apps/v1/namespaces/ns/deployments/x" -> "Deployment")."""
    parts = path.strip("/").split("/")
    plural = (
        parts[parts.index("namespaces") + 2]
        if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2
        else ""
    )
    kind = _KINDS_BY_PLURAL.get(plural, "other")
    return kind + "/status" if parts[-1] == "status" else kind


def _connection_problem(error: Exception) -> str:
    """The innermost cause, in one line: urllib3 wraps "Connection refused" in two or three layers."""
    cause = getattr(error, "reason", None) or error
    text = str(cause)
    return text.split("Failed to establish a new connection: ")[-1].split("\n")[0][:200]


def _kube_error(status: int, raw: bytes | str | None) -> KubeError:
    try:
        details = json.loads(raw or b"{}")
    except ValueError:
        details = {"message": (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw))[:500]}
    return KubeError(status, details.get("reason", ""), details.get("message", ""))
