"""Generate crds/serving.mlops.dev_mlmodels.yaml, the MLModel CustomResourceDefinition.

The CRD is the API's documentation: every field has a description (`kubectl explain mlmodel.spec.model`),
schema defaults, bounds (CEL's cost budget needs maxLength/maxItems/maxProperties) and CEL rules with a
message and a fieldPath. Shared sub-schemas (label selectors, tolerations, affinity) are built here once.

    .venv/bin/python crds/generate.py            # rewrite the YAML
    .venv/bin/python crds/generate.py --check    # exit 1 when the YAML is stale (tests call this too)
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))  # run as a script from any directory
from generated_files import write_or_check

from mlmodel_contract import api, artifacts, pod
from mlmodel_contract import spec_defaults as defaults

OUTPUT = Path(__file__).with_name(api.CRD_FILE_NAME)
PICKLE_BASED = ", ".join(fmt for fmt in artifacts.FORMATS if fmt in artifacts.PICKLE_BASED_FORMATS)
PICKLE_BASED_LIST = ", ".join(f"'{fmt}'" for fmt in artifacts.FORMATS if fmt in artifacts.PICKLE_BASED_FORMATS)
PICKLE_SUFFIX_ALTERNATIVES = "|".join(
    suffix.removeprefix(".")
    for suffix, fmt in artifacts.FORMAT_BY_SUFFIX.items()
    if fmt in artifacts.PICKLE_BASED_FORMATS
)
# A directory artifact may hold a pickle (an MLflow sklearn model is one by default): without a format that says
# otherwise it needs a digest, like a pickle.
ARCHIVE_SUFFIX_ALTERNATIVES = "|".join(
    suffix.removeprefix(".").replace(".", "\\\\.") for suffix in artifacts.ARCHIVE_SUFFIXES
)
MAY_HOLD_PICKLE_LIST = ", ".join(
    f"'{fmt}'" for fmt in artifacts.FORMATS if fmt in artifacts.PICKLE_BASED_FORMATS or fmt == artifacts.MLFLOW
)
# Children are named after the MLModel. ReplicaSet and pod names append suffixes to the Deployment's name, and
# Services need DNS-1035 labels (<= 63 characters): 52 leaves room for both.
MAX_NAME_LENGTH = 52

Schema = dict[str, Any]

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
SHA256 = r"^[a-f0-9]{64}$"
QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
# A string int-or-percent must be a percentage: Kubernetes refuses "5" as a string (5 as an integer is fine).
INT_OR_PERCENT = r"^(0|[1-9][0-9]*)%$"
CIDR = r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"
# Label keys and (lowercased) annotation keys: an optional DNS-subdomain prefix and a name of at most 63
# characters. Written with [.] rather than \. so that it needs no escaping inside a CEL string literal.
QUALIFIED_NAME = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# DNS-1123 labels of at most 63 characters each (Kubernetes checks every label of a host name).
BOUNDED_SUBDOMAIN_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
HOSTNAME = rf"^(\*[.])?{BOUNDED_SUBDOMAIN_LABEL}([.]{BOUNDED_SUBDOMAIN_LABEL})*$"
# The container image reference grammar (the distribution project's reference.go): an optional registry
# host[:port], lowercase path components, an optional tag and an optional digest. The kubelet refuses
# anything else (InvalidImageName), after the API server accepted it.
_IMAGE_DOMAIN = r"[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]+)?"
_IMAGE_COMPONENT = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = (
    rf"^({_IMAGE_DOMAIN}/)?{_IMAGE_COMPONENT}(/{_IMAGE_COMPONENT})*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)
# Env fieldRef paths the kubelet can resolve (the API server refuses every other).
ENV_FIELD_PATH = (
    r"^(metadata[.](name|namespace|uid)|metadata[.](labels|annotations)\['[^']+'\]|"
    r"spec[.](nodeName|serviceAccountName)|status[.](hostIP|hostIPs|podIP|podIPs))$"
)
# Kubernetes' limit on the total size of an object's annotations (keys and values), and what the operator
# adds of its own to the pod template's and the Ingress' (prometheus.io/*, serving.mlops.dev/*, rate limits).
TOTAL_ANNOTATION_BYTES = 256 * 1024
OPERATOR_ANNOTATION_RESERVE = 1024
CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


def words(items: Iterable[str]) -> str:
    """a, b or c"""
    *rest, last = items
    return f"{', '.join(rest)} or {last}" if rest else last


# --- schema builders -------------------------------------------------------------------------------------------


def rule(expression: str, message: str, field_path: str | None = None, reason: str | None = None) -> Schema:
    result: Schema = {"rule": expression, "message": message}
    if field_path:
        result["fieldPath"] = field_path
    if reason:
        result["reason"] = reason
    return result


def string(description: str, max_length: int = 253, **extra: Any) -> Schema:
    return {"type": "string", "description": description, "maxLength": max_length, **extra}


def integer(
    description: str, minimum: int | None = None, maximum: int | None = None, fmt: str = "int32", **extra: Any
) -> Schema:
    result: Schema = {"type": "integer", "format": fmt, "description": description}
    if minimum is not None:
        result["minimum"] = minimum
    if maximum is not None:
        result["maximum"] = maximum
    return {**result, **extra}


def boolean(description: str, **extra: Any) -> Schema:
    return {"type": "boolean", "description": description, **extra}


def obj(
    description: str,
    properties: dict[str, Schema],
    required: list[str] | None = None,
    rules: list[Schema] | None = None,
    **extra: Any,
) -> Schema:
    result: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        result["required"] = required
    if rules:
        result["x-kubernetes-validations"] = rules
    return {**result, **extra}


def array(description: str, items: Schema, max_items: int, **extra: Any) -> Schema:
    return {"type": "array", "description": description, "items": items, "maxItems": max_items, **extra}


def string_map(
    description: str, max_properties: int = 64, value_max_length: int = 4096, key_max_length: int = 317
) -> Schema:
    return {
        "type": "object",
        "description": description,
        "maxProperties": max_properties,
        "additionalProperties": {"type": "string", "maxLength": value_max_length},
        "x-kubernetes-validations": [
            rule(f"self.all(k, k.size() <= {key_max_length})", f"keys must be at most {key_max_length} characters"),
        ],
    }


def qualified_name_rule(what: str, lowercase: bool = False) -> Schema:
    """Every key of a map is a qualified name ([prefix/]name), as Kubernetes requires of label and annotation keys."""
    key = "k.lowerAscii()" if lowercase else "k"
    return rule(
        f"self.all(k, {key}.matches('{QUALIFIED_NAME}') && (!k.contains('/') || k.indexOf('/') <= 253))",
        f"{what} keys must be qualified names: an optional DNS subdomain prefix and '/', then at most 63 "
        "characters (letters, digits, '-', '_', '.'), starting and ending with a letter or digit",
    )


def label_map(description: str, max_properties: int = 32) -> Schema:
    """Labels (or label-shaped pairs: selectors, nodeSelector): keys and values Kubernetes accepts as labels."""
    return {
        "type": "object",
        "description": description,
        "maxProperties": max_properties,
        "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE},
        "x-kubernetes-validations": [
            rule("self.all(k, k.size() <= 317)", "keys must be at most 317 characters"),
            qualified_name_rule("label"),
        ],
    }


def annotation_map(description: str) -> Schema:
    """Annotations: qualified keys and, with what the operator adds, at most Kubernetes' 256 KiB in all."""
    budget = TOTAL_ANNOTATION_BYTES - OPERATOR_ANNOTATION_RESERVE
    schema = string_map(description)
    schema["x-kubernetes-validations"] = schema["x-kubernetes-validations"] + [
        qualified_name_rule("annotation", lowercase=True),
        rule(
            f"self.map(k, k.size() + self[k].size()).sum() <= {budget}",
            f"annotations must total at most {budget} bytes (keys and values; Kubernetes allows "
            f"{TOTAL_ANNOTATION_BYTES // 1024} KiB per object, the operator adds its own)",
        ),
    ]
    return schema


def int_or_percent(description: str, at_most_100_percent: bool = True, **extra: Any) -> Schema:
    result: Schema = {
        "x-kubernetes-int-or-string": True,
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "minimum": 0,
        "maximum": 2147483647,
        "pattern": INT_OR_PERCENT,
        "maxLength": 12,
        **extra,
    }
    if at_most_100_percent:
        result["x-kubernetes-validations"] = [
            rule(
                "type(self) != string || !self.endsWith('%') || int(self.substring(0, self.size() - 1)) <= 100",
                "a percentage must not be more than 100%",
            )
        ]
    return result


def quantity(description: str) -> Schema:
    return {
        "x-kubernetes-int-or-string": True,
        "description": description,
        "anyOf": [{"type": "integer"}, {"type": "string"}],
        "pattern": QUANTITY,
        "maxLength": 64,
    }


STANDARD_RESOURCES = ["cpu", "memory", "ephemeral-storage"]


def resource_list(description: str, default: dict[str, str]) -> Schema:
    return {
        "default": default,
        "type": "object",
        "description": description,
        "maxProperties": 16,
        "additionalProperties": quantity("A quantity such as 250m, 1, 256Mi or 1Gi."),
        "x-kubernetes-validations": [
            rule("self.all(k, k.size() <= 253)", "resource names must be at most 253 characters"),
            rule(
                f"self.all(k, k in {STANDARD_RESOURCES} || k.startsWith('hugepages-') || "
                f"(k.contains('/') && k.matches('{QUALIFIED_NAME}') && !k.split('/')[0].endsWith('kubernetes.io')))",
                "resource names must be cpu, memory, ephemeral-storage, hugepages-<size> or an extended resource "
                "<domain>/<name> (outside kubernetes.io)",
            ),
            rule(
                "self.all(k, isQuantity(string(self[k])) && !quantity(string(self[k])).isLessThan(quantity('0')))",
                "quantities must be valid and must not be negative",
            ),
            rule(
                "self.all(k, !k.contains('/') || !isQuantity(string(self[k])) || quantity(string(self[k])).isInteger())",
                "extended resources must be whole numbers",
            ),
        ],
    }


def object_name(what: str) -> Schema:
    return string(f"Name of the {what} (in the MLModel's namespace).", pattern=DNS1123_SUBDOMAIN)


def label_selector(description: str) -> Schema:
    return obj(
        description,
        {
            "matchLabels": label_map("Labels that must all match (an exact key/value map)."),
            "matchExpressions": array(
                "Set-based requirements, all of which must match.",
                obj(
                    "A label requirement: key, operator and values.",
                    {
                        "key": string("The label key the requirement applies to.", 317, pattern=QUALIFIED_NAME),
                        "operator": string(
                            "In, NotIn, Exists or DoesNotExist.", 16, enum=["In", "NotIn", "Exists", "DoesNotExist"]
                        ),
                        "values": array(
                            "Values for In and NotIn; empty for Exists and DoesNotExist.",
                            string("A label value.", 63, pattern=LABEL_VALUE),
                            64,
                        ),
                    },
                    required=["key", "operator"],
                    rules=[values_by_operator_rule()],
                ),
                16,
            ),
        },
        **{"x-kubernetes-map-type": "atomic"},
    )


def values_by_operator_rule() -> Schema:
    return rule(
        "(self.operator in ['In', 'NotIn']) ? (has(self.values) && self.values.size() > 0) : "
        "(self.operator in ['Exists', 'DoesNotExist']) ? (!has(self.values) || self.values.size() == 0) : "
        "(has(self.values) && self.values.size() == 1 && self.values[0].matches('^-?[0-9]+$'))",
        "values must be non-empty for In and NotIn, empty for Exists and DoesNotExist, and one integer for Gt and Lt",
        ".values",
    )


def node_selector_term(description: str) -> Schema:
    def requirement(what: str, key: Schema, operators: list[str], rules: list[Schema]) -> Schema:
        return obj(
            f"A node {what} requirement: key, operator and values.",
            {
                "key": key,
                "operator": string(", ".join(operators) + ".", 16, enum=operators),
                "values": array(
                    "Values; one integer for Gt and Lt, none for Exists and DoesNotExist.", string("A value.", 63), 64
                ),
            },
            required=["key", "operator"],
            rules=rules,
        )

    return obj(
        description,
        {
            "matchExpressions": array(
                "Requirements on node labels.",
                requirement(
                    "label",
                    string("The node label key the requirement applies to.", 317, pattern=QUALIFIED_NAME),
                    ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"],
                    [values_by_operator_rule()],
                ),
                16,
            ),
            "matchFields": array(
                "Requirements on node fields.",
                requirement(
                    "field",
                    string(
                        "The node field: metadata.name, the only one Kubernetes supports.", 16, enum=["metadata.name"]
                    ),
                    ["In", "NotIn"],
                    [
                        rule(
                            "has(self.values) && self.values.size() == 1",
                            "a node field requirement needs exactly one value",
                            ".values",
                        )
                    ],
                ),
                16,
            ),
        },
        **{"x-kubernetes-map-type": "atomic"},
    )


def pod_affinity_term(description: str) -> Schema:
    return obj(
        description,
        {
            "labelSelector": label_selector("Pods this term refers to."),
            "namespaceSelector": label_selector("Namespaces whose pods this term refers to; empty matches all."),
            "namespaces": array(
                "Namespaces whose pods this term refers to; empty means the MLModel's namespace.",
                string("A namespace name.", 63, pattern=DNS1123_LABEL),
                32,
            ),
            "topologyKey": string(
                "Node label that defines co-location, e.g. kubernetes.io/hostname or topology.kubernetes.io/zone.",
                317,
                pattern=QUALIFIED_NAME,
            ),
        },
        required=["topologyKey"],
    )


def weighted(description: str, key: str, term: Schema) -> Schema:
    return array(
        description,
        obj(
            "A preference with a weight.",
            {"weight": integer("Weight in the range 1-100.", 1, 100), key: term},
            required=["weight", key],
        ),
        16,
    )


def pod_affinity(description: str) -> Schema:
    return obj(
        description,
        {
            "requiredDuringSchedulingIgnoredDuringExecution": array(
                "Terms that must all hold when the pod is scheduled.", pod_affinity_term("A pod affinity term."), 16
            ),
            "preferredDuringSchedulingIgnoredDuringExecution": weighted(
                "Terms the scheduler prefers, by weight.", "podAffinityTerm", pod_affinity_term("A pod affinity term.")
            ),
        },
    )


def affinity() -> Schema:
    return obj(
        "Scheduling constraints of the model pods (a core/v1 Affinity).",
        {
            "nodeAffinity": obj(
                "Constraints on the nodes the pods may run on.",
                {
                    "requiredDuringSchedulingIgnoredDuringExecution": obj(
                        "Node selector terms; at least one must match when the pod is scheduled.",
                        {
                            "nodeSelectorTerms": array(
                                "Terms, ORed.", node_selector_term("A node selector term."), 16, minItems=1
                            )
                        },
                        required=["nodeSelectorTerms"],
                    ),
                    "preferredDuringSchedulingIgnoredDuringExecution": weighted(
                        "Terms the scheduler prefers, by weight.",
                        "preference",
                        node_selector_term("A node selector term."),
                    ),
                },
            ),
            "podAffinity": pod_affinity("Co-locate the pods with other pods."),
            "podAntiAffinity": pod_affinity("Keep the pods away from other pods (e.g. spread replicas across nodes)."),
        },
    )


def toleration() -> Schema:
    return obj(
        "Lets the pods schedule onto nodes with a matching taint.",
        {
            "key": string(
                "Taint key; empty with operator Exists matches every taint.",
                317,
                pattern=QUALIFIED_NAME.replace("^(", "^$|^(", 1),
            ),
            "operator": string("Exists or Equal (default Equal).", 16, enum=["Exists", "Equal"]),
            "value": string("Taint value to match with operator Equal.", 63, pattern=LABEL_VALUE),
            "effect": string(
                "Taint effect to match; empty matches all effects.",
                32,
                enum=["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ),
            "tolerationSeconds": integer(
                "With effect NoExecute: how long the pod stays bound after the taint appears.", fmt="int64"
            ),
        },
        rules=[
            rule(
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
                "value must be empty when operator is Exists",
                ".value",
            ),
            rule(
                "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                "operator must be Exists when key is empty",
                ".operator",
            ),
            rule(
                "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
                "tolerationSeconds needs effect NoExecute",
                ".tolerationSeconds",
            ),
        ],
    )


def secret_key(description: str, **extra: Any) -> Schema:
    return string(
        description,
        pattern=SECRET_KEY,
        **extra,
        **{
            "x-kubernetes-validations": [
                rule("self != '.' && !self.startsWith('..')", "a key cannot be '.' or start with '..'")
            ]
        },
    )


def key_ref(what: str) -> Schema:
    return obj(
        f"A key of a {what}.",
        {
            "name": object_name(what),
            "key": secret_key(f"The key in the {what}."),
            "optional": boolean(f"Start even when the {what} or the key is missing."),
        },
        required=["name", "key"],
    )


# --- spec ---------------------------------------------------------------------------------------------------------


def model_schema() -> Schema:
    return obj(
        "The model artifact: where it is, its expected digest, and its format. The init container "
        f"`{pod.FETCH_CONTAINER}` downloads and verifies it into {pod.MODELS_DIR} before the server starts.",
        {
            "uri": string(
                "Where the artifact is: file:///path or /path (inside the image), http(s)://host/path, "
                "s3://bucket/key, or pvc://claim/path (a PersistentVolumeClaim in this namespace, mounted read-only). "
                f"A name ending in {', '.join(artifacts.ARCHIVE_SUFFIXES)} is an archive, and s3://bucket/prefix/ "
                "(ending in /) every object under the prefix: either is served as a directory holding one model file "
                "or an MLflow model. Never put credentials in the URI; use credentialsSecret.",
                2048,
                minLength=1,
                **{
                    "x-kubernetes-validations": [
                        rule(
                            "self.matches('^(file:///|/|https?://|s3://|pvc://)')",
                            "uri must start with file:///, /, http://, https://, s3:// or pvc://",
                        ),
                        # Userinfo in any form: after any scheme or none ("//user:password@host/..." is a
                        # scheme-relative URI, which the "/" prefix would otherwise admit).
                        rule(
                            "!self.matches('^([A-Za-z][-+.A-Za-z0-9]*:)?//[^/?#]*@')",
                            "uri must not contain credentials (user:password@); use spec.model.credentialsSecret "
                            "(HTTP_AUTHORIZATION)",
                        ),
                        rule(
                            "!self.startsWith('s3://') || self.matches('^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/[^/].*$')",
                            "s3 uri must look like s3://bucket/key",
                        ),
                        rule(
                            "!self.startsWith('pvc://') || self.matches('^pvc://[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[^/].*$')",
                            "pvc uri must look like pvc://claim-name/path/to/model.joblib",
                        ),
                        # What mlmodel_contract.artifacts.parse_uri refuses, the API server refuses too
                        # (tests/cluster/test_uri_admission.py runs both on one table).
                        rule(
                            "!self.matches('^https?://') || self.matches('^https?://[^/?#:@]')",
                            "http(s) uri must name a host: http(s)://host/path",
                        ),
                        rule(
                            "!self.startsWith('pvc://') || "
                            "!self.matches('^pvc://[^/]*/(.*/)?([.]|%2[eE])([.]|%2[eE])(/.*)?$')",
                            "pvc uri paths must stay inside the claim (no '..' segment)",
                        ),
                        rule(
                            "!self.matches('^(file:///|/|pvc://).*/$')",
                            "only s3 uris may name a directory (s3://bucket/prefix/); pack a directory as "
                            + "/".join(artifacts.ARCHIVE_SUFFIXES),
                        ),
                    ]
                },
            ),
            "sha256": string(
                "Expected SHA-256 digest of the artifact: 64 lowercase hexadecimal characters. The fetcher refuses "
                "an artifact whose digest differs. Required for the pickle-based formats "
                f"({PICKLE_BASED}) unless "
                "allowUnverified is true. A new digest rolls the pods out.",
                64,
                pattern=SHA256,
            ),
            "format": string(
                f"Serialization format: {words(artifacts.FORMATS)}. Empty: derived from the URI's extension "
                f"({', '.join(artifacts.FORMAT_BY_SUFFIX)}), else by the fetcher from the artifact's first bytes "
                "(XGBoost JSON/UBJSON and LightGBM text model files; a pickle must be named).",
                16,
                enum=list(artifacts.FORMATS),
            ),
            "version": string(
                "Free-text version of the model, shown in status and `kubectl get`, passed to the "
                "server and set as the app.kubernetes.io/version label when it is a valid label value.",
                128,
            ),
            "allowUnverified": boolean(
                "Serve a pickle-based artifact without sha256. Loading an unverified pickle runs whatever code it "
                "contains; status.unverified reports it.",
                default=defaults.ALLOW_UNVERIFIED,
            ),
            "credentialsSecret": obj(
                "A Secret in this namespace whose keys become the fetcher's environment: AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION, AWS_ENDPOINT_URL (S3-compatible endpoint) "
                "and HTTP_AUTHORIZATION (the whole Authorization header for http(s)). Every key is optional; the Secret "
                "is not: while it is missing the pod waits (Ready=False ContainerConfigError). Only the init "
                "container sees them; the operator never reads the Secret.",
                {"name": object_name("Secret")},
                required=["name"],
            ),
            "maxBytes": integer(
                f"Largest artifact the fetcher accepts, in bytes (server default {defaults.MAX_BYTES // 1024**3} GiB).",
                1,
                fmt="int64",
            ),
            "fetchTimeoutSeconds": integer(
                f"Total time the fetcher may take, in seconds (server default {defaults.FETCH_TIMEOUT_SECONDS}).",
                1,
                86400,
            ),
        },
        required=["uri"],
        rules=[
            rule(
                "has(self.sha256) || self.allowUnverified || "
                f"(has(self.format) ? !(self.format in [{MAY_HOLD_PICKLE_LIST}]) : "
                f"!self.uri.lowerAscii().matches('\\\\.({PICKLE_SUFFIX_ALTERNATIVES}|{ARCHIVE_SUFFIX_ALTERNATIVES})([?#].*)?$') "
                "&& !self.uri.matches('^s3://.*/$'))",
                f"sha256 is required for pickle-based formats ({PICKLE_BASED}), mlflow, archives and s3 prefixes "
                "(which may hold a pickle) unless allowUnverified is true",
                ".sha256",
                "FieldValueRequired",
            ),
            rule(
                f"!has(self.format) || self.format != '{artifacts.MLFLOW}' || "
                f"self.uri.lowerAscii().matches('\\\\.({ARCHIVE_SUFFIX_ALTERNATIVES})([?#].*)?$') || "
                "self.uri.matches('^s3://.*/$')",
                f"format {artifacts.MLFLOW} is a directory: the uri must name an archive "
                f"({', '.join(artifacts.ARCHIVE_SUFFIXES)}) or an s3 prefix (s3://bucket/prefix/)",
                ".format",
            ),
        ],
    )


def autoscaling_schema() -> Schema:
    return obj(
        "Horizontal autoscaling through a HorizontalPodAutoscaler (autoscaling/v2) targeting the Deployment. "
        "While enabled, the HPA owns the replica count and spec.replicas is ignored.",
        {
            "enabled": boolean(
                "Create the HPA (default true once autoscaling is given).", default=defaults.AUTOSCALING["enabled"]
            ),
            "minReplicas": integer("Fewest replicas.", 1, 1000, default=defaults.AUTOSCALING["minReplicas"]),
            "maxReplicas": integer("Most replicas.", 1, 1000, default=defaults.AUTOSCALING["maxReplicas"]),
            "targetCPUUtilizationPercentage": integer(
                "Average CPU use, in percent of the CPU request, the HPA aims for; 0 disables the CPU metric.",
                0,
                1000,
                default=defaults.AUTOSCALING["targetCPUUtilizationPercentage"],
            ),
            "targetMemoryUtilizationPercentage": integer(
                "Average memory use, in percent of the memory request, the HPA aims for; 0 disables the memory metric.",
                0,
                1000,
                default=defaults.AUTOSCALING["targetMemoryUtilizationPercentage"],
            ),
        },
        rules=[
            rule(
                "self.minReplicas <= self.maxReplicas",
                "minReplicas must be less than or equal to maxReplicas",
                ".minReplicas",
            ),
            rule(
                "!self.enabled || self.targetCPUUtilizationPercentage > 0 || self.targetMemoryUtilizationPercentage > 0",
                "at least one of targetCPUUtilizationPercentage and targetMemoryUtilizationPercentage must be above 0",
                ".targetCPUUtilizationPercentage",
            ),
        ],
    )


def server_schema() -> Schema:
    return obj(
        "Model server tuning (the HTTP server and the inference app).",
        {
            "workers": integer(
                "Worker processes, forked after the model is loaded: they share its memory.",
                1,
                64,
                default=defaults.SERVER["workers"],
            ),
            "threads": integer(
                "Threads per worker: concurrent requests a worker runs; requests waiting together share one model call. "
                "On eventloop only for a model whose one-row call takes over "
                f"{defaults.SHARED_CALL_MICROSECONDS} µs (a faster one is called on the worker's event loop, "
                "requests that arrive together sharing a call).",
                1,
                64,
                default=defaults.SERVER["threads"],
            ),
            "timeoutSeconds": integer(
                "eventloop and gunicorn: seconds a worker may stay silent (on eventloop: one turn of its loop, the "
                "requests that arrived together, may take) "
                "before it is restarted.",
                1,
                3600,
                default=defaults.SERVER["timeoutSeconds"],
            ),
            "logLevel": string(
                "Log level: debug, info, warning or error.",
                16,
                enum=list(defaults.SPEC_LOG_LEVELS),
                default=defaults.SERVER["logLevel"],
            ),
            "maxRequestBytes": integer(
                "Largest request body accepted, in bytes.",
                1024,
                1073741824,
                fmt="int64",
                default=defaults.SERVER["maxRequestBytes"],
            ),
            "sklearnVersionPolicy": string(
                "What to do when the artifact was written by a library version whose difference from the image's "
                "matters: warn (log, serve, and show the VersionSkew condition) or error (refuse to start). Despite "
                "its name it covers every library's rule: scikit-learn (any other version), XGBoost and LightGBM "
                "(a newer file, or a pickle across minor versions).",
                8,
                enum=list(defaults.SKLEARN_VERSION_POLICIES),
                default=defaults.SERVER["sklearnVersionPolicy"],
            ),
            "compiledKernels": boolean(
                "Serve tree models with the compiled tree walk shipped in the server (C, no JIT): random forests, "
                "extra trees, gradient boosting, histogram gradient boosting, XGBoost and LightGBM, alone or as a "
                "pipeline's last step, and decode their numeric request rows with compiled code. Used only where it "
                "reproduces the library's own predictions bit for bit on probe rows at load; otherwise the library "
                "serves. Adds 1-4 MiB per model and well under a second at load. false: the libraries' own predict "
                "(forests: a numpy walk of their trees).",
                default=defaults.SERVER["compiledKernels"],
            ),
            "accessLog": boolean(
                "Log one JSON line per answered request (method, path, status, duration, request id) from the server "
                "container, 4xx and 5xx included; kubelet probes and metric scrapes are never logged. Off by "
                "default: a line per request costs a write per request.",
                default=defaults.SERVER["accessLog"],
            ),
            "accessLogSamplePercent": integer(
                "With accessLog, the share of successful requests that get a line (every tenth at 10); client and "
                "server errors are always logged.",
                1,
                100,
                default=defaults.SERVER["accessLogSamplePercent"],
            ),
            "httpServer": string(
                "The HTTP server in front of the app: eventloop (gunicorn's arbiter, one event loop per worker, HTTP "
                "parsed in C by llhttp: the fastest measured; every HTTP-layer error answered as JSON, header and body "
                "read timeouts), gunicorn (its gthread worker, pure Python: the tutorial's stack, same guarantees, "
                "several times the CPU per request) or granian (Rust; answers a malformed request line itself with "
                "an empty 400, no worker heartbeat).",
                16,
                enum=list(defaults.HTTP_SERVERS),
                default=defaults.SERVER["httpServer"],
            ),
            "skopsTrustedTypes": array(
                "Extra types a skops artifact may contain, beyond the default trusted ones.",
                string("A fully qualified type name, e.g. mypackage.MyTransformer.", 256),
                64,
            ),
        },
    )


def _resource_text(resources: dict[str, str]) -> str:
    return f"cpu {resources['cpu']}, memory {resources['memory']}"


def resources_schema() -> Schema:
    requests, limits = defaults.RESOURCES["requests"], defaults.RESOURCES["limits"]
    return obj(
        "CPU and memory for the server container (the init container gets the same). The HPA computes "
        "utilisation against the requests.",
        {
            "requests": resource_list(f"Guaranteed resources (default {_resource_text(requests)}).", requests),
            "limits": resource_list(f"Maximum resources (default {_resource_text(limits)}).", limits),
        },
        default={},
        rules=[
            rule(
                "!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) || "
                "!isQuantity(string(self.requests[k])) || !isQuantity(string(self.limits[k])) || "
                "quantity(string(self.requests[k])).compareTo(quantity(string(self.limits[k]))) <= 0)",
                "each request must be less than or equal to its limit (the defaults are "
                f"cpu {requests['cpu']}/{limits['cpu']}, memory {requests['memory']}/{limits['memory']}: set both)",
                ".requests",
            ),
            rule(
                "!has(self.requests) || self.requests.all(k, !(k.contains('/') || k.startsWith('hugepages-')) || "
                "(has(self.limits) && k in self.limits && string(self.requests[k]) == string(self.limits[k])))",
                "extended resources and hugepages cannot be overcommitted: a request needs an equal limit",
                ".requests",
            ),
        ],
    )


def env_schema() -> Schema:
    return array(
        f"Extra environment variables of the server container. Names starting with {pod.ENV_PREFIX} are set by the "
        "operator from the spec and cannot be given here.",
        obj(
            "An environment variable: a literal value or a reference.",
            {
                "name": string("Variable name.", 256, pattern=ENV_NAME),
                "value": string("Literal value.", 32768),
                "valueFrom": obj(
                    "Take the value from a ConfigMap key, a Secret key or a pod field.",
                    {
                        "configMapKeyRef": key_ref("ConfigMap"),
                        "secretKeyRef": key_ref("Secret"),
                        "fieldRef": obj(
                            "A field of the pod, e.g. metadata.name or status.podIP.",
                            {
                                "fieldPath": string(
                                    "Path of the field: metadata.name, metadata.namespace, metadata.uid, "
                                    "metadata.labels['<key>'], metadata.annotations['<key>'], spec.nodeName, "
                                    "spec.serviceAccountName, status.hostIP(s) or status.podIP(s).",
                                    256,
                                    pattern=ENV_FIELD_PATH,
                                )
                            },
                            required=["fieldPath"],
                        ),
                    },
                    rules=[
                        rule(
                            "[has(self.configMapKeyRef), has(self.secretKeyRef), has(self.fieldRef)]"
                            ".filter(x, x).size() == 1",
                            "exactly one of configMapKeyRef, secretKeyRef and fieldRef must be set",
                        )
                    ],
                ),
            },
            required=["name"],
            rules=[
                rule(
                    f"!self.name.startsWith('{pod.ENV_PREFIX}')",
                    f"{pod.ENV_PREFIX}* variables are set by the operator from the spec",
                    ".name",
                    "FieldValueForbidden",
                ),
                rule(
                    "!(has(self.value) && has(self.valueFrom))",
                    "value and valueFrom are mutually exclusive",
                    ".valueFrom",
                ),
            ],
        ),
        64,
        **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


def env_from_schema() -> Schema:
    def ref(what: str) -> Schema:
        return obj(
            f"Every key of a {what} becomes a variable.",
            {"name": object_name(what), "optional": boolean(f"Start even when the {what} is missing.")},
            required=["name"],
        )

    return array(
        "ConfigMaps and Secrets whose keys all become environment variables of the server container.",
        obj(
            "A ConfigMap or a Secret, with an optional prefix for its keys.",
            {
                "configMapRef": ref("ConfigMap"),
                "secretRef": ref("Secret"),
                "prefix": string("Prefix added to every key.", 64, pattern=ENV_NAME),
            },
            rules=[
                rule(
                    "has(self.configMapRef) != has(self.secretRef)",
                    "exactly one of configMapRef and secretRef must be set",
                )
            ],
        ),
        16,
    )


def ingress_schema() -> Schema:
    return obj(
        "External access through a networking.k8s.io/v1 Ingress.",
        {
            "enabled": boolean("Create the Ingress.", default=defaults.INGRESS["enabled"]),
            "host": string(
                "Host name the Ingress serves, e.g. iris.example.com; required when enabled.",
                pattern=HOSTNAME,
                **{"x-kubernetes-validations": [rule("!isIP(self)", "host must be a DNS name, not an IP address")]},
            ),
            "className": string(
                "IngressClass name; empty uses the cluster's default class.", pattern=DNS1123_SUBDOMAIN
            ),
            "path": string(
                "Path routed to the model. It reaches the server unchanged, and the server serves at /, so a "
                "path other than / needs the controller's rewrite (ingress-nginx: a rewrite-target "
                "annotation with pathType ImplementationSpecific).",
                256,
                default=defaults.INGRESS["path"],
                pattern=r"^/[A-Za-z0-9/._~%!$&'()*+,;=:@-]*$",
            ),
            "pathType": string(
                "Prefix, Exact or ImplementationSpecific.",
                32,
                enum=["Prefix", "Exact", "ImplementationSpecific"],
                default=defaults.INGRESS["pathType"],
            ),
            "tls": obj(
                "Serve HTTPS with the certificate in a kubernetes.io/tls Secret.",
                {"secretName": object_name("TLS Secret")},
                required=["secretName"],
            ),
            "annotations": annotation_map("Extra annotations on the Ingress (controller-specific settings)."),
            "rateLimit": obj(
                "Per-client rate limit, through ingress-nginx annotations.",
                {
                    "requestsPerSecond": integer(
                        "Requests per second per client IP (nginx.ingress.kubernetes.io/limit-rps).", 1, 100000
                    ),
                    "burstMultiplier": integer(
                        "Burst size as a multiple of the rate (nginx.ingress.kubernetes.io/limit-burst-multiplier).",
                        1,
                        100,
                    ),
                },
                required=["requestsPerSecond"],
            ),
        },
        default={},
        rules=[
            rule(
                "!has(self.enabled) || !self.enabled || has(self.host)",
                "host is required when the ingress is enabled",
                ".host",
                "FieldValueRequired",
            ),
            rule("!has(self.tls) || has(self.host)", "tls needs a host", ".host", "FieldValueRequired"),
            rule(
                "!has(self.path) || (has(self.pathType) && self.pathType == 'ImplementationSpecific') || "
                "(!['//', '/./', '/../', '%2f', '%2F'].exists(s, self.path.contains(s)) && "
                "!self.path.endsWith('/..') && !self.path.endsWith('/.'))",
                "with pathType Exact or Prefix, path cannot contain //, /./, /../ or %2F, nor end in /. or /..",
                ".path",
            ),
        ],
    )


def cidr_string(description: str) -> Schema:
    return string(
        description,
        64,
        pattern=CIDR,
        **{
            "x-kubernetes-validations": [
                rule("isCIDR(self)", "must be a valid CIDR range, e.g. 10.0.0.0/8 or fd00::/8"),
                rule(
                    "!isCIDR(self) || cidr(self).ip() == cidr(self).masked().ip()",
                    "must not have bits set beyond the prefix length (10.0.0.0/8, not 10.1.2.3/8)",
                ),
            ]
        },
    )


def network_peer() -> Schema:
    return obj(
        "Pods allowed to call the model: pods matching podSelector in namespaces matching namespaceSelector "
        "(either alone works as in a NetworkPolicy peer), or an IP block.",
        {
            "namespaceSelector": label_selector("Namespaces the callers run in."),
            "podSelector": label_selector("The callers' pods (in this namespace unless namespaceSelector is set)."),
            "ipBlock": obj(
                "A CIDR range.",
                {
                    "cidr": cidr_string("The range, e.g. 10.0.0.0/8."),
                    "except": array("Ranges excluded from cidr.", cidr_string("A CIDR range."), 16),
                },
                required=["cidr"],
                rules=[
                    rule(
                        "!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || "
                        "(cidr(self.cidr).containsCIDR(e) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",
                        "every except range must be a strict subset of cidr",
                        ".except",
                    ),
                ],
            ),
        },
        rules=[
            rule(
                "has(self.namespaceSelector) || has(self.podSelector) || has(self.ipBlock)",
                "set namespaceSelector, podSelector or ipBlock",
            ),
            rule(
                "!has(self.ipBlock) || !(has(self.namespaceSelector) || has(self.podSelector))",
                "ipBlock cannot be combined with selectors",
            ),
        ],
    )


def network_policy_schema() -> Schema:
    return obj(
        f"A NetworkPolicy around the model pods, on by default. Ingress: port {pod.SERVER_PORT} from the ingress controller's "
        "namespace (ingressNamespaces), from the same namespace (allowSameNamespace) and from allowFrom. "
        "Egress: DNS (53/UDP and TCP), the artifact store's port for fetching (the URI's port, else 80 for "
        "http, 443 for https and s3), and additionalEgress (e.g. a MinIO endpoint on 9000).",
        {
            "enabled": boolean("Create the NetworkPolicy.", default=defaults.NETWORK_POLICY["enabled"]),
            "ingressNamespaces": array(
                "Namespaces whose pods may reach the server (e.g. the ingress controller's, Prometheus'). Empty: the "
                "operator's configured ingress controller namespace (ingress-nginx unless configured otherwise).",
                string("A namespace name.", 63, pattern=DNS1123_LABEL),
                16,
                **{"x-kubernetes-list-type": "set"},
            ),
            "allowSameNamespace": boolean(
                "Allow every pod of the MLModel's namespace to call the server.",
                default=defaults.NETWORK_POLICY["allowSameNamespace"],
            ),
            "allowFrom": array("More peers allowed to call the server.", network_peer(), 16),
            "additionalEgress": array(
                "More destinations the pods may reach, e.g. an S3-compatible endpoint on another port.",
                obj(
                    "A destination range and its TCP ports.",
                    {
                        "cidr": cidr_string("The range, e.g. 10.96.0.0/12."),
                        "ports": array("TCP ports; empty allows every port.", integer("A port.", 1, 65535), 16),
                    },
                    required=["cidr"],
                ),
                16,
            ),
        },
        default={},
    )


def pdb_schema() -> Schema:
    return obj(
        "A PodDisruptionBudget (policy/v1) so node drains keep the model serving. Created when enabled is true, "
        "or, when enabled is unset, whenever more than one replica may run (replicas > 1 or autoscaling). "
        "Default: maxUnavailable 1.",
        {
            "enabled": boolean("Force the budget on or off; unset decides from the replica count."),
            "minAvailable": int_or_percent("Pods that must stay available, a number or a percentage."),
            "maxUnavailable": int_or_percent("Pods that may be unavailable, a number or a percentage."),
        },
        default={},
        rules=[
            rule(
                "!(has(self.minAvailable) && has(self.maxUnavailable))",
                "minAvailable and maxUnavailable are mutually exclusive",
                ".minAvailable",
            )
        ],
    )


def rollout_schema() -> Schema:
    return obj(
        "How a new artifact, version or image rolls out (Deployment RollingUpdate).",
        {
            "maxSurge": int_or_percent(
                "Extra pods during the rollout, a number or a percentage.", False, default=defaults.ROLLOUT["maxSurge"]
            ),
            "maxUnavailable": int_or_percent(
                "Pods that may be unavailable during the rollout; the default 0 keeps full capacity.",
                default=defaults.ROLLOUT["maxUnavailable"],
            ),
            "progressDeadlineSeconds": integer(
                "Seconds without progress after which the rollout is reported stalled.",
                30,
                86400,
                default=defaults.ROLLOUT["progressDeadlineSeconds"],
            ),
        },
        default={},
        rules=[
            rule(
                "!(has(self.maxSurge) && has(self.maxUnavailable) && "
                "(self.maxSurge == 0 || self.maxSurge == '0%') && "
                "(self.maxUnavailable == 0 || self.maxUnavailable == '0%'))",
                "maxSurge and maxUnavailable cannot both be zero",
                ".maxSurge",
            )
        ],
    )


def spec_schema() -> Schema:
    return obj(
        "Desired state: the model artifact and how to serve it.",
        {
            "model": model_schema(),
            "replicas": integer(
                "Number of server pods when autoscaling is off; the target of `kubectl scale`.",
                0,
                1000,
                default=defaults.REPLICAS,
            ),
            "autoscaling": autoscaling_schema(),
            "image": string(
                "Model server image, a reference such as registry.example.com/team/server:1.2 or "
                "...@sha256:<digest>; default: the operator's configured image.",
                512,
                pattern=IMAGE_REFERENCE,
            ),
            "imagePullPolicy": string(
                "Always, IfNotPresent or Never; default: Kubernetes' rule for the tag.",
                16,
                enum=["Always", "IfNotPresent", "Never"],
            ),
            "imagePullSecrets": array(
                "Secrets for pulling the image.",
                obj("A Secret reference.", {"name": object_name("Secret")}, required=["name"]),
                16,
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
            ),
            "resources": resources_schema(),
            "server": server_schema() | {"default": {}},
            "env": env_schema(),
            "envFrom": env_from_schema(),
            "apiKeySecret": obj(
                "Require an API key: clients send it in the Authorization (Bearer) or X-API-Key header. The key is "
                "mounted as a file into the server container; the operator never reads it.",
                {
                    "name": object_name("Secret"),
                    "key": secret_key("Key of the Secret holding the API key.", default=defaults.API_KEY_SECRET_KEY),
                },
                required=["name"],
            ),
            "ingress": ingress_schema(),
            "networkPolicy": network_policy_schema(),
            "podDisruptionBudget": pdb_schema(),
            "rollout": rollout_schema(),
            "nodeSelector": label_map("Node labels the pods must run on."),
            "tolerations": array("Taints the pods tolerate.", toleration(), 32),
            "affinity": affinity(),
            "serviceAccountName": string(
                "ServiceAccount the pods run as (its token is not mounted). Use one with "
                "cloud workload identity to fetch from S3 without keys.",
                pattern=DNS1123_SUBDOMAIN,
            ),
            "podLabels": label_map(
                "Extra labels on the pods. The app.kubernetes.io/name and instance labels are the operator's."
            ),
            "podAnnotations": annotation_map("Extra annotations on the pods."),
        },
        required=["model"],
        rules=[
            rule(
                "!has(self.autoscaling) || !self.autoscaling.enabled || self.replicas == 1 || "
                "(self.replicas >= self.autoscaling.minReplicas && self.replicas <= self.autoscaling.maxReplicas)",
                "replicas is ignored while autoscaling is enabled: leave it at 1 or inside [minReplicas, maxReplicas]",
                ".replicas",
            ),
            # A transition rule: `kubectl scale` on an autoscaled MLModel is refused, not silently overridden.
            rule(
                "!(has(self.autoscaling) && self.autoscaling.enabled && has(oldSelf.autoscaling) && "
                "oldSelf.autoscaling.enabled) || self.replicas == oldSelf.replicas",
                "replicas cannot change while autoscaling is enabled: the HorizontalPodAutoscaler sets the replica "
                "count (kubectl scale has no effect); change spec.autoscaling.minReplicas or maxReplicas instead",
                ".replicas",
            ),
            rule(
                "!has(self.podLabels) || !self.podLabels.exists(k, k == 'app.kubernetes.io/name' || "
                "k == 'app.kubernetes.io/instance')",
                "podLabels cannot set app.kubernetes.io/name or app.kubernetes.io/instance (the selector labels)",
                ".podLabels",
                "FieldValueForbidden",
            ),
        ],
    )


# --- status -------------------------------------------------------------------------------------------------------


def condition_schema() -> Schema:
    return obj(
        "A metav1.Condition: one aspect of the current state.",
        {
            "type": string("Ready, Reconciling, Stalled or VersionSkew.", 316, pattern=CONDITION_TYPE),
            "status": string("True, False or Unknown.", 16, enum=["True", "False", "Unknown"]),
            "observedGeneration": integer("metadata.generation this condition describes.", 0, fmt="int64"),
            "lastTransitionTime": {"type": "string", "format": "date-time", "description": "When status last changed."},
            "reason": string("Machine-readable CamelCase reason.", 1024, minLength=1, pattern=CONDITION_REASON),
            "message": string("Human-readable details.", 32768),
        },
        required=["type", "status", "lastTransitionTime", "reason", "message"],
    )


def status_schema() -> Schema:
    return obj(
        "Observed state, written by the operator.",
        {
            "observedGeneration": integer(
                "The metadata.generation this status describes; -1 before the operator has seen the object.",
                fmt="int64",
                default=-1,
            ),
            "conditions": array(
                "Ready (serving the desired model), Reconciling (a change is rolling out), Stalled (it cannot "
                "progress without a change, e.g. a digest mismatch) and, only while it is True, VersionSkew (the "
                "artifact was written with a scikit-learn, XGBoost or LightGBM version whose difference from the "
                "server image's matters).",
                condition_schema(),
                16,
                **{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
            ),
            "replicas": integer("Pods of the Deployment (the /scale subresource reads this).", 0),
            "readyReplicas": integer("Pods that are ready.", 0),
            "updatedReplicas": integer("Pods running the desired pod template.", 0),
            "availableReplicas": integer("Pods available for at least minReadySeconds.", 0),
            "selector": string("Label selector of the pods, serialised (the /scale subresource reads this).", 1024),
            "url": string("In-cluster URL of the model server.", 1024),
            "ingressURL": string("External URL through the Ingress, when enabled.", 1024),
            "format": string("Artifact format in use (given or derived from the URI).", 16),
            "servingDigest": string("SHA-256 of the artifact the ready pods serve; empty when unverified.", 64),
            "servingVersion": string("spec.model.version of the model the ready pods serve.", 128),
            "unverified": boolean("True when the artifact has no sha256 to verify against (allowUnverified)."),
        },
        default={"observedGeneration": -1},
    )


# --- CRD ----------------------------------------------------------------------------------------------------------


def printer_columns() -> list[Schema]:
    ready = '.status.conditions[?(@.type=="Ready")]'
    return [
        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status", "description": "Ready condition status."},
        # Without -o wide: when not Ready, the reason is what a person needs first (ImagePullFailed, OOMKilled, ...).
        {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason", "description": "Ready condition reason."},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.readyReplicas", "description": "Ready pods."},
        {"name": "Version", "type": "string", "jsonPath": ".spec.model.version", "description": "Desired version."},
        {"name": "URL", "type": "string", "jsonPath": ".status.url", "description": "In-cluster URL."},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        {
            "name": "Serving",
            "type": "string",
            "jsonPath": ".status.servingVersion",
            "priority": 1,
            "description": "Version the ready pods serve.",
        },
        {
            "name": "Ingress",
            "type": "string",
            "jsonPath": ".status.ingressURL",
            "priority": 1,
            "description": "External URL.",
        },
        {
            "name": "Message",
            "type": "string",
            "jsonPath": f"{ready}.message",
            "priority": 1,
            "description": "Ready condition message.",
        },
    ]


def crd() -> Schema:
    root = obj(
        "MLModel serves one scikit-learn model artifact over HTTP: a Deployment (an init container fetches and "
        "verifies the artifact), a Service, and optionally an Ingress, a HorizontalPodAutoscaler, a NetworkPolicy "
        "and a PodDisruptionBudget, all named after the MLModel.",
        {
            "apiVersion": {
                "type": "string",
                "description": f"Versioned schema of this object: {api.API_VERSION}.",
            },
            "kind": {"type": "string", "description": f"{api.KIND}."},
            "metadata": {"type": "object"},
            "spec": spec_schema(),
            "status": status_schema(),
        },
        required=["spec"],
        rules=[
            rule(
                f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
                f"metadata.name must be at most {MAX_NAME_LENGTH} characters (children and their pods are named after it)",
            ),
            rule(
                "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
                "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter): "
                "the Service is named after it",
            ),
        ],
    )
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": api.CRD_NAME,
            "labels": {"app.kubernetes.io/name": "mlmodel-operator", "app.kubernetes.io/part-of": "mlmodel-operator"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": list(api.CATEGORIES),
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": printer_columns(),
                }
            ],
        },
    }


HEADER = "# Generated by crds/generate.py; edit that file and run it, not this one.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(crd(), sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str]) -> int:
    return write_or_check(OUTPUT, render(), argv, "crds/generate.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
