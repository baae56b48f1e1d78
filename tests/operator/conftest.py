"""Fixtures for the operator's pure tests."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from operator_cases import CRD_PATH


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return yaml.safe_load(CRD_PATH.read_text())


@pytest.fixture(scope="session")
def openapi_schema(crd) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
