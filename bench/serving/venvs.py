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


@dataclass(frozen=True)
class VenvSpec:
    name: str
    requirements: tuple[str, ...]

    @property
    def key(self) -> str:
        text = "\n".join((sys.version.split()[0], *self.requirements))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def path(self) -> Path:
        return CACHE_ROOT / f"{self.name}-{self.key}"

    def bin(self, program: str) -> Path:
        return self.path / "bin" / program


def model_stack_pins() -> tuple[str, ...]:
    """The project's own scikit-learn, numpy and joblib, so every venv unpickles the same model files."""
    return tuple(f"{name}=={metadata.version(name)}" for name in ("scikit-learn", "numpy", "joblib"))


def anchor_specs() -> dict[str, VenvSpec]:
    pins = model_stack_pins()
    web = tuple(f"{name}=={metadata.version(name)}" for name in ("flask", "gunicorn", "granian"))
    mlserver = (f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}", *MLSERVER_EXTRA_PINS)
    return {
        "classic": VenvSpec("classic", (*web, *pins)),
        "mlserver": VenvSpec("mlserver", (*mlserver, *pins)),
        "kserve": VenvSpec("kserve", (f"kserve=={KSERVE_VERSION}", *pins)),
    }


def ensure(spec: VenvSpec) -> Path:
    """Create the venv when missing. A marker file is written last, so a venv whose install failed
    or was interrupted is removed and made again rather than reused (venvs cannot be renamed)."""
    marker = spec.path / ".bench-complete"
    if marker.exists():
        return spec.path
    shutil.rmtree(spec.path, ignore_errors=True)
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    print(f"[venv] creating {spec.path} ({' '.join(spec.requirements)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(spec.path)], check=True)
    pip = [str(spec.bin("python")), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *spec.requirements], check=True)
    marker.write_text("\n".join(spec.requirements) + "\n")
    return spec.path


def installed_versions(spec: VenvSpec, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib import metadata\n"
        "print(json.dumps({p: metadata.version(p) for p in sys.argv[1:]}))"
    )
    out = subprocess.run([str(spec.bin("python")), "-c", code, *packages], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)
