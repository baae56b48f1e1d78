"""Dockerfile.server and Dockerfile.operator: lint-clean, pinned base from a build arg, wheels-only final stage,
non-root UID 10001, and an ENTRYPOINT that is the console script pyproject.toml declares and the tests run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging_support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGES = {
    # Dockerfile: (console script, pyproject extra)
    "Dockerfile.server": ("mlmodel-server", "server"),
    "Dockerfile.operator": ("mlmodel-operator", "operator"),
}


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (name, _) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def values(steps, name: str) -> list[str]:
    return [args for instruction, args in steps if instruction == name]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_hadolint_is_clean(hadolint, dockerfile):
    result = subprocess.run([hadolint, "--no-color", str(REPO / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"hadolint {dockerfile}:\n{result.stdout}{result.stderr}"
    )


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_entrypoint_is_the_console_script_the_tests_run(dockerfile):
    script, _ = IMAGES[dockerfile]
    steps = final_stage(REPO / dockerfile)
    entrypoint = json.loads(values(steps, "ENTRYPOINT")[-1])
    assert entrypoint == [script], "ENTRYPOINT must be the console script alone, in exec form"
    assert script in PYPROJECT["project"]["scripts"]
    json.loads(values(steps, "CMD")[-1])  # exec form: no shell between the runtime and the process
    # The very script the other tests start (tests/cluster runs <venv>/bin/mlmodel-operator) must work.
    installed = Path(sys.executable).parent / script
    result = subprocess.run([str(installed), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_operator_default_command_matches_the_manifests():
    cmd = json.loads(values(final_stage(REPO / "Dockerfile.operator"), "CMD")[-1])
    assert cmd == ["--all-namespaces", "--liveness", "http://0.0.0.0:8080/healthz", "--metrics-address", "0.0.0.0:8081"]


def test_server_default_command_is_serve():
    assert json.loads(values(final_stage(REPO / "Dockerfile.server"), "CMD")[-1]) == ["serve"]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_runs_as_numeric_uid_10001(dockerfile):
    steps = final_stage(REPO / dockerfile)
    user = values(steps, "USER")[-1]
    assert re.fullmatch(r"10001(:10001)?", user), f"USER must be numeric 10001 (runAsNonRoot checks it), got {user!r}"
    run_steps = " ".join(values(steps, "RUN"))
    assert "--uid 10001" in run_steps and "--gid 10001" in run_steps


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_base_image_is_a_pinned_build_arg(dockerfile):
    steps = instructions(REPO / dockerfile)
    base = re.fullmatch(r"BASE_IMAGE=(\S+)", values(steps, "ARG")[0])
    assert base, "the first instruction must be ARG BASE_IMAGE=<image:tag>"
    image = base.group(1)
    assert re.fullmatch(r"python:3\.\d+-slim-\w+", image), f"pin a slim tag, got {image}"
    froms = values(steps, "FROM")
    assert len(froms) == 2, "a builder stage and a final stage"
    assert all(f.split()[0] == "${BASE_IMAGE}" for f in froms)
    assert froms[0].endswith(" AS builder")


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_builder_makes_wheels_and_final_stage_installs_only_them(dockerfile):
    _, extra = IMAGES[dockerfile]
    assert extra in PYPROJECT["project"]["optional-dependencies"]
    steps = instructions(REPO / dockerfile)
    builder = steps[: max(i for i, (name, _) in enumerate(steps) if name == "FROM")]
    assert any(
        f'pip wheel --wheel-dir /wheels --constraint constraints.txt ".[{extra}]"' in run
        for run in values(builder, "RUN")
    ), "the image installs the versions the tests ran with"
    final_runs = " ".join(values(final_stage(REPO / dockerfile), "RUN"))
    assert "--no-index --find-links=/wheels" in final_runs
    assert f'"mlmodel-operator[{extra}]==${{VERSION}}"' in final_runs
    assert "--mount=type=bind,from=builder,source=/wheels" in final_runs, "wheels must not stay in a layer"
    assert not re.search(r"gcc|g\+\+|build-essential|-dev\b", final_runs), "no build tools in the final image"
    for install in re.findall(r"apt-get install[^;&]*", final_runs):  # a runtime library, its package lists removed
        assert "--no-install-recommends" in install and "rm -rf /var/lib/apt/lists/*" in final_runs, install


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_runtime_environment(dockerfile):
    steps = final_stage(REPO / dockerfile)
    env = " ".join(values(steps, "ENV"))
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PIP_NO_CACHE_DIR=1"):
        assert setting in env
    # HOME on the /tmp emptyDir: the root filesystem is read-only.
    assert "HOME=/tmp" in env
    version = re.search(r"VERSION=(\S+)", " ".join(values(steps, "ARG")))
    assert version and version.group(1) == PYPROJECT["project"]["version"]


@pytest.mark.parametrize("dockerfile", IMAGES)
def test_oci_labels(dockerfile):
    labels = " ".join(values(final_stage(REPO / dockerfile), "LABEL"))
    for key in ("title", "description", "source", "licenses", "version", "revision", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels
    assert 'org.opencontainers.image.licenses="Apache-2.0"' in labels
    assert PYPROJECT["project"]["license"] == "Apache-2.0"


def test_dockerignore_sends_only_the_packages():
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "operator",
        "server",
        "contract",
        "hack/slim_server_image.py",  # bind-mounted for one RUN, not copied
    }
    copied = set()
    for dockerfile in IMAGES:
        steps = instructions(REPO / dockerfile)
        for args in values(steps, "COPY"):
            if not args.startswith("--from"):
                copied.update(part.rstrip("/") for part in args.split()[:-1])
        for args in values(steps, "RUN"):  # bind mounts of the build context (no from=)
            for mount in re.findall(r"--mount=(\S+)", args):
                options = dict(option.partition("=")[::2] for option in mount.split(","))
                if options.get("type") == "bind" and "from" not in options:
                    copied.add(options["source"])
    assert copied == allowed
