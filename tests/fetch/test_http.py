"""http(s):// against a real HTTP server on 127.0.0.1 in the test process."""

import time

from fetch_support import AUTH_TOKEN, MODEL_BYTES, MODEL_SHA256

WRONG_SHA256 = "0" * 64


def test_fetches_and_verifies_a_good_file(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)

    assert result.exit_code == 0, result.stderr
    assert (result.dest / "model.joblib").read_bytes() == MODEL_BYTES
    assert result.metadata == {
        "file": "model.joblib",
        "format": "joblib",
        "sha256": MODEL_SHA256,
        "verified": True,
        "uri": http_server.url("/good.joblib"),
        "size": len(MODEL_BYTES),
    }
    assert result.termination_message == ""


def test_not_found_is_exit_11(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/missing.joblib"))

    assert result.exit_code == 11
    assert result.termination_message == f"not found: HTTP 404 from {http_server.url('/missing.joblib')}\n"
    assert result.plain_lines == [result.termination_message.strip()]


def test_unauthorized_and_forbidden_are_exit_12(run_fetch, http_server):
    unauthorized = run_fetch("--uri", http_server.url("/private.joblib"))
    forbidden = run_fetch("--uri", http_server.url("/forbidden.joblib"))

    assert (unauthorized.exit_code, forbidden.exit_code) == (12, 12)
    assert unauthorized.termination_message.startswith("access denied: HTTP 401")
    assert forbidden.termination_message.startswith("access denied: HTTP 403")


def test_forwards_the_authorization_header_without_printing_it(run_fetch, http_server):
    result = run_fetch(
        "--uri", http_server.url("/private.joblib"), "--sha256", MODEL_SHA256, env={"HTTP_AUTHORIZATION": AUTH_TOKEN}
    )

    assert result.exit_code == 0, result.stderr
    assert http_server.authorization_seen == [AUTH_TOKEN]
    secret = AUTH_TOKEN.split()[1]
    assert secret not in result.stderr
    assert secret not in (result.dest / "model.json").read_text()


def test_keeps_the_authorization_header_on_a_same_origin_redirect(run_fetch, http_server):
    result = run_fetch(
        "--uri", http_server.url("/redirect"), "--format", "joblib", env={"HTTP_AUTHORIZATION": AUTH_TOKEN}
    )

    assert result.exit_code == 0, result.stderr
    assert http_server.authorization_seen == [AUTH_TOKEN, AUTH_TOKEN]


def test_truncated_body_is_exit_14_and_leaves_nothing_behind(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/truncated.joblib"), "--retries", "0")

    assert result.exit_code == 14
    assert result.termination_message == (
        f"truncated body: got 100 of {len(MODEL_BYTES)} bytes ({http_server.url('/truncated.joblib')})\n"
    )
    assert list(result.dest.iterdir()) == []


def test_truncated_body_is_retried(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/truncated.joblib"), "--retries", "1")

    assert result.exit_code == 14
    assert http_server.requests["/truncated.joblib"] == 2
    assert "(gave up after 2 attempts)" in result.termination_message


def test_stalled_server_times_out_with_exit_13(run_fetch, http_server):
    started = time.monotonic()
    result = run_fetch("--uri", http_server.url("/stalled.joblib"), "--timeout-seconds", "1")

    assert result.exit_code == 13
    assert time.monotonic() - started < 3
    assert result.termination_message.startswith("timed out after 1s (--timeout-seconds)")
    assert list(result.dest.iterdir()) == []


def test_announced_too_large_body_is_refused_before_download(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/huge-announced.joblib"), "--max-bytes", str(len(MODEL_BYTES)))

    assert result.exit_code == 15
    assert result.termination_message.startswith(f"artifact too large: {10 * len(MODEL_BYTES)} bytes")


def test_unannounced_too_large_body_is_cut_off_while_streaming(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/huge-unannounced.joblib"), "--max-bytes", str(len(MODEL_BYTES)))

    assert result.exit_code == 15
    assert result.termination_message.startswith(f"artifact too large: more than {len(MODEL_BYTES)} bytes")
    assert list(result.dest.iterdir()) == []


def test_digest_mismatch_is_exit_10_and_lands_nothing(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", WRONG_SHA256)

    assert result.exit_code == 10
    assert result.termination_message == (
        f"sha256 mismatch: expected {WRONG_SHA256}, got {MODEL_SHA256} ({http_server.url('/good.joblib')})\n"
    )
    assert list(result.dest.iterdir()) == []


def test_retries_transient_503s_with_backoff(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/flaky.joblib"), "--sha256", MODEL_SHA256)

    assert result.exit_code == 0, result.stderr
    assert http_server.requests["/flaky.joblib"] == 3
    retries = [record for record in result.log_records if record["message"] == "retrying"]
    assert [record["attempt"] for record in retries] == [1, 2]
    assert all(record["reason"].startswith("HTTP 503") for record in retries)


def test_gives_up_on_persistent_503_with_exit_16(run_fetch, http_server):
    result = run_fetch("--uri", http_server.url("/always-503.joblib"), "--retries", "1")

    assert result.exit_code == 16
    assert result.termination_message.startswith("HTTP 503 from")
    assert http_server.requests["/always-503.joblib"] == 2


def test_reuses_a_verified_file_without_downloading_again(run_fetch, http_server):
    first = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)
    second = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)

    assert (first.exit_code, second.exit_code) == (0, 0)
    assert http_server.requests["/good.joblib"] == 1
    assert second.logged("reused verified artifact")


def test_downloads_again_when_the_kept_file_was_altered(run_fetch, http_server):
    first = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)
    (first.dest / "model.joblib").write_bytes(b"tampered")

    second = run_fetch("--uri", http_server.url("/good.joblib"), "--sha256", MODEL_SHA256)

    assert second.exit_code == 0
    assert http_server.requests["/good.joblib"] == 2
    assert (second.dest / "model.joblib").read_bytes() == MODEL_BYTES


def test_unverified_file_is_never_reused(run_fetch, http_server):
    run_fetch("--uri", http_server.url("/good.joblib"))
    result = run_fetch("--uri", http_server.url("/good.joblib"))

    assert result.metadata["verified"] is False
    assert http_server.requests["/good.joblib"] == 2


def test_credentials_in_the_url_are_redacted_everywhere(run_fetch, http_server):
    host = http_server.base_url.removeprefix("http://")
    uri = f"http://alice:hunter2-password@{host}/missing.joblib?X-Amz-Signature=deadbeefsig&token=tok-123456&v=2"

    result = run_fetch("--uri", uri)

    assert result.exit_code == 11
    for secret in ("alice", "hunter2-password", "deadbeefsig", "tok-123456"):
        assert secret not in result.stderr
        assert secret not in result.termination_message
    assert f"http://REDACTED@{host}/missing.joblib?X-Amz-Signature=REDACTED&token=REDACTED&v=2" in (
        result.termination_message
    )


def test_a_scheme_relative_uri_with_userinfo_is_redacted_everywhere(run_fetch, http_server):
    host = http_server.base_url.removeprefix("http://")
    uri = f"//alice:hunter2-password@{host}/missing.joblib"

    result = run_fetch("--uri", uri)

    assert result.exit_code == 11
    for secret in ("alice", "hunter2-password"):
        assert secret not in result.stderr
        assert secret not in result.termination_message
    assert f"//REDACTED@{host}/missing.joblib" in result.termination_message


def test_https_verifies_the_server_certificate(run_fetch, https_server, monkeypatch):
    server, certificate = https_server

    untrusted = run_fetch("--uri", server.url("/good.joblib"))
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate))
    trusted = run_fetch("--uri", server.url("/good.joblib"), "--sha256", MODEL_SHA256)

    assert untrusted.exit_code == 16
    assert untrusted.termination_message.startswith(f"TLS verification failed for {server.url('/good.joblib')}")
    assert trusted.exit_code == 0, trusted.stderr
    assert trusted.metadata["uri"] == server.url("/good.joblib")
