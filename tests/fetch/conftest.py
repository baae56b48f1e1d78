"""Fixtures for the fetch tests: a clean environment, a real local HTTP server, a real moto S3 server."""

import datetime
import ipaddress
import json
import os
import socket
import ssl
import threading
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fetch_support import AUTH_TOKEN, MODEL_BYTES
from moto_process import running_moto

from mlmodel_server.fetch.command import main

_CREDENTIAL_ENV = ("AWS_", "HTTP_AUTHORIZATION", "MLMODEL_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials, endpoints or config from the machine may leak into a test (or a test into another)."""
    for name in list(os.environ):
        if name.startswith(_CREDENTIAL_ENV):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")


@dataclass
class FetchRun:
    exit_code: int
    stderr: str
    termination_message: str
    dest: Path

    @property
    def log_records(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]

    @property
    def plain_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if not line.startswith("{")]

    @property
    def metadata(self) -> dict:
        return json.loads((self.dest / "model.json").read_text())

    def logged(self, msg: str) -> bool:
        return any(record["message"] == msg for record in self.log_records)


@pytest.fixture
def run_fetch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., FetchRun]:
    """Run `mlmodel-server fetch` in-process with a fresh termination-message file."""
    counter = iter(range(1000))

    def run(*args: str, dest: Path | None = None, env: dict[str, str] | None = None) -> FetchRun:
        run_id = next(counter)
        dest = dest or tmp_path / "models"
        message_file = tmp_path / f"termination-{run_id}"
        argv = ["--dest", str(dest), "--termination-message-path", str(message_file), *args]
        capsys.readouterr()
        exit_code = main(argv, env={**os.environ, **(env or {})})
        stderr = capsys.readouterr().err
        message = message_file.read_text() if message_file.exists() else ""
        return FetchRun(exit_code, stderr, message, dest)

    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- a real HTTP server in this process -----------------------------------------------------------


@dataclass
class ArtifactServer:
    base_url: str
    requests: Counter = field(default_factory=Counter)
    authorization_seen: list[str | None] = field(default_factory=list)
    release_stalled: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str) -> str:
        return self.base_url + path


def _handler_for(server: ArtifactServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.partition("?")[0]
            server.requests[path] += 1
            server.authorization_seen.append(self.headers.get("Authorization"))
            route = getattr(self, "route_" + path.strip("/").replace(".joblib", "").replace("-", "_"), None)
            if route is None:
                self.send_error(404)
            else:
                route()

        def send_body(self, body: bytes, status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def route_good(self) -> None:
            self.send_body(MODEL_BYTES)

        def route_private(self) -> None:
            if self.headers.get("Authorization") == AUTH_TOKEN:
                self.send_body(MODEL_BYTES)
            else:
                self.send_error(401)

        def route_forbidden(self) -> None:
            self.send_error(403)

        def route_truncated(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL_BYTES)))
            self.end_headers()
            self.wfile.write(MODEL_BYTES[:100])
            self.close_connection = True

        def route_stalled(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(MODEL_BYTES)))
            self.end_headers()
            self.wfile.write(MODEL_BYTES[:10])
            self.wfile.flush()
            server.release_stalled.wait(10)

        def route_huge_announced(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(10 * len(MODEL_BYTES)))
            self.end_headers()
            self.close_connection = True

        def route_huge_unannounced(self) -> None:
            self.send_response(200)  # no Content-Length: the body runs until the connection closes
            self.end_headers()
            self.wfile.write(MODEL_BYTES * 10)
            self.close_connection = True

        def route_flaky(self) -> None:
            if server.requests["/flaky.joblib"] <= 2:
                self.send_error(503)
            else:
                self.send_body(MODEL_BYTES)

        def route_always_503(self) -> None:
            self.send_error(503)

        def route_redirect(self) -> None:
            self.send_response(302)
            self.send_header("Location", "/private.joblib")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


@pytest.fixture
def http_server() -> Iterator[ArtifactServer]:
    yield from _serve_artifacts(tls=None)


@pytest.fixture
def https_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ArtifactServer, Path]]:
    """The same routes over TLS, with a self-signed certificate for 127.0.0.1; yields (server, certificate)."""
    certificate, key = _self_signed_certificate(tmp_path_factory.mktemp("tls"))
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certificate, key)
    for artifact_server in _serve_artifacts(tls):
        yield artifact_server, certificate


def _serve_artifacts(tls: ssl.SSLContext | None) -> Iterator[ArtifactServer]:
    artifact_server = ArtifactServer(base_url="")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(artifact_server))
    httpd.daemon_threads = True
    scheme = "http"
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    artifact_server.base_url = f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield artifact_server
    artifact_server.release_stalled.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = directory / "cert.pem", directory / "key.pem"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return certificate_path, key_path


# --- a real S3-compatible server process (moto) ---------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    bucket: str
    key: str
    reader_key_id: str
    reader_secret: str
    unprivileged_key_id: str
    unprivileged_secret: str

    def env(self, key_id: str, secret: str) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
        }

    @property
    def reader_env(self) -> dict[str, str]:
        return self.env(self.reader_key_id, self.reader_secret)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto in server mode on 127.0.0.1; IAM auth is enforced once the bucket and users are set up."""
    import boto3

    with running_moto(tmp_path_factory.mktemp("moto") / "moto.log") as endpoint:
        setup = {
            "endpoint_url": endpoint,
            "region_name": "us-east-1",
            "aws_access_key_id": "setup",
            "aws_secret_access_key": "setup",
        }
        iam = boto3.client("iam", **setup)
        reader = _user_with_key(iam, "model-reader", policy_actions=["s3:*"])
        unprivileged = _user_with_key(iam, "nobody", policy_actions=[])
        s3 = boto3.client("s3", **setup)
        s3.create_bucket(Bucket="models")
        s3.put_object(Bucket="models", Key="team/model.joblib", Body=MODEL_BYTES)
        # From now on every request must be signed by a known IAM key and allowed by its policy.
        enforce_auth = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"
        )
        urllib.request.urlopen(enforce_auth, timeout=10)
        yield S3Server(endpoint, "models", "team/model.joblib", *reader, *unprivileged)


def _user_with_key(iam, name: str, policy_actions: list[str]) -> tuple[str, str]:
    iam.create_user(UserName=name)
    if policy_actions:
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": policy_actions, "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="models", PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]
