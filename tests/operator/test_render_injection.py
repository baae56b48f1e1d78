"""Hostile values cannot add structure: rendering an MLModel whose strings are YAML/Jinja syntax produces exactly
the objects a benign MLModel produces, with each hostile string at the same paths as its benign token."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlmodel_operator.labels import TEMPLATE_HASH_ANNOTATION, label_value
from mlmodel_operator.render import render_children
from mlmodel_operator.settings import Settings

HOSTILE = [
    "line\nbreak: injected",
    "key: value",
    "- listitem",
    "&anchor value",
    "*alias",
    "!!python/object/apply:os.system ['id']",
    "{{ 7 * 7 }}",
    "{% if true %}x{% endif %}",
    "'single\" double",
    "# not a comment",
    "[1, 2]",
    "{a: b}",
    "---\nkind: Secret",
    "null",
    "true",
    "0x1F",
    "~",
    "| block\n  text",
    "> folded",
    "tab\there",
    "unicode \u2028 separator \u0085 next",
    "%TAG ! tag:evil:",
    "@reserved `tick`",
    "trailing space ",
    " ",
]


def token(i: int) -> str:
    return f"TOKEN{i:02d}X"


def build(values: list[str]) -> dict[str, Any]:
    """An MLModel putting values[i] in many user-controlled places (names, keys, values, env, annotations)."""
    v = values
    return {
        "apiVersion": "serving.mlops.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": v[0], "namespace": v[1], "uid": v[2], "generation": 1},
        "spec": {
            "model": {
                "uri": "https://example.com/" + v[3],
                "sha256": v[4],
                "format": v[5],
                "version": v[6],
                "credentialsSecret": {"name": v[7]},
            },
            "replicas": 3,
            "image": v[8],
            "imagePullSecrets": [{"name": v[9]}],
            "serviceAccountName": v[10],
            "env": [
                {"name": v[11], "value": v[12]},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": v[13], "key": v[14]}}},
            ],
            "envFrom": [{"configMapRef": {"name": v[15]}, "prefix": v[16]}],
            "apiKeySecret": {"name": v[17], "key": v[18]},
            "podLabels": {v[19]: v[20]},
            "podAnnotations": {v[21]: v[22], "plain": v[23]},
            "nodeSelector": {v[24]: v[0]},
            "tolerations": [{"key": v[1], "operator": "Equal", "value": v[2], "effect": "NoSchedule"}],
            "ingress": {
                "enabled": True,
                "host": v[3],
                "className": v[4],
                "path": "/" + v[5],
                "tls": {"secretName": v[6]},
                "annotations": {v[7]: v[8], "x": v[9]},
            },
            "networkPolicy": {
                "ingressNamespaces": [v[10]],
                "allowFrom": [{"podSelector": {"matchLabels": {v[11]: v[12]}}}],
                "additionalEgress": [{"cidr": v[13], "ports": [9000]}],
            },
            "server": {"logLevel": v[14], "skopsTrustedTypes": [v[15]]},
        },
    }


def substitute(value: Any, mapping: dict[str, str]) -> Any:
    """Replace every token inside strings (keys too) by its hostile counterpart."""
    if isinstance(value, str):
        for key, replacement in mapping.items():
            value = value.replace(key, replacement)
        return value
    if isinstance(value, dict):
        return {substitute(k, mapping): substitute(v, mapping) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(item, mapping) for item in value]
    return value


def without_derived(children: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str], list[Any]]:
    """Remove the values derived by hashing or label sanitising; return them for separate checks."""
    children = copy.deepcopy(children)
    versions, hashes = [], []
    for child in children:
        for labels in (
            child["metadata"]["labels"],
            child["spec"].get("template", {}).get("metadata", {}).get("labels", {}),
        ):
            versions.append(labels.pop("app.kubernetes.io/version", None))
        annotations = child["spec"].get("template", {}).get("metadata", {}).get("annotations")
        if annotations is not None:
            hashes.append(annotations.pop(TEMPLATE_HASH_ANNOTATION))
    return children, versions, hashes


@pytest.mark.parametrize("rotation", range(0, len(HOSTILE), 5))
def test_hostile_values_land_exactly_where_benign_tokens_do(rotation: int) -> None:
    hostile = HOSTILE[rotation:] + HOSTILE[:rotation]
    hostile = (hostile * 2)[:25]
    tokens = [token(i) for i in range(25)]
    # Longest tokens first is unnecessary: every token has the same length and a unique terminator.
    mapping = dict(zip(tokens, hostile, strict=True))

    benign_children = render_children(build(tokens), Settings())
    hostile_children = render_children(build(hostile), Settings())

    benign, _, _ = without_derived(benign_children)
    actual, versions, hashes = without_derived(hostile_children)

    assert [c["kind"] for c in actual] == [c["kind"] for c in benign]
    assert actual == substitute(benign, mapping)
    assert all(v in (None, label_value(hostile[6])) for v in versions)
    assert all(len(h) == 16 and all(c in "0123456789abcdef" for c in h) for h in hashes)


def test_every_token_reaches_the_output() -> None:
    """The benign render really carries each token, so the comparison above covers all of them."""
    text = repr(render_children(build([token(i) for i in range(25)]), Settings()))
    missing = [token(i) for i in range(25) if token(i) not in text]
    assert missing == []


def test_template_syntax_in_values_is_not_evaluated() -> None:
    values = [token(i) for i in range(25)]
    values[12] = "{{ 7 * 7 }}{% raw %}"
    children = render_children(build(values), Settings())
    deployment = next(c for c in children if c["kind"] == "Deployment")
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": token(11), "value": "{{ 7 * 7 }}{% raw %}"} in env
