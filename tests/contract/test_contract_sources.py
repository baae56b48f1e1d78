"""The contract's generated artifacts are fresh, and its values are used as declared."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from mlmodel_contract import exit_codes, pod
from mlmodel_contract import spec_defaults as defaults
from mlmodel_server import options
from mlmodel_server.fetch.command import FetchOptions, parse_request
from mlmodel_server.fetch.errors import UsageError
from mlmodel_server.settings import ServeSettings, parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_pod_contract_doc_is_fresh():
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "pod_contract_doc.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_exit_codes_and_reasons_are_distinct():
    every = (*exit_codes.FETCH, *exit_codes.SERVE)
    assert len({code.code for code in every}) == len(every)
    assert len({code.reason for code in every}) == len(every)
    assert exit_codes.OK not in {code.code for code in every}


@pytest.mark.parametrize("settings_class", [ServeSettings, FetchOptions])
def test_every_setting_has_a_distinct_flag_and_an_operator_owned_env_twin(settings_class):
    declared = options.options(settings_class)
    assert len(declared) == len(settings_class.__dataclass_fields__)
    assert len({option.flag for _, option, _ in declared}) == len(declared)
    assert len({option.env for _, option, _ in declared}) == len(declared)
    assert all(option.env and option.env.startswith(pod.ENV_PREFIX) for _, option, _ in declared)


def test_serve_defaults_are_the_spec_defaults():
    settings = parse_settings(["--name", "m"], {})
    assert (settings.workers, settings.threads, settings.timeout_seconds) == (
        defaults.SERVER["workers"],
        defaults.SERVER["threads"],
        defaults.SERVER["timeoutSeconds"],
    )
    assert (settings.log_level, settings.max_request_bytes, settings.http_server) == (
        defaults.SERVER["logLevel"],
        defaults.SERVER["maxRequestBytes"],
        defaults.SERVER["httpServer"],
    )
    assert (settings.model_path, settings.port) == (pod.MODELS_DIR, pod.SERVER_PORT)


def test_an_empty_variable_counts_as_unset_for_both_commands():
    empty = {pod.ServeEnv.PORT: "", pod.ServeEnv.WORKERS: "", pod.ServeEnv.LOG_LEVEL: ""}
    settings = parse_settings(["--name", "m"], empty)
    assert (settings.port, settings.workers, settings.log_level) == (pod.SERVER_PORT, 1, "info")
    request = parse_request(["--uri", "/m.joblib"], {pod.FetchEnv.MAX_BYTES: "", pod.FetchEnv.RETRIES: ""})
    assert (request.max_bytes, request.retries) == (defaults.MAX_BYTES, defaults.FETCH_RETRIES)
    with pytest.raises(SystemExit):
        parse_settings([], {pod.ServeEnv.NAME: ""})
    with pytest.raises(UsageError, match="--uri"):
        parse_request([], {pod.FetchEnv.URI: ""})


def test_a_variable_outside_the_choices_is_refused_like_the_flag(capsys):
    with pytest.raises(SystemExit):
        parse_settings(["--name", "m"], {pod.ServeEnv.HTTP_SERVER: "uvicorn"})
    assert "argument --http-server: invalid choice: 'uvicorn'" in capsys.readouterr().err
    with pytest.raises(UsageError, match="argument --format: invalid choice: 'pmml'"):
        parse_request(["--uri", "/m.joblib"], {pod.FetchEnv.FORMAT: "pmml"})
    with pytest.raises(SystemExit):
        parse_settings(["--name", "m"], {pod.ServeEnv.PORT: "http"})
    assert "argument --port: expected an integer, got 'http'" in capsys.readouterr().err


def test_the_contract_needs_only_the_standard_library():
    """Both images and every tool read it: `-S` leaves site-packages out, so a third-party import fails here."""
    modules = ", ".join(
        f"mlmodel_contract.{path.stem}" for path in (REPO / "contract" / "mlmodel_contract").glob("*.py")
    )
    script = f"import sys; sys.path.insert(0, {str(REPO / 'contract')!r}); import {modules}"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# Which first-party packages each package may import: both sides meet only in the contract.
ALLOWED_IMPORTS = {
    "mlmodel_contract": {"mlmodel_contract"},
    "mlmodel_operator": {"mlmodel_contract", "mlmodel_operator"},
    "mlmodel_server": {"mlmodel_contract", "mlmodel_server"},
}
PACKAGE_DIRS = {
    "mlmodel_contract": REPO / "contract",
    "mlmodel_operator": REPO / "operator",
    "mlmodel_server": REPO / "server",
}


def first_party_imports(source: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in ALLOWED_IMPORTS)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED_IMPORTS))
def test_operator_and_server_meet_only_in_the_contract(package):
    sources = sorted((PACKAGE_DIRS[package] / package).rglob("*.py"))
    assert sources
    for source in sources:
        forbidden = first_party_imports(source) - ALLOWED_IMPORTS[package]
        assert not forbidden, f"{source.relative_to(REPO)} imports {sorted(forbidden)}"
