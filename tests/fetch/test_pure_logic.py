"""Unit tests of the pure pieces: URI parsing, redaction, format detection, backoff, deadline."""

import pytest

from mlmodel_contract.artifacts import artifact_file_name, format_from_uri
from mlmodel_server.fetch.backoff import backoff_delay
from mlmodel_server.fetch.deadline import Deadline
from mlmodel_server.fetch.errors import UsageError
from mlmodel_server.fetch.redaction import redact_uri, redact_userinfo, scrub
from mlmodel_server.fetch.uris import Location, parse_uri


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("/models/iris.joblib", Location("/models/iris.joblib", "file", "", "/models/iris.joblib")),
        (
            "file:///models/my%20model.pkl",
            Location("file:///models/my%20model.pkl", "file", "", "/models/my model.pkl"),
        ),
        ("file://localhost/m.skops", Location("file://localhost/m.skops", "file", "", "/m.skops")),
        (
            "HTTPS://Host:8443/a/m.joblib?x=1",
            Location("HTTPS://Host:8443/a/m.joblib?x=1", "https", "host", "/a/m.joblib"),
        ),
        ("s3://bucket/team/m.joblib", Location("s3://bucket/team/m.joblib", "s3", "bucket", "team/m.joblib")),
        ("pvc://claim/dir/m.joblib", Location("pvc://claim/dir/m.joblib", "pvc", "claim", "dir/m.joblib")),
    ],
)
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "gs://b/k",
        "ftp://host/m.joblib",
        "file://otherhost/m.joblib",
        "s3://bucket",
        "s3:///key",
        "pvc://claim/a/../../x",
        "http:///path",
    ],
)
def test_parse_uri_rejects(uri):
    with pytest.raises(UsageError):
        parse_uri(uri)


@pytest.mark.parametrize(
    "uri, expected",
    [
        ("https://host/m.joblib", "https://host/m.joblib"),
        ("https://user:pw@host:8080/m.joblib", "https://REDACTED@host:8080/m.joblib"),
        (
            "https://b.s3.example/m.joblib?X-Amz-Credential=AKIA%2F2024&X-Amz-Signature=abc&versionId=7",
            "https://b.s3.example/m.joblib?X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&versionId=7",
        ),
        (
            "https://acct.blob.example/c/m.pkl?sv=2022&sig=xyz%3D",
            "https://acct.blob.example/c/m.pkl?sv=2022&sig=REDACTED",
        ),
        (
            "https://h/m?access_token=t&api_key=k&Password=p",
            "https://h/m?access_token=REDACTED&api_key=REDACTED&Password=REDACTED",
        ),
        ("/plain/path.joblib", "/plain/path.joblib"),
        ("//user:pw@host/m.joblib", "//REDACTED@host/m.joblib"),
        ("//token@host/m.joblib", "//REDACTED@host/m.joblib"),
        ("s3://key:secret@bucket/m.joblib", "s3://REDACTED@bucket/m.joblib"),
        ("file:///models/a@b.joblib", "file:///models/a@b.joblib"),
        ("/models/v1@2/m.joblib", "/models/v1@2/m.joblib"),
    ],
)
def test_redact_uri(uri, expected):
    assert redact_uri(uri) == expected


def test_scrub_removes_raw_uris_and_credential_values():
    env = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI", "HTTP_AUTHORIZATION": "Bearer tok123", "HOME": "/root"}
    text = "failed https://u:p@h/m?sig=s with wJalrXUtnFEMI and tok123 in /root"

    scrubbed = scrub(text, uris=["https://u:p@h/m?sig=s"], env=env)

    assert scrubbed == "failed https://REDACTED@h/m?sig=REDACTED with REDACTED and REDACTED in /root"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("not found: //alice:hunter2@host/m.joblib", "not found: //REDACTED@host/m.joblib"),
        ("a: //u:p@w@host/m and b: http://x:y@h2:80/m", "a: //REDACTED@host/m and b: http://REDACTED@h2:80/m"),
        ("git+ssh://deploy:tok@git.example/r.git?x=1", "git+ssh://REDACTED@git.example/r.git?x=1"),
        ('{"uri": "//u:secret@h/m"}', '{"uri": "//REDACTED@h/m"}'),
        (
            "no credentials: file:///a@b and mail bob@example.com",
            "no credentials: file:///a@b and mail bob@example.com",
        ),
    ],
)
def test_userinfo_is_redacted_wherever_it_is(text, expected):
    assert redact_userinfo(text) == expected
    assert scrub(text) == expected


def test_scrub_ignores_values_too_short_to_be_secrets():
    assert scrub("a model", env={"AWS_ACCESS_KEY_ID": "a"}) == "a model"


@pytest.mark.parametrize(
    "path, expected",
    [
        ("m.joblib", "joblib"),
        ("dir/M.PKL", "pickle"),
        ("m.pickle", "pickle"),
        ("m.skops", "skops"),
        ("m.bin", None),
        ("m", None),
    ],
)
def test_format_from_a_file_name(path, expected):
    assert format_from_uri(path) == expected


def test_artifact_file_name_follows_the_format():
    assert artifact_file_name("pickle") == "model.pickle"


def test_backoff_doubles_up_to_the_cap():
    delays = [backoff_delay(retry, base=0.5, cap=3.0, jitter=lambda: 1.0) for retry in range(5)]

    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_jitter_stays_between_half_and_full():
    assert backoff_delay(2, base=1.0, jitter=lambda: 0.0) == 2.0
    assert backoff_delay(2, base=1.0, jitter=lambda: 1.0) == 4.0


def test_deadline_counts_down_and_expires():
    now = [100.0]
    deadline = Deadline(5, clock=lambda: now[0])

    now[0] = 103.0
    assert deadline.remaining() == 2.0
    assert not deadline.expired()
    now[0] = 106.0
    assert deadline.remaining() == 0.0
    assert deadline.expired()
