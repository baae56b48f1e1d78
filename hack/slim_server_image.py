"""Removes from the server image what `mlmodel-server` never reads at run time, and says what each step saved.

Run by Dockerfile.server's final stage, with the image's own python, right after the install (stdlib only); its
lines go to stderr, so `hack/images.sh` shows them during the build.
Each step is safe on its own and checked by tests/images (every format's runtime imports, an s3:// fetch
through the trimmed botocore, the size bound):

- test suites: the `tests`/`test` folders inside installed packages (numpy, scipy, scikit-learn, joblib,
  skops, ...). Only each library's own test runner (`numpy.test()`, `scipy.test()`) reads them; `testing`
  modules (numpy.testing, xgboost.testing) stay.
- type stubs (`*.pyi`): read by type checkers, never by the interpreter.
- botocore's service models other than the ones an s3:// fetch can reach: `s3` itself, `sts` (assume-role
  and web identity, e.g. IRSA), `sso`/`sso-oidc` and `signin` (the SSO and login credential providers of a
  mounted AWS config). The endpoint and partition data next to them stay, so regions and endpoints resolve.
- onnxruntime's offline tools (`transformers`, `quantization`, `tools`): model optimisers and converters
  run by hand; `onnxruntime.InferenceSession` imports none of them.
- onnxruntime's C library (`capi/libonnxruntime.so.*`), shipped for programs that use the C API: the Python
  binding has the runtime linked in (it does not load that file; readelf shows no such NEEDED entry).
- the installers (pip, setuptools, wheel): nothing installs at run time, and no installed package imports
  them. Debian's packaged pip (the local base) is purged with dpkg, a pip-installed one uninstalls itself.

Byte-code caches stay: with a read-only root filesystem Python could not write them, and every start would
compile scikit-learn and scipy again.
"""

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

TEST_FOLDERS = frozenset({"tests", "test"})
BOTOCORE_SERVICES = frozenset({"s3", "sts", "sso", "sso-oidc", "signin"})
ONNXRUNTIME_TOOLS = ("transformers", "quantization", "tools")
INSTALLERS = ("pip", "setuptools", "wheel")
DEBIAN_INSTALLERS = ("python3-pip", "python3-setuptools", "python3-wheel", "python3-pkg-resources")


def package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"slim_server_image: {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir() or p.is_symlink())


def remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def test_suites(site: Path) -> Iterator[Path]:
    for package in sorted(p for p in site.iterdir() if p.is_dir() and not p.name.endswith((".dist-info", ".libs"))):
        found: list[Path] = []
        for folder in sorted(package.rglob("*")):
            if folder.is_dir() and folder.name in TEST_FOLDERS and not any(f in folder.parents for f in found):
                found.append(folder)
        yield from found


def type_stubs(site: Path) -> Iterator[Path]:
    yield from sorted(site.rglob("*.pyi"))


def botocore_models(site: Path) -> Iterator[Path]:
    data = site / "botocore" / "data"
    yield from sorted(p for p in data.iterdir() if p.is_dir() and p.name not in BOTOCORE_SERVICES)


def onnxruntime_tools(site: Path) -> Iterator[Path]:
    yield from (site / "onnxruntime" / name for name in ONNXRUNTIME_TOOLS if (site / "onnxruntime" / name).is_dir())


def onnxruntime_c_library(site: Path) -> Iterator[Path]:
    yield from sorted((site / "onnxruntime" / "capi").glob("libonnxruntime.so*"))


def installed_bytes(roots: list[Path]) -> int:
    return sum(size(root) for root in roots if root.exists())


def remove_installers() -> None:
    debian = [name for name in DEBIAN_INSTALLERS if _dpkg_installed(name)]
    if debian:
        subprocess.run(["dpkg", "--purge", *debian], check=True, stdout=subprocess.DEVNULL)
    present = [name for name in INSTALLERS if importlib.util.find_spec(name) is not None]
    if present:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *present], check=True)


def _dpkg_installed(name: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    status = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${db:Status-Status}", name], capture_output=True, text=True
    )
    return status.returncode == 0 and status.stdout == "installed"


def main() -> None:
    site = package_folder("mlmodel_server").parent
    steps: list[tuple[str, Callable[[Path], Iterator[Path]]]] = [
        ("test suites", test_suites),
        ("type stubs", type_stubs),
        ("botocore service models", botocore_models),
        ("onnxruntime tools", onnxruntime_tools),
        ("onnxruntime C library", onnxruntime_c_library),
    ]
    for label, find in steps:
        found = list(find(site))
        saved = sum(size(p) for p in found)
        remove(found)
        print(f"slim: {label}: {len(found)} removed, {saved / 1e6:.1f} MB", file=sys.stderr)
    python_roots = [Path(p) for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    before = installed_bytes(python_roots)
    remove_installers()
    importlib.invalidate_caches()
    print(f"slim: installers: {(before - installed_bytes(python_roots)) / 1e6:.1f} MB", file=sys.stderr)
    if importlib.util.find_spec("pip") is not None:
        raise SystemExit("slim_server_image: pip is still installed")


if __name__ == "__main__":
    main()
