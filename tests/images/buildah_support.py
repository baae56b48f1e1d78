"""Build the two images with hack/images.sh and run them with buildah (chroot isolation, host network),
optionally with the root filesystem read-only, as the pod's readOnlyRootFilesystem makes it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGES_SH = REPO / "hack" / "images.sh"
SERVER_IMAGE = os.environ.get("MLMODEL_SERVER_IMAGE", "localhost/mlmodel-server:dev")
OPERATOR_IMAGE = os.environ.get("MLMODEL_OPERATOR_IMAGE", "localhost/mlmodel-operator:dev")
BUILD_TIMEOUT_SECONDS = 2400

# In a private mount namespace, bind the container's root filesystem onto itself read-only, then let
# buildah run the command: buildah bind-mounts that (now read-only) tree as the container's /, and
# mounts the volumes (the pod's emptyDirs) writable on top. One exception: buildah 1.28 deletes its own
# /run/.containerenv mount point when the command ends (on a read-only /run it panics and loses the exit
# code), so /run is a scratch copy of the image's /run, and scratch_untouched() checks that the command
# wrote nothing there.
READ_ONLY_ROOT = (
    'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && mount --bind "$2" "$1/run" && shift 2 && exec "$@"'
)


def listing(root: Path) -> dict[str, tuple[int, int, int, int]]:
    return {
        str(p.relative_to(root)): (p.lstat().st_mode, p.lstat().st_uid, p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


def build_images() -> str:
    """hack/images.sh all: the same script as `make images`, so a second run only checks its inputs."""
    try:
        result = subprocess.run(
            [str(IMAGES_SH), "all"],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.fail(f"hack/images.sh could not build the images: {error}", pytrace=False)
    if result.returncode != 0:
        pytest.fail(
            f"hack/images.sh failed (exit {result.returncode}); buildah must work here:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}",
            pytrace=False,
        )
    return result.stderr + result.stdout


def buildah(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """buildah on the storage hack/images.sh builds into."""
    result = subprocess.run(
        [str(IMAGES_SH), "buildah", *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if check and result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def image_config(image: str) -> dict:
    return json.loads(buildah("inspect", "--type", "image", image).stdout)["OCIv1"]["config"]


@dataclass
class Volume:
    host: Path
    target: str
    read_only: bool = False

    def option(self) -> str:
        return f"{self.host}:{self.target}" + (":ro" if self.read_only else "")


@dataclass
class WorkingContainer:
    """A buildah working container of an image; every run starts from the image's own filesystem."""

    image: str
    name: str = field(default_factory=lambda: f"mlmodel-test-{uuid.uuid4().hex[:10]}")
    started: list[subprocess.Popen] = field(default_factory=list)
    scratch: list[tuple[Path, dict]] = field(default_factory=list)

    def create(self) -> WorkingContainer:
        buildah("from", "--pull=never", "--quiet", "--name", self.name, self.image)
        return self

    def rootfs(self) -> Path:
        return Path(buildah("mount", self.name).stdout.strip())

    def argv(
        self,
        command: list[str],
        env: dict[str, str] | None = None,
        volumes: list[Volume] = (),
        user: str | None = None,
        read_only: bool = False,
    ) -> list[str]:
        run = [str(IMAGES_SH), "buildah", "run", "--isolation", "chroot", "--network", "host"]
        for key, value in (env or {}).items():
            run += ["--env", f"{key}={value}"]
        for volume in volumes:
            run += ["--volume", volume.option()]
        if user is not None:
            run += ["--user", user]
        run += [self.name, "--", *command]
        if not read_only:
            return run
        root = self.rootfs()
        run_dir = Path(tempfile.mkdtemp(prefix="mlmodel-run-"))
        subprocess.run(["cp", "-a", f"{root}/run/.", str(run_dir)], check=True)
        (run_dir / ".containerenv").touch()  # buildah's mount point for its own file
        self.scratch.append((run_dir, listing(run_dir)))
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            READ_ONLY_ROOT,
            "sh",
            str(root),
            str(run_dir),
            *run,
        ]

    def scratch_untouched(self) -> None:
        """Nothing but buildah's own /run/.containerenv changed in the scratch /run of a read-only run."""
        for run_dir, before in self.scratch:
            after = listing(run_dir)
            before.pop(".containerenv", None)
            after.pop(".containerenv", None)
            assert after == before, f"the container wrote to /run: {sorted(set(after.items()) ^ set(before.items()))}"

    def run(self, command: list[str], timeout: float = 120, **options) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.argv(command, **options), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )

    def start(self, command: list[str], log_path: Path, **options) -> subprocess.Popen:
        """In the background, in a process group of its own (buildah, its chroot helpers, the process)."""
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                self.argv(command, **options),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def remove(self) -> None:
        for process in self.started:
            stop(process)
        buildah("umount", self.name, check=False)
        buildah("rm", self.name, check=False)
        for run_dir, _ in self.scratch:
            shutil.rmtree(run_dir, ignore_errors=True)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def container_process(process: subprocess.Popen) -> int | None:
    """The container's own process (its PID 1 in a pod): the child of buildah's chroot helper
    buildah-chroot-exec, found among the descendants of the buildah we started."""
    tree, pending = _children(), [process.pid]
    while pending:
        pid = pending.pop()
        try:
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if argv0.endswith(b"buildah-chroot-exec"):
            return (tree.get(pid) or [None])[0]
        pending.extend(tree.get(pid, []))
    return None


def stop(process: subprocess.Popen, grace_seconds: float = 30) -> int | None:
    """As the kubelet stops a container: SIGTERM to the container's process (buildah itself would SIGKILL
    it), then, after the grace period, SIGKILL to the whole process group this test started."""
    if process.poll() is None:
        pid = container_process(process)
        try:
            if pid is not None:
                os.kill(pid, signal.SIGTERM)
            process.wait(grace_seconds)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(10)
    return process.returncode


def assert_exited_cleanly(code: int | None, log: Path, container: WorkingContainer, what: str) -> None:
    """After `stop`: exit 0 on SIGTERM, no traceback in the log, nothing written to the scratch /run."""
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-6000:]
    assert code == 0, f"the {what} exited {code} after SIGTERM:\n{text[-4000:]}"
    container.scratch_untouched()


def writable_dir(path: Path, uid: int) -> Path:
    """An emptyDir as the kubelet makes it for a pod with fsGroup: owned by the pod's group, writable."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, uid, uid)
    path.chmod(0o2775)
    return path
