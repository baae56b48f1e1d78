"""s3:// against a real moto server process that enforces IAM authentication."""

from fetch_support import MODEL_SHA256


def test_fetches_an_object_with_valid_credentials(run_fetch, s3_server):
    result = run_fetch(
        "--uri", f"s3://{s3_server.bucket}/{s3_server.key}", "--sha256", MODEL_SHA256, env=s3_server.reader_env
    )

    assert result.exit_code == 0, result.stderr
    assert result.metadata["verified"] is True
    assert result.metadata["uri"] == "s3://models/team/model.joblib"
    assert (result.dest / "model.joblib").stat().st_size == result.metadata["size"]


def test_missing_key_is_not_found(run_fetch, s3_server):
    result = run_fetch("--uri", f"s3://{s3_server.bucket}/team/absent.joblib", env=s3_server.reader_env)

    assert result.exit_code == 11
    assert result.termination_message == "not found: NoSuchKey for s3://models/team/absent.joblib\n"


def test_missing_bucket_is_not_found(run_fetch, s3_server):
    result = run_fetch("--uri", "s3://no-such-bucket/model.joblib", env=s3_server.reader_env)

    assert result.exit_code == 11
    assert "NoSuchBucket" in result.termination_message


def test_wrong_secret_is_access_denied_and_never_printed(run_fetch, s3_server):
    wrong_secret = "wrong-secret-value-1234567890"
    env = s3_server.env(s3_server.reader_key_id, wrong_secret)

    result = run_fetch("--uri", f"s3://{s3_server.bucket}/{s3_server.key}", env=env)

    assert result.exit_code == 12
    assert result.termination_message.startswith("access denied: SignatureDoesNotMatch")
    for secret in (wrong_secret, s3_server.reader_key_id):
        assert secret not in result.stderr
        assert secret not in result.termination_message


def test_unknown_access_key_is_access_denied(run_fetch, s3_server):
    result = run_fetch(
        "--uri", f"s3://{s3_server.bucket}/{s3_server.key}", env=s3_server.env("AKIAUNKNOWNKEY000000", "x" * 40)
    )

    assert result.exit_code == 12
    assert "InvalidAccessKeyId" in result.termination_message


def test_key_without_a_policy_is_access_denied(run_fetch, s3_server):
    env = s3_server.env(s3_server.unprivileged_key_id, s3_server.unprivileged_secret)

    result = run_fetch("--uri", f"s3://{s3_server.bucket}/{s3_server.key}", env=env)

    assert result.exit_code == 12
    assert "AccessDenied" in result.termination_message


def test_no_credentials_sends_an_unsigned_request_which_the_server_refuses(run_fetch, s3_server):
    result = run_fetch(
        "--uri", f"s3://{s3_server.bucket}/{s3_server.key}", env={"AWS_ENDPOINT_URL": s3_server.endpoint}
    )

    assert result.exit_code == 12
