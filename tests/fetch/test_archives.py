"""Directory artifacts: archives unpack completely or not at all, and hostile ones are refused by name."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from mlmodel_server.fetch.archives import ArchiveLimits, UnsafeArchive, archive_kind, safe_relative_path, unpack

MLFLOW_LAYOUT = {"MLmodel": b"flavors: {}\n", "model.pkl": b"\x80\x05N.", "code/util.py": b"x = 1\n"}


def make_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, data = member
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo("placeholder")
            info.filename = name  # as a hostile tool writes it: ZipInfo itself would strip a leading / or drive
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.endswith(".partial"))


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".zip"])
def test_an_archive_unpacks_into_the_directory_with_every_file(tmp_path: Path, suffix: str) -> None:
    source = tmp_path / f"model{suffix}"
    if suffix == ".zip":
        make_zip(source, MLFLOW_LAYOUT)
    else:
        make_tar(source, list(MLFLOW_LAYOUT.items()))
    target = tmp_path / "model"
    assert unpack(source, target) == 3
    assert tree(target) == MLFLOW_LAYOUT
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "rule"),
    [("/etc/passwd", "absolute"), ("../escape", r"\.\."), ("a/../../escape", r"\.\."), ("C:/x", "absolute")],
)
def test_a_member_outside_the_directory_is_refused(tmp_path: Path, name: str, rule: str) -> None:
    for source in (make_tar(tmp_path / "a.tar.gz", [(name, b"x")]), make_zip(tmp_path / "a.zip", {name: b"x"})):
        with pytest.raises(UnsafeArchive, match=rule):
            unpack(source, tmp_path / "out")
        assert not (tmp_path / "out").exists()
        assert not (tmp_path.parent / "escape").exists()
        assert leftovers(tmp_path) == []


@pytest.mark.parametrize("link_type", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_links_in_a_tar_are_refused(tmp_path: Path, link_type: bytes) -> None:
    link = tarfile.TarInfo("model.pkl")
    link.type = link_type
    link.linkname = "/etc/passwd"
    source = make_tar(tmp_path / "a.tar.gz", [("MLmodel", b"ok"), link])
    with pytest.raises(UnsafeArchive, match="is a link"):
        unpack(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert leftovers(tmp_path) == []


def test_a_symlink_in_a_zip_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "a.zip"
    with zipfile.ZipFile(source, "w") as archive:
        info = zipfile.ZipInfo("model.pkl")
        info.external_attr = (0o120777 << 16) | 0x20  # S_IFLNK, as `zip --symlinks` writes it
        archive.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchive, match="is a link"):
        unpack(source, tmp_path / "out")


def test_devices_and_fifos_are_refused(tmp_path: Path) -> None:
    fifo = tarfile.TarInfo("pipe")
    fifo.type = tarfile.FIFOTYPE
    with pytest.raises(UnsafeArchive, match="not a regular file"):
        unpack(make_tar(tmp_path / "a.tar.gz", [fifo]), tmp_path / "out")


def test_a_zip_bomb_is_stopped_by_the_ratio_cap_while_it_expands(tmp_path: Path) -> None:
    source = make_zip(tmp_path / "bomb.zip", {"model.pkl": b"\0" * (64 << 20)})
    assert source.stat().st_size < 1 << 20
    with pytest.raises(UnsafeArchive, match="expands more than 200 times"):
        unpack(source, tmp_path / "out")
    assert leftovers(tmp_path) == []


def test_a_tar_gz_bomb_is_stopped_by_the_ratio_of_the_whole_archive(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "bomb.tar.gz", [(f"part{i}", b"\0" * (8 << 20)) for i in range(8)])
    with pytest.raises(UnsafeArchive, match="expands more than 200 times its size"):
        unpack(source, tmp_path / "out")
    assert leftovers(tmp_path) == []


def test_the_total_size_cap_holds_even_when_headers_are_honest(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "big.tar.gz", [("a", b"1" * 1000), ("b", b"2" * 1000)])
    with pytest.raises(UnsafeArchive, match="more than 1500 bytes"):
        unpack(source, tmp_path / "out", ArchiveLimits(max_bytes=1500))


def test_the_file_count_cap(tmp_path: Path) -> None:
    source = make_zip(tmp_path / "many.zip", {f"f{i}": b"x" for i in range(11)})
    with pytest.raises(UnsafeArchive, match="more than 10 members"):
        unpack(source, tmp_path / "out", ArchiveLimits(max_files=10))


def test_a_member_twice_is_refused_rather_than_overwritten(tmp_path: Path) -> None:
    source = make_tar(tmp_path / "twice.tar.gz", [("model.pkl", b"good"), ("./model.pkl", b"evil")])
    with pytest.raises(UnsafeArchive, match="appears twice"):
        unpack(source, tmp_path / "out")


@pytest.mark.parametrize("content", [b"", b"not an archive at all", b"\x1f\x8b\x08\x00broken gzip"])
def test_a_corrupt_or_empty_archive_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    for name in ("a.tar.gz", "a.zip"):
        source = tmp_path / name
        source.write_bytes(content)
        with pytest.raises(UnsafeArchive, match=r"cannot read|empty"):
            unpack(source, tmp_path / "out")
        assert leftovers(tmp_path) == []


def test_an_empty_archive_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive, match="empty"):
        unpack(make_zip(tmp_path / "empty.zip", {}), tmp_path / "out")


def test_kinds_and_relative_paths() -> None:
    assert [archive_kind(n) for n in ("M.TAR.GZ", "m.tgz", "m.tar", "m.zip", "m.joblib")] == [
        "tar",
        "tar",
        "tar",
        "zip",
        None,
    ]
    assert str(safe_relative_path("./a//b/./c")) == "a/b/c"
    with pytest.raises(UnsafeArchive, match="target directory itself"):
        safe_relative_path("./")
    with pytest.raises(UnsafeArchive, match="NUL"):
        safe_relative_path("a\x00b")
