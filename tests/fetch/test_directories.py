"""Directory artifacts through the real fetch command: archives over file://, http:// and s3:// (the moto server),
hostile archives refused, s3 prefixes with their manifest digest, and a failed fetch never replacing a model."""

import hashlib
import io
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest

from mlmodel_contract.artifacts import tree_manifest
from mlmodel_server.model_dirs import tree_sha256

MODEL = b"\x80\x04not a real pickle, but a model file by its name\n" * 50
README = b"what this model is\n"


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(("suffix", "pack"), [(".tar.gz", tar_gz), (".tgz", tar_gz), (".zip", zipped)])
def test_an_archive_lands_as_a_directory_with_its_digest(run_fetch, tmp_path, suffix, pack):
    data = pack({"my-model/model.joblib": MODEL, "my-model/README": README})
    archive = write(tmp_path / f"m{suffix}", data)

    result = run_fetch("--uri", f"file://{archive}", "--sha256", sha(data))

    assert result.exit_code == 0, result.stderr
    assert (result.dest / "model" / "my-model" / "model.joblib").read_bytes() == MODEL
    metadata = result.metadata
    assert metadata["file"] == "model" and metadata["format"] == "joblib" and metadata["verified"] is True
    assert metadata["sha256"] == sha(data) and metadata["size"] == len(data)
    assert metadata["tree_sha256"] == tree_sha256(result.dest / "model")
    assert sorted(p.name for p in result.dest.iterdir()) == ["model", "model.json"]  # no archive left behind


@pytest.fixture
def static_http(tmp_path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on 127.0.0.1 serving a directory as static files: (base URL, directory)."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    root = tmp_path / "served"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_an_archive_over_http(run_fetch, static_http):
    base_url, root = static_http
    data = tar_gz({"model.skops": MODEL})
    write(root / "m.tar.gz", data)
    result = run_fetch("--uri", f"{base_url}/m.tar.gz", "--sha256", sha(data))

    assert result.exit_code == 0, result.stderr
    assert result.metadata["format"] == "skops"
    assert (result.dest / "model" / "model.skops").read_bytes() == MODEL


def test_a_wrong_archive_digest_is_refused_before_unpacking(run_fetch, tmp_path):
    data = tar_gz({"model.joblib": MODEL})
    archive = write(tmp_path / "m.tar.gz", data)

    result = run_fetch("--uri", f"file://{archive}", "--sha256", "0" * 64)

    assert result.exit_code == 10
    assert result.termination_message.startswith("sha256 mismatch: expected 000")
    assert not (result.dest / "model").exists()
    assert [p.name for p in result.dest.iterdir()] == []


def bomb() -> bytes:
    return tar_gz({"model.joblib": b"\0" * (8 << 20)})  # 8 MiB of zeros: gzip makes it ~8 KiB


def escaping() -> bytes:
    return tar_gz({"../outside.joblib": MODEL})


def absolute() -> bytes:
    return zipped({"/etc/model.joblib": MODEL})


def symlinked() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        link = tarfile.TarInfo("model.joblib")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    return buffer.getvalue()


def no_model() -> bytes:
    return tar_gz({"README": README, "notes.txt": README})


def two_models() -> bytes:
    return tar_gz({"a.joblib": MODEL, "b.onnx": MODEL})


def not_an_archive() -> bytes:
    return b"this is not gzip at all" * 10


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (bomb, "expands more than 200 times"),
        (escaping, "leaves the target directory"),
        (absolute, "has an absolute path"),
        (symlinked, "is a link"),
        (no_model, "found none"),
        (two_models, "found a.joblib, b.onnx"),
        (not_an_archive, "cannot read"),
    ],
    ids=["bomb", "path-escape", "absolute-path", "symlink", "no-model", "two-models", "not-an-archive"],
)
def test_a_hostile_or_broken_archive_is_refused_and_the_working_model_stays(run_fetch, tmp_path, make, message):
    good = tar_gz({"model.joblib": MODEL})
    write(tmp_path / "good.tar.gz", good)
    assert run_fetch("--uri", f"file://{tmp_path / 'good.tar.gz'}", "--sha256", sha(good)).exit_code == 0
    data = make()
    archive = write(tmp_path / ("bad.zip" if data.startswith(b"PK") else "bad.tar.gz"), data)

    result = run_fetch("--uri", f"file://{archive}", "--sha256", sha(data))

    assert result.exit_code == 17, result.stderr
    assert message in result.termination_message
    assert (result.dest / "model" / "model.joblib").read_bytes() == MODEL  # the working model is still there
    assert not (tmp_path / "outside.joblib").exists()
    assert sorted(p.name for p in result.dest.iterdir()) == ["model"]  # its old claim withdrawn, nothing half-made


def test_an_unchanged_directory_is_reused_and_a_changed_one_fetched_again(run_fetch, tmp_path):
    data = tar_gz({"model.joblib": MODEL})
    archive = write(tmp_path / "m.tar.gz", data)
    assert run_fetch("--uri", f"file://{archive}", "--sha256", sha(data)).exit_code == 0

    again = run_fetch("--uri", f"file://{archive}", "--sha256", sha(data))
    assert again.exit_code == 0 and again.logged("reused verified artifact")

    (again.dest / "model" / "model.joblib").write_bytes(b"tampered")
    third = run_fetch("--uri", f"file://{archive}", "--sha256", sha(data))
    assert third.exit_code == 0 and not third.logged("reused verified artifact")
    assert (third.dest / "model" / "model.joblib").read_bytes() == MODEL


def test_a_single_file_after_a_directory_replaces_it(run_fetch, tmp_path):
    data = tar_gz({"model.joblib": MODEL})
    write(tmp_path / "m.tar.gz", data)
    assert run_fetch("--uri", f"file://{tmp_path / 'm.tar.gz'}", "--sha256", sha(data)).exit_code == 0
    write(tmp_path / "single.joblib", MODEL)

    result = run_fetch("--uri", f"file://{tmp_path / 'single.joblib'}", "--sha256", sha(MODEL))

    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in result.dest.iterdir()) == ["model.joblib", "model.json"]


def test_format_mlflow_needs_a_directory(run_fetch, tmp_path):
    write(tmp_path / "m.joblib", MODEL)
    result = run_fetch("--uri", f"file://{tmp_path / 'm.joblib'}", "--format", "mlflow")
    assert result.exit_code == 2
    assert "format mlflow is a directory" in result.termination_message


# --- s3 ---------------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_server):
    env = s3_server.reader_env
    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def put_all(s3, prefix: str, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        s3.put_object(Bucket="models", Key=prefix + key, Body=data)


PREFIX_OBJECTS = {"MLmodel.txt": README, "model.joblib": MODEL, "extra/notes": README, "b/é.txt": README}


def prefix_digest(objects: dict[str, bytes]) -> str:
    return sha(tree_manifest({key: sha(data) for key, data in objects.items()}).encode())


def test_an_s3_prefix_lands_every_object_with_the_manifest_digest(run_fetch, s3_server, s3):
    put_all(s3, "prefix-good/", PREFIX_OBJECTS)
    s3.put_object(Bucket="models", Key="prefix-good/empty-folder/", Body=b"")  # a console's folder marker
    s3.put_object(Bucket="models", Key="prefix-good-sibling/model.onnx", Body=MODEL)  # not under the prefix
    digest = prefix_digest(PREFIX_OBJECTS)

    result = run_fetch("--uri", "s3://models/prefix-good/", "--sha256", digest, env=s3_server.reader_env)

    assert result.exit_code == 0, result.stderr
    landed = result.dest / "model"
    assert {p.relative_to(landed).as_posix() for p in landed.rglob("*") if p.is_file()} == set(PREFIX_OBJECTS)
    assert result.metadata["sha256"] == digest == result.metadata["tree_sha256"]
    assert result.metadata["format"] == "joblib" and result.metadata["size"] == sum(map(len, PREFIX_OBJECTS.values()))


def test_the_prefix_digest_is_what_sha256sum_gives_for_the_directory(tmp_path):
    """The documented way to compute it: sha256sum over the files, in byte order of their paths, then sha256sum."""
    for key, data in PREFIX_OBJECTS.items():
        write(tmp_path / "d" / key, data)
    script = "cd d && find . -type f -printf '%P\\n' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum"
    shell = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert shell.stdout.split()[0] == prefix_digest(PREFIX_OBJECTS) == tree_sha256(tmp_path / "d")


def test_a_wrong_prefix_digest_is_refused_and_nothing_lands(run_fetch, s3_server, s3):
    put_all(s3, "prefix-wrong/", PREFIX_OBJECTS)

    result = run_fetch("--uri", "s3://models/prefix-wrong/", "--sha256", "f" * 64, env=s3_server.reader_env)

    assert result.exit_code == 10
    assert f"got {prefix_digest(PREFIX_OBJECTS)} for the manifest of the 4 objects" in result.termination_message
    assert not (result.dest / "model").exists() and list(result.dest.iterdir()) == []


def test_an_empty_prefix_is_not_found(run_fetch, s3_server):
    result = run_fetch("--uri", "s3://models/nothing-here/", env=s3_server.reader_env)
    assert result.exit_code == 11
    assert "no objects under s3://models/nothing-here/" in result.termination_message


def test_a_prefix_over_the_byte_cap_is_refused_before_downloading(run_fetch, s3_server, s3):
    put_all(s3, "prefix-big/", {"model.joblib": MODEL, "more": MODEL})
    result = run_fetch("--uri", "s3://models/prefix-big/", "--max-bytes", str(len(MODEL) + 1), env=s3_server.reader_env)
    assert result.exit_code == 15
    assert f"add up to {2 * len(MODEL)} bytes" in result.termination_message


@pytest.mark.parametrize(("key", "message"), [("a//model.joblib", "not a plain relative path"), ("../x", "(..)")])
def test_a_key_that_would_escape_or_alias_is_refused(run_fetch, s3_server, s3, key, message):
    prefix = f"prefix-{sha(key.encode())[:8]}/"
    put_all(s3, prefix, {"model.joblib": MODEL, key: MODEL})
    result = run_fetch("--uri", f"s3://models/{prefix}", env=s3_server.reader_env)
    assert result.exit_code == 17, result.stderr
    assert message in result.termination_message


def test_an_archive_over_s3(run_fetch, s3_server, s3):
    data = zipped({"model.onnx": MODEL})
    s3.put_object(Bucket="models", Key="archives/m.zip", Body=data)
    result = run_fetch("--uri", "s3://models/archives/m.zip", "--sha256", sha(data), env=s3_server.reader_env)
    assert result.exit_code == 0, result.stderr
    assert result.metadata["format"] == "onnx" and (result.dest / "model" / "model.onnx").read_bytes() == MODEL


def test_an_mlflow_model_under_an_s3_prefix_is_fetched_and_served(run_fetch, s3_server, s3, tmp_path):
    """End to end: real MLflow writes the directory, each of its files becomes an object under a prefix, the
    prefix's manifest digest pins it, and the real server (without mlflow) answers what the estimator answers."""
    import joblib
    import numpy as np
    import requests
    from mlflow_venv import write_models
    from sklearn.linear_model import LogisticRegression

    from server import serve_harness

    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 3))
    model = LogisticRegression().fit(X, (X[:, 0] + X[:, 1] > 0).astype(int))
    joblib.dump(model, tmp_path / "model.joblib")
    np.save(tmp_path / "example.npy", X[:5])
    job = {"flavour": "sklearn", "model": str(tmp_path / "model.joblib"), "out": str(tmp_path / "mlflow-model")}
    write_models([{**job, "example": str(tmp_path / "example.npy"), "columns": ["x", "y", "z"]}], tmp_path)
    written = {
        p.relative_to(tmp_path / "mlflow-model").as_posix(): p.read_bytes()
        for p in (tmp_path / "mlflow-model").rglob("*")
        if p.is_file()
    }
    put_all(s3, "mlflow/churn/", written)

    fetched = run_fetch(
        "--uri", "s3://models/mlflow/churn/", "--sha256", prefix_digest(written), env=s3_server.reader_env
    )
    assert fetched.exit_code == 0, fetched.stderr
    assert fetched.metadata["format"] == "mlflow"

    server = serve_harness.start(tmp_path / "run", fetched.dest, "--name", "churn")
    try:
        rows = rng.normal(size=(7, 3))
        body = requests.post(server.url + "/predict", json={"instances": rows.tolist()}, timeout=10).json()
        assert body["prediction"] == model.predict(rows).tolist()
        named = requests.post(server.url + "/predict", json={"features": {"z": 0.5, "y": -1.0, "x": 2.0}}, timeout=10)
        assert named.json()["prediction"] == model.predict(np.array([[2.0, -1.0, 0.5]])).tolist()[0]
    finally:
        server.stop()
