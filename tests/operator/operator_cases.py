"""Sample MLModels and schema helpers shared by the operator's pure tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from mlmodel_contract import api

HERE = Path(__file__).parent
REPO = HERE.parent.parent
CRD_PATH = REPO / "crds" / api.CRD_FILE_NAME
SAMPLES = sorted((HERE / "samples").glob("*.yaml"))
CASES = sorted((HERE / "cases").glob("*.yaml"))
INVALID = sorted((HERE / "invalid").glob("*.yaml"))
UID = "0f4a7a2c-6f55-4b7e-8a8e-2c7f6f1b9e11"


def load_mlmodel(path: Path) -> dict[str, Any]:
    """A sample as the operator receives it: with a uid and a generation."""
    mlmodel = yaml.safe_load(path.read_text())
    mlmodel["metadata"].setdefault("uid", UID)
    mlmodel["metadata"].setdefault("generation", 1)
    return mlmodel


def apply_schema_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting as the API server does it: a node's missing properties get their defaults,
    then defaulting continues inside them (so `default: {}` picks up the nested defaults)."""
    value = copy.deepcopy(value)
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_schema_defaults(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                value[key] = apply_schema_defaults(value[key], extra)
    elif isinstance(value, list) and "items" in schema:
        value = [apply_schema_defaults(item, schema["items"]) for item in value]
    return value
