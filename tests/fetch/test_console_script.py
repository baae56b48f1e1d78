"""The installed console script end to end, as the init container runs it."""

import json
import os
import subprocess

from fetch_support import AUTH_TOKEN, MODEL_SHA256, VENV_BIN


def run_script(tmp_path, *args, env_extra=None):
    message_file = tmp_path / "termination-log"
    env = {**os.environ, **(env_extra or {})}
    completed = subprocess.run(
        [
            str(VENV_BIN / "mlmodel-server"),
            "fetch",
            "--dest",
            str(tmp_path / "models"),
            "--termination-message-path",
            str(message_file),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    message = message_file.read_text() if message_file.exists() else ""
    return completed, message


def test_success_logs_json_lines_only(tmp_path, http_server):
    completed, message = run_script(tmp_path, "--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)

    assert completed.returncode == 0, completed.stderr
    records = [json.loads(line) for line in completed.stderr.splitlines()]
    assert [record["message"] for record in records] == ["fetch started", "fetch complete"]
    # The serve step's schema (mlmodel_server.logs): one log schema for the whole pod.
    assert all({"time", "level", "logger", "pid", "message"} <= record.keys() for record in records)
    assert {record["logger"] for record in records} == {"mlmodel_server.fetch"}
    assert completed.stdout == ""
    assert message == ""


def test_failure_ends_with_one_plain_line_matching_the_termination_file(tmp_path, http_server):
    completed, message = run_script(
        tmp_path,
        "--uri",
        http_server.url("/private.joblib"),
        "--sha256",
        "1" * 64,
        env_extra={"HTTP_AUTHORIZATION": AUTH_TOKEN},
    )

    assert completed.returncode == 10
    lines = completed.stderr.splitlines()
    assert lines[-1] == message.strip()
    assert message.startswith(f"sha256 mismatch: expected {'1' * 64}, got {MODEL_SHA256} (")
    assert all(line.startswith("{") for line in lines[:-1])
    assert AUTH_TOKEN.split()[1] not in completed.stderr + completed.stdout + message


def test_env_twins_drive_the_script(tmp_path, http_server):
    completed, message = run_script(
        tmp_path, env_extra={"MLMODEL_URI": http_server.url("/missing.joblib"), "MLMODEL_FETCH_TIMEOUT_SECONDS": "5"}
    )

    assert completed.returncode == 11
    lines = completed.stderr.splitlines()
    assert lines[-1] == message.strip() == f"not found: HTTP 404 from {http_server.url('/missing.joblib')}"
    assert json.loads(lines[0])["uri"] == http_server.url("/missing.joblib")


def test_usage_error_exits_2(tmp_path):
    completed, message = run_script(tmp_path, "--uri", "gs://bucket/model.joblib")

    assert completed.returncode == 2
    assert completed.stderr.strip() == message.strip()
