"""deploy/argocd/health.lua run by a real Lua 5.1 interpreter (Argo CD's gopher-lua speaks 5.1) against the
status fixtures of deploy/argocd/health_test.yaml, plus the argocd-cm patch that installs it."""

from __future__ import annotations

import copy

import pytest
import yaml
from packaging_support import REPO

ARGOCD = REPO / "deploy" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
CASES = yaml.safe_load((ARGOCD / "health_test.yaml").read_text())["tests"]
HEALTH_KEY = "resource.customizations.health.serving.mlops.dev_MLModel"


@pytest.fixture(scope="module")
def lua51():
    try:
        from lupa import lua51
    except ImportError:
        pytest.fail(
            "the lupa package (Lua interpreters for Python) is not installed: add lupa to the dev extra "
            "of pyproject.toml (or `.venv/bin/pip install lupa`)",
            pytrace=False,
        )
    return lua51


def health(lua51, obj: dict) -> dict:
    """Run the script as Argo CD does: a fresh interpreter, the object as the global `obj`, `hs` returned."""
    runtime = lua51.LuaRuntime()
    runtime.globals().obj = runtime.table_from(obj, recursive=True)
    result = runtime.execute(SCRIPT)
    return dict(result.items())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["inputPath"].split("/")[-1].removesuffix(".yaml"))
def test_health_of_each_fixture(lua51, case):
    obj = yaml.safe_load((ARGOCD / case["inputPath"]).read_text())
    assert health(lua51, obj) == case["healthStatus"]


def test_fixtures_cover_every_health_status(lua51):
    assert len(CASES) >= 6
    assert {case["healthStatus"]["status"] for case in CASES} == {"Healthy", "Progressing", "Degraded", "Suspended"}
    used = {case["inputPath"] for case in CASES}
    assert used == {f"testdata/{p.name}" for p in (ARGOCD / "testdata").glob("*.yaml")}


def test_condition_order_does_not_matter(lua51):
    obj = yaml.safe_load((ARGOCD / "testdata" / "stalled-digest-mismatch.yaml").read_text())
    reversed_obj = copy.deepcopy(obj)
    reversed_obj["status"]["conditions"].reverse()
    assert health(lua51, reversed_obj) == health(lua51, obj)


def test_argocd_cm_patch_embeds_the_script_verbatim():
    patch = yaml.safe_load((ARGOCD / "argocd-cm-patch.yaml").read_text())
    assert patch["kind"] == "ConfigMap" and patch["metadata"]["name"] == "argocd-cm"
    assert patch["data"] == {HEALTH_KEY: SCRIPT}, "argocd-cm-patch.yaml is stale: re-embed deploy/argocd/health.lua"
