"""Golden files: every sample and case renders exactly as checked in. Regenerate with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from operator_cases import CASES, HERE, SAMPLES, load_mlmodel

from mlmodel_operator.render import render_children
from mlmodel_operator.settings import Settings

GOLDEN = HERE / "golden"
SCENARIOS = SAMPLES + CASES


def render_text(path: Path) -> str:
    children = render_children(load_mlmodel(path), Settings())
    header = f"# Rendered from tests/operator/{path.parent.name}/{path.name} with the default Settings.\n"
    return header + yaml.safe_dump_all(children, sort_keys=False, width=120)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: p.stem)
def test_golden(scenario: Path) -> None:
    golden = GOLDEN / f"{scenario.stem}.yaml"
    text = render_text(scenario)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text)
    assert golden.exists(), f"{golden} missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), (
        f"{scenario.name} renders differently from {golden.name} (UPDATE_GOLDEN=1 to accept)"
    )


def test_no_orphan_golden_files() -> None:
    expected = {f"{path.stem}.yaml" for path in SCENARIOS}
    assert {path.name for path in GOLDEN.glob("*.yaml")} == expected
