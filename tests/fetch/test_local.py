"""Plain paths, file:// and pvc:// URIs, landing, metadata and the termination-message file."""

import hashlib
from pathlib import Path

import pytest
from fetch_support import MODEL_BYTES, MODEL_SHA256


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "store" / "iris.joblib"
    path.parent.mkdir()
    path.write_bytes(MODEL_BYTES)
    return path


def test_fetches_a_plain_path(run_fetch, artifact):
    result = run_fetch("--uri", str(artifact), "--sha256", MODEL_SHA256)

    assert result.exit_code == 0, result.stderr
    assert (result.dest / "model.joblib").read_bytes() == MODEL_BYTES
    assert result.metadata["verified"] is True
    assert sorted(path.name for path in result.dest.iterdir()) == ["model.joblib", "model.json"]


def test_fetches_a_file_uri(run_fetch, artifact):
    result = run_fetch("--uri", f"file://{artifact}", "--sha256", MODEL_SHA256.upper())

    assert result.exit_code == 0, result.stderr
    assert result.metadata["sha256"] == MODEL_SHA256


def test_fetches_from_a_mounted_claim(run_fetch, tmp_path):
    pvc_root = tmp_path / "pvc"
    (pvc_root / "models-claim" / "iris").mkdir(parents=True)
    (pvc_root / "models-claim" / "iris" / "v1.skops").write_bytes(MODEL_BYTES)

    result = run_fetch(
        "--uri", "pvc://models-claim/iris/v1.skops", "--pvc-root", str(pvc_root), "--sha256", MODEL_SHA256
    )

    assert result.exit_code == 0, result.stderr
    assert result.metadata["file"] == "model.skops"
    assert result.metadata["format"] == "skops"


def test_unmounted_claim_is_not_found(run_fetch, tmp_path):
    result = run_fetch("--uri", "pvc://other-claim/model.joblib", "--pvc-root", str(tmp_path))

    assert result.exit_code == 11
    assert "claim 'other-claim' is not mounted" in result.termination_message


def test_missing_file_is_exit_11_and_written_to_the_termination_file(run_fetch, tmp_path):
    result = run_fetch("--uri", str(tmp_path / "absent.joblib"))

    assert result.exit_code == 11
    assert result.termination_message == f"not found: {tmp_path / 'absent.joblib'}\n"
    assert result.plain_lines == [result.termination_message.strip()]


def test_a_directory_is_another_fetch_error(run_fetch, tmp_path):
    (tmp_path / "dir.joblib").mkdir()

    result = run_fetch("--uri", str(tmp_path / "dir.joblib"))

    assert result.exit_code == 16


def test_mismatch_keeps_the_previous_artifact_out_and_no_partial_file(run_fetch, artifact):
    result = run_fetch("--uri", str(artifact), "--sha256", "a" * 64)

    assert result.exit_code == 10
    assert list(result.dest.iterdir()) == []


def test_too_large_file_is_exit_15(run_fetch, artifact):
    result = run_fetch("--uri", str(artifact), "--max-bytes", "10")

    assert result.exit_code == 15


def test_reuse_does_not_read_the_source_again(run_fetch, artifact):
    assert run_fetch("--uri", str(artifact), "--sha256", MODEL_SHA256).exit_code == 0
    artifact.unlink()

    result = run_fetch("--uri", str(artifact), "--sha256", MODEL_SHA256)

    assert result.exit_code == 0
    assert result.logged("reused verified artifact")


def test_a_new_digest_replaces_the_artifact_and_the_metadata(run_fetch, artifact, tmp_path):
    run_fetch("--uri", str(artifact), "--sha256", MODEL_SHA256)
    other = tmp_path / "other.pkl"
    other.write_bytes(b"another model")

    result = run_fetch("--uri", str(other))

    assert result.exit_code == 0
    assert sorted(path.name for path in result.dest.iterdir()) == ["model.json", "model.pickle"]
    assert result.metadata["verified"] is False


def test_failed_refetch_withdraws_the_old_metadata(run_fetch, artifact, tmp_path):
    run_fetch("--uri", str(artifact), "--sha256", MODEL_SHA256)

    result = run_fetch("--uri", str(tmp_path / "absent.joblib"), "--sha256", "b" * 64)

    assert result.exit_code == 11
    assert (result.dest / "model.joblib").exists()  # stays, but is no longer claimed verified
    assert not (result.dest / "model.json").exists()


def test_leftover_partial_files_are_cleaned_up(run_fetch, artifact, tmp_path):
    dest = tmp_path / "models"
    dest.mkdir()
    (dest / ".fetch-killed.partial").write_bytes(b"half")

    run_fetch("--uri", str(artifact), dest=dest)

    assert not (dest / ".fetch-killed.partial").exists()


def test_format_flag_overrides_the_extension(run_fetch, tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(MODEL_BYTES)

    without_format = run_fetch("--uri", str(blob))
    with_format = run_fetch("--uri", str(blob), "--format", "pickle")

    assert without_format.exit_code == 2
    assert without_format.termination_message.startswith("cannot tell the model format")
    assert with_format.exit_code == 0
    assert with_format.metadata["file"] == "model.pickle"


def test_flags_fall_back_to_their_env_twins(run_fetch, artifact, tmp_path):
    env = {"MLMODEL_URI": str(artifact), "MLMODEL_SHA256": MODEL_SHA256, "MLMODEL_FORMAT": "pickle"}

    result = run_fetch(env=env)

    assert result.exit_code == 0, result.stderr
    assert result.metadata["format"] == "pickle"
    assert result.metadata["verified"] is True


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "mlmodel-server fetch: --uri (or MLMODEL_URI) is required"),
        (["--uri", "x.joblib", "--sha256", "abc"], "mlmodel-server fetch: --sha256 must be 64 hex characters"),
        (
            ["--uri", "x.joblib", "--max-bytes", "lots"],
            "mlmodel-server fetch: argument --max-bytes: invalid int value: 'lots'",
        ),
        (
            ["--uri", "gs://bucket/x.joblib"],
            "unsupported URI scheme 'gs' in gs://bucket/x.joblib (supported: file, http, https, s3, pvc)",
        ),
        (
            ["--uri", "s3://bucket-only"],
            "s3:// URIs need a bucket and a path: s3://<bucket>/<path>, got s3://bucket-only",
        ),
        (
            ["--uri", "pvc://claim/../etc/x.joblib"],
            "pvc:// paths must stay inside the claim: pvc://claim/../etc/x.joblib",
        ),
    ],
)
def test_usage_errors_are_exit_2_with_one_line(run_fetch, args, message):
    result = run_fetch(*args)

    assert result.exit_code == 2
    assert result.termination_message == message + "\n"
    assert result.plain_lines == [message]


XGBOOST_UBJSON_START = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{L\x00\x00\x00\x00\x00\x00\x00\nattributes{}}"
LIGHTGBM_TEXT_START = b"tree\nversion=v4\nnum_class=1\n"


@pytest.mark.parametrize(
    ("start", "model_format"), [(XGBOOST_UBJSON_START, "xgboost"), (LIGHTGBM_TEXT_START, "lightgbm")]
)
def test_a_name_without_a_suffix_is_told_from_the_content(run_fetch, tmp_path, start, model_format):
    artifact = tmp_path / "latest"
    artifact.write_bytes(start + b"\n" * 100)
    digest = hashlib.sha256(artifact.read_bytes()).hexdigest()

    result = run_fetch("--uri", f"file://{artifact}", "--sha256", digest)

    assert result.exit_code == 0, result.stderr
    assert result.metadata["format"] == model_format and result.metadata["file"] == f"model.{model_format}"
    assert (result.dest / f"model.{model_format}").read_bytes() == artifact.read_bytes()
    artifact.unlink()  # the same digest again: reused without a format to name the file by
    again = run_fetch("--uri", f"file://{artifact}", "--sha256", digest)
    assert again.exit_code == 0 and again.logged("reused verified artifact"), again.stderr


def test_an_explicit_format_is_not_second_guessed(run_fetch, tmp_path):
    artifact = tmp_path / "latest"
    artifact.write_bytes(XGBOOST_UBJSON_START)

    result = run_fetch(
        "--uri", str(artifact), "--format", "joblib", "--sha256", hashlib.sha256(XGBOOST_UBJSON_START).hexdigest()
    )

    assert result.exit_code == 0 and result.metadata["format"] == "joblib"


def test_neither_name_nor_content_tells_the_format(run_fetch, tmp_path):
    artifact = tmp_path / "latest"
    artifact.write_bytes(b"\x80\x05 a pickle, perhaps")

    result = run_fetch("--uri", str(artifact))

    assert result.exit_code == 2
    assert "cannot tell the model format" in result.termination_message
    assert sorted(p.name for p in result.dest.iterdir()) == []
