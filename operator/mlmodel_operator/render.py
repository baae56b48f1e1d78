"""MLModel → child objects: a pure function from the MLModel and the operator settings to parsed manifests.

Python derives every value (defaults, env lists, peers, annotations) into a context; the jinja2 templates only
lay out structure, and every value reaches YAML through `tojson`, so no user string can add YAML structure.
Each rendered document is parsed immediately and checked.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jinja2
import yaml

from mlmodel_contract import api, pod
from mlmodel_contract import spec_defaults as defaults
from mlmodel_contract.artifacts import InvalidUri, Location, parse_uri
from mlmodel_contract.pod import FetchEnv, ServeEnv

from .defaults import autoscaling_enabled, pdb_enabled, spec_with_defaults
from .labels import (
    ARTIFACT_ANNOTATION,
    MODEL_VERSION_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    artifact_identity,
    recommended_labels,
    selector_labels,
)
from .resources import CHILD_TYPES, ResourceType
from .settings import Settings

# The template of each child kind (resources.CHILD_TYPES has the kinds, in apply order).
TEMPLATES: dict[str, str] = {
    api.SERVICE.kind: "service.yaml.j2",
    api.NETWORK_POLICY.kind: "networkpolicy.yaml.j2",
    api.POD_DISRUPTION_BUDGET.kind: "poddisruptionbudget.yaml.j2",
    api.DEPLOYMENT.kind: "deployment.yaml.j2",
    api.HORIZONTAL_POD_AUTOSCALER.kind: "hpa.yaml.j2",
    api.INGRESS.kind: "ingress.yaml.j2",
}


class RenderError(ValueError):
    """A template produced something that is not the expected object: a bug, never a user error."""


def _tojson(value: Any) -> str:
    # ensure_ascii keeps line/paragraph separators and other oddities as escapes, which YAML reads back unchanged.
    return json.dumps(value, sort_keys=False, ensure_ascii=True)


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("mlmodel_operator", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["tojson"] = _tojson


# --- which children ---------------------------------------------------------------------------------------------


def desired_kinds(spec: dict[str, Any]) -> frozenset[str]:
    """Kinds of the children this spec wants (defaults applied here, so a raw spec is fine)."""
    full = spec_with_defaults(spec)
    kinds = {api.DEPLOYMENT.kind, api.SERVICE.kind}
    if full["ingress"]["enabled"]:
        kinds.add(api.INGRESS.kind)
    if autoscaling_enabled(full):
        kinds.add(api.HORIZONTAL_POD_AUTOSCALER.kind)
    if full["networkPolicy"]["enabled"]:
        kinds.add(api.NETWORK_POLICY.kind)
    if pdb_enabled(full):
        kinds.add(api.POD_DISRUPTION_BUDGET.kind)
    return frozenset(kinds)


# --- context ----------------------------------------------------------------------------------------------------


def _env(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "value": value}


def artifact_location(uri: str) -> Location | None:
    """The parsed URI; None for one the CRD's rules would have refused (the fetch container reports it)."""
    try:
        return parse_uri(uri)
    except InvalidUri:
        return None


def pvc_claim_and_mount(uri: str) -> tuple[str, str] | None:
    """pvc://claim/path → (claim, /mnt/pvc/claim); None for other schemes."""
    location = artifact_location(uri)
    if location is None or location.scheme != "pvc":
        return None
    return location.host, f"{pod.PVC_ROOT}/{location.host}"


def _fetch_env(spec: dict[str, Any]) -> list[dict[str, Any]]:
    model = spec["model"]
    env = [_env(FetchEnv.URI, model["uri"]), _env(FetchEnv.DEST, pod.MODELS_DIR)]
    if model.get("sha256"):
        env.append(_env(FetchEnv.SHA256, model["sha256"]))
    if model.get("format"):
        env.append(_env(FetchEnv.FORMAT, model["format"]))
    if model.get("maxBytes") is not None:
        env.append(_env(FetchEnv.MAX_BYTES, str(model["maxBytes"])))
    if model.get("fetchTimeoutSeconds") is not None:
        env.append(_env(FetchEnv.TIMEOUT_SECONDS, str(model["fetchTimeoutSeconds"])))
    if pvc_claim_and_mount(model["uri"]):
        env.append(_env(FetchEnv.PVC_ROOT, pod.PVC_ROOT))
    return env


def _fetch_env_from(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The credentials Secret's keys as the fetcher's environment (AWS_*, HTTP_AUTHORIZATION). Not optional:
    a missing Secret stops the pod at CreateContainerConfigError, which the status reports at once, instead of
    a fetch without credentials failing later as access denied. The explicit env above wins over its keys."""
    secret = spec["model"].get("credentialsSecret")
    return [{"secretRef": {"name": secret["name"], "optional": False}}] if secret else []


def _server_env(name: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    model, server = spec["model"], spec["server"]
    env = [
        _env(ServeEnv.PATH, pod.MODELS_DIR),
        _env(ServeEnv.NAME, name),
        _env(ServeEnv.VERSION, model.get("version", "")),
        _env(ServeEnv.PORT, str(pod.SERVER_PORT)),
        _env(ServeEnv.WORKERS, str(server["workers"])),
        _env(ServeEnv.THREADS, str(server["threads"])),
        _env(ServeEnv.TIMEOUT_SECONDS, str(server["timeoutSeconds"])),
        _env(ServeEnv.GRACEFUL_TIMEOUT_SECONDS, str(defaults.GRACEFUL_TIMEOUT_SECONDS)),
        _env(ServeEnv.LOG_LEVEL, server["logLevel"]),
        _env(ServeEnv.MAX_REQUEST_BYTES, str(server["maxRequestBytes"])),
        _env(ServeEnv.ALLOW_UNVERIFIED, "true" if model["allowUnverified"] else "false"),
        _env(ServeEnv.SKLEARN_VERSION_POLICY, server["sklearnVersionPolicy"]),
        _env(ServeEnv.COMPILED_KERNELS, "true" if server["compiledKernels"] else "false"),
        _env(ServeEnv.HTTP_SERVER, server["httpServer"]),
    ]
    if server.get("skopsTrustedTypes"):
        env.append(_env(ServeEnv.SKOPS_TRUSTED_TYPES, ",".join(server["skopsTrustedTypes"])))
    if server.get("accessLog"):
        env.append(_env(ServeEnv.ACCESS_LOG, "true"))
        env.append(_env(ServeEnv.ACCESS_LOG_SAMPLE_PERCENT, str(server["accessLogSamplePercent"])))
    if "apiKeySecret" in spec:
        env.append(_env(ServeEnv.API_KEY_FILE, f"{pod.API_KEY_DIR}/{spec['apiKeySecret']['key']}"))
    env.append(_env(pod.PROMETHEUS_MULTIPROC_DIR_ENV, pod.METRICS_DIR))
    for var in spec.get("env", []):
        env.append(
            {k: var[k] for k in ("name", "value", "valueFrom") if k in var}
            if "valueFrom" in var
            else _env(var["name"], var.get("value", ""))
        )
    return env


def _pod_annotations(spec: dict[str, Any]) -> dict[str, str]:
    annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(pod.SERVER_PORT),
        "prometheus.io/path": pod.METRICS_PATH,
        "kubectl.kubernetes.io/default-container": pod.SERVER_CONTAINER,
    }
    annotations.update(spec.get("podAnnotations", {}))
    annotations[ARTIFACT_ANNOTATION] = artifact_identity(spec["model"])
    annotations[MODEL_VERSION_ANNOTATION] = spec["model"].get("version", "")
    return annotations


def _resources(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        section: dict(spec["resources"][section])
        for section in ("requests", "limits")
        if spec["resources"].get(section)
    }


def _network_peers(namespace: str, spec: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    policy = spec["networkPolicy"]
    peers: list[dict[str, Any]] = []
    for ns in policy.get("ingressNamespaces") or [settings.ingress_namespace]:
        peers.append({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}})
    if policy["allowSameNamespace"]:
        peers.append({"podSelector": {}})
    peers.extend(policy.get("allowFrom", []))
    if settings.monitoring_namespace:  # the cluster's Prometheus scrapes /metrics on the same port
        peers.append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": settings.monitoring_namespace}}}
        )
    return peers


def artifact_egress_ports(uri: str) -> list[int]:
    """The TCP ports the fetch init container needs for this URI: the URI's own port, else the scheme's
    default; none for pvc:// and file paths. An S3 endpoint on another port (AWS_ENDPOINT_URL in the
    credentials Secret, unknown to the operator) needs networkPolicy.additionalEgress."""
    location = artifact_location(uri)
    port = location.port if location else None
    return [port] if port else []


def _ingress_annotations(ingress: dict[str, Any]) -> dict[str, str]:
    annotations = dict(ingress.get("annotations", {}))
    rate_limit = ingress.get("rateLimit")
    if rate_limit:
        annotations["nginx.ingress.kubernetes.io/limit-rps"] = str(rate_limit["requestsPerSecond"])
        if rate_limit.get("burstMultiplier") is not None:
            annotations["nginx.ingress.kubernetes.io/limit-burst-multiplier"] = str(rate_limit["burstMultiplier"])
    return annotations


# The pod contract's names, paths and ports the templates lay out.
_POD_CONTRACT = {
    "command": pod.COMMAND,
    "fetchContainer": pod.FETCH_CONTAINER,
    "serverContainer": pod.SERVER_CONTAINER,
    "modelsDir": pod.MODELS_DIR,
    "tmpDir": pod.TMP_DIR,
    "port": pod.SERVER_PORT,
    "portName": pod.SERVER_PORT_NAME,
    "servicePort": pod.SERVICE_PORT,
    "healthPath": pod.HEALTH_PATH,
    "readyPath": pod.READY_PATH,
}


def build_context(mlmodel: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Everything the templates need, derived from a defaulted spec. Every key is always present."""
    meta = mlmodel["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    spec = spec_with_defaults(mlmodel["spec"])
    model = spec["model"]
    labels = recommended_labels(name, model.get("version", ""))
    pvc = pvc_claim_and_mount(model["uri"])
    api_key = spec.get("apiKeySecret")
    ingress = spec["ingress"]
    pdb = spec["podDisruptionBudget"]
    has_pdb_value = "minAvailable" in pdb or "maxUnavailable" in pdb
    return {
        "name": name,
        "namespace": namespace,
        "contract": _POD_CONTRACT,
        "labels": labels,
        "selector": selector_labels(name),
        "owner": {
            "apiVersion": mlmodel.get("apiVersion", api.API_VERSION),
            "kind": api.KIND,
            "name": name,
            "uid": meta["uid"],
        },
        "replicas": None if autoscaling_enabled(spec) else spec["replicas"],
        "rollout": spec["rollout"],
        "autoscaling": spec.get("autoscaling"),
        "pdb": {
            "minAvailable": pdb.get("minAvailable"),
            "maxUnavailable": pdb.get("maxUnavailable") if has_pdb_value else defaults.PDB_MAX_UNAVAILABLE,
        },
        "ingress": {
            "host": ingress.get("host"),
            "className": ingress.get("className"),
            "path": ingress["path"],
            "pathType": ingress["pathType"],
            "tlsSecretName": ingress.get("tls", {}).get("secretName"),
            "annotations": _ingress_annotations(ingress),
        },
        "network": {
            "peers": _network_peers(namespace, spec, settings),
            "artifactPorts": artifact_egress_ports(model["uri"]),
            "additionalEgress": [
                {"cidr": rule["cidr"], "ports": rule.get("ports", [])}
                for rule in spec["networkPolicy"].get("additionalEgress", [])
            ],
        },
        "pod": {
            "uid": pod.POD_UID,
            "drainSeconds": pod.PRESTOP_DRAIN_SECONDS,
            "terminationGracePeriodSeconds": pod.TERMINATION_GRACE_SECONDS,
            "labels": {**spec.get("podLabels", {}), **labels},
            "annotations": _pod_annotations(spec),
            "image": spec.get("image") or settings.default_image,
            "imagePullPolicy": spec.get("imagePullPolicy"),
            "imagePullSecrets": spec.get("imagePullSecrets", []),
            "serviceAccountName": spec.get("serviceAccountName"),
            "nodeSelector": spec.get("nodeSelector", {}),
            "tolerations": spec.get("tolerations", []),
            "affinity": spec.get("affinity"),
            "resources": _resources(spec),
            "fetchEnv": _fetch_env(spec),
            "fetchEnvFrom": _fetch_env_from(spec),
            "serverEnv": _server_env(name, spec),
            "envFrom": spec.get("envFrom", []),
            "pvcClaim": pvc[0] if pvc else None,
            "pvcMountPath": pvc[1] if pvc else None,
            "apiKey": None
            if api_key is None
            else {
                "secretName": api_key["name"],
                "key": api_key["key"],
                "mountPath": pod.API_KEY_DIR,
            },
        },
    }


# --- rendering --------------------------------------------------------------------------------------------------


def template_hash(pod_template: dict[str, Any]) -> str:
    """A short digest of the pod template; pods carry it, so status can tell current pods from old ones."""
    canonical = json.dumps(pod_template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# libyaml's safe loader when PyYAML was built with it: the pure-Python one is ten times slower.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _render_one(child: ResourceType, context: dict[str, Any]) -> dict[str, Any]:
    template = TEMPLATES[child.kind]
    text = _ENVIRONMENT.get_template(template).render(ctx=context)
    documents = [doc for doc in yaml.load_all(text, Loader=_YAML_LOADER) if doc is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise RenderError(f"{template} rendered {len(documents)} documents, expected one object")
    obj = documents[0]
    if obj.get("apiVersion") != child.api_version or obj.get("kind") != child.kind:
        raise RenderError(
            f"{template} rendered {obj.get('apiVersion')}/{obj.get('kind')}, expected {child.api_version}/{child.kind}"
        )
    if obj["metadata"].get("name") != context["name"] or obj["metadata"].get("namespace") != context["namespace"]:
        raise RenderError(f"{template} rendered the wrong name or namespace")
    return obj


def render_child(kind: str, mlmodel: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Render one child kind, whether or not the spec wants it (tests and diagnostics)."""
    return _finish(_render_one(CHILD_TYPES[kind], build_context(mlmodel, settings)))


def _finish(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Deployment":
        template = obj["spec"]["template"]
        template["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = template_hash(template)
    return obj


def render_children(mlmodel: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """The desired children of an MLModel, as parsed objects in apply order.

    Every object carries apiVersion, kind, metadata.name/namespace/labels and a controller ownerReference
    (controller and blockOwnerDeletion true) built from metadata.uid. Kinds the spec does not want are absent
    (reconcile.plan deletes those that exist).
    """
    context = build_context(mlmodel, settings)
    wanted = desired_kinds(mlmodel["spec"])
    return [_finish(_render_one(child, context)) for child in CHILD_TYPES.values() if child.kind in wanted]
