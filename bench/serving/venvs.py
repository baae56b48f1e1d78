"""One virtualenv per anchor server, created once under a cache dir outside the repository.

A venv's directory name ends with a key derived from the Python version and its exact requirement
list, so a changed pin gets a new venv and an unchanged one is reused as it is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlmodel-operator" / "bench-venvs"

MLSERVER_VERSION = "1.7.1"
KSERVE_VERSION = "0.21.0"
# MLServer 1.7.1's inference-pool workers call asyncio.get_event_loop() outside a running loop,
# which uvloop >= 0.22 refuses ("There is no current event loop"): the workers die at start.
MLSERVER_EXTRA_PINS = ("uvloop==0.21.0",)
# mlserver-xgboost 1.7.1 requires `xgboost[scikit-learn]`, unpinned: the `xgboost` distribution, the CUDA build
# (with NCCL, several hundred MB). It is installed without its dependencies over xgboost-cpu, the CPU-only
# build of the same library at the project's version, which provides the same `xgboost` module; its other
# requirements (mlserver, scikit-learn) are in the venv already.
MLSERVER_NO_DEPS = (f"mlserver-xgboost=={MLSERVER_VERSION}",)


@dataclass(frozen=True)
class VenvSpec:
    name: str
    requirements: tuple[str, ...]
    no_deps: tuple[str, ...] = ()  # installed after the requirements, without their own dependencies

    @property
    def lines(self) -> tuple[str, ...]:
        return (*self.requirements, *(f"--no-deps {r}" for r in self.no_deps))

    @property
    def key(self) -> str:
        text = "\n".join((sys.version.split()[0], *self.lines))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return CACHE_ROOT / f"{self.name}-{self.key}"

    def bin(self, program: str) -> Path:
        return self.path / "bin" / program


def project_pins(*names: str) -> tuple[str, ...]:
    """name==version as installed in the project's own venv (the one the benchmark runs in)."""
    return tuple(f"{name}=={metadata.version(name)}" for name in names)


def model_stack_pins() -> tuple[str, ...]:
    """The project's own scikit-learn, numpy and joblib, so every venv unpickles the same model files."""
    return project_pins("scikit-learn", "numpy", "joblib")


def booster_pins() -> tuple[str, ...]:
    """The project's own XGBoost (the CPU-only build) and LightGBM, so every venv predicts with the same code."""
    return project_pins("xgboost-cpu", "lightgbm")


def anchor_specs() -> dict[str, VenvSpec]:
    pins = model_stack_pins()
    web = project_pins("flask", "gunicorn", "granian")
    mlserver = (
        f"mlserver=={MLSERVER_VERSION}",
        f"mlserver-sklearn=={MLSERVER_VERSION}",
        f"mlserver-lightgbm=={MLSERVER_VERSION}",
        *MLSERVER_EXTRA_PINS,
    )
    return {
        "classic": VenvSpec("classic", (*web, *pins)),
        "mlserver": VenvSpec("mlserver", (*mlserver, *pins, *booster_pins()), no_deps=MLSERVER_NO_DEPS),
        "kserve": VenvSpec("kserve", (f"kserve=={KSERVE_VERSION}", *pins, *booster_pins())),
    }


def ensure(spec: VenvSpec) -> Path:
    """Create the venv when missing. A marker file is written last, so a venv whose install failed
    or was interrupted is removed and made again rather than reused (venvs cannot be renamed)."""
    marker = spec.path / ".bench-complete"
    if marker.exists():
        return spec.path
    shutil.rmtree(spec.path, ignore_errors=True)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[venv] creating {spec.path} ({'; '.join(spec.lines)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(spec.path)], check=True)
    pip = [str(spec.bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *spec.requirements], check=True)
    if spec.no_deps:
        subprocess.run([*pip, "--no-deps", *spec.no_deps], check=True)
    marker.write_text("\n".join(spec.lines) + "\n")
    return spec.path


def installed_versions(spec: VenvSpec, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib import metadata\n"
        "print(json.dumps({p: metadata.version(p) for p in sys.argv[1:]}))"
    )
    out = subprocess.run([str(spec.bin("python")), "-c", code, *packages], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)
