"""The CRD as documentation and contract: generated, described, bounded; samples valid, invalid samples labelled."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from operator_cases import CASES, INVALID, REPO, SAMPLES


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")


def test_generated_file_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "crds" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_names(crd) -> None:
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], crd["spec"]["scope"]) == ("MLModel", "mlmodels", "Namespaced")
    assert "mlm" not in names["shortNames"]  # Seldon Core's Model
    assert names["categories"] == ["ml"]


def test_every_field_has_a_description(openapi_schema) -> None:
    missing = [
        path
        for path, node in walk(openapi_schema)
        if path
        and not path.endswith(".*")
        and not path.endswith("[]")
        and path != ".metadata"
        and "description" not in node
    ]
    assert missing == []


def test_bounds_for_cel_cost(openapi_schema) -> None:
    unbounded = []
    for path, node in walk(openapi_schema):
        if (
            node.get("type") == "string"
            and "maxLength" not in node
            and "enum" not in node
            and node.get("format") != "date-time"
            and path not in (".apiVersion", ".kind")
        ):
            unbounded.append(path)
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(path)
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            unbounded.append(path)
    assert unbounded == []


def test_no_preserve_unknown_fields(openapi_schema) -> None:
    assert [p for p, node in walk(openapi_schema) if node.get("x-kubernetes-preserve-unknown-fields")] == []


def test_every_cel_rule_has_a_message(openapi_schema) -> None:
    rules = [r for _, node in walk(openapi_schema) for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 12
    assert all(r.get("message") for r in rules)


def test_subresources_and_columns(crd) -> None:
    version = crd["spec"]["versions"][0]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert {"Replicas", "Version", "URL", "Age"} <= set(columns)
    reason = next(c for c in version["additionalPrinterColumns"] if c["name"] == "Reason")
    assert reason["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason' and "priority" not in reason


def test_status_schema_is_strict(openapi_schema) -> None:
    status = openapi_schema["properties"]["status"]
    assert status["properties"]["observedGeneration"]["default"] == -1
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the schema does not declare (the API server's strict field validation rejects them)."""
    found: list[str] = []
    if isinstance(value, dict) and ("properties" in schema or "additionalProperties" in schema):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                found += unknown_fields(sub, schema["properties"][key], f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += unknown_fields(sub, schema["additionalProperties"], f"{path}.{key}")
            elif path != ".metadata":
                found.append(f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return found


@pytest.mark.parametrize("path", SAMPLES + CASES, ids=lambda p: p.stem)
def test_valid_samples_match_the_schema(path: Path, openapi_schema) -> None:
    """Offline approximation of the API server: OpenAPI keywords and unknown fields (CEL is checked by the
    cluster tests)."""
    obj = yaml.safe_load(path.read_text())
    jsonschema.validate(obj, openapi_schema)
    assert unknown_fields(obj, openapi_schema) == []


def test_invalid_samples_name_their_field() -> None:
    assert len(INVALID) >= 12
    for path in INVALID:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# field: "), f"{path.name} must start with '# field: <path>'"
        yaml.safe_load(path.read_text())
