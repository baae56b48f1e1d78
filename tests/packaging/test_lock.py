"""constraints.txt (made by `make lock`) pins what pyproject.toml asks for, and this venv runs those pins."""

from __future__ import annotations

import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging_support import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def declared_requirements() -> list[Requirement]:
    project = PYPROJECT["project"]
    texts = [*project["dependencies"], *PYPROJECT["build-system"]["requires"]]
    for extra in project["optional-dependencies"].values():
        texts.extend(extra)
    return [requirement for requirement in map(Requirement, texts) if canonicalize_name(requirement.name) != PROJECT]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = locked_versions()
    for requirement in declared_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in constraints.txt: run make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject's {requirement}: run make lock"
        )


def test_this_venv_runs_the_locked_versions() -> None:
    build_backend = {canonicalize_name(Requirement(text).name) for text in PYPROJECT["build-system"]["requires"]}
    for name, version in locked_versions().items():
        if name in build_backend:  # pinned for the image builds; a venv keeps the one it was made with
            continue
        assert metadata.version(name) == version, (
            f"{name} {metadata.version(name)} is installed, constraints.txt pins {version}"
        )
