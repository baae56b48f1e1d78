"""Real MLflow, to write the MLflow model directories the server must read, in its own venv.

mlflow's dependencies do not fit the dev extra's pins, and the server image must not need it: the venv is created
once under a cache dir outside the repository, keyed by the Python version and the exact requirement list (as
bench/serving/venvs.py does), with this project's own model libraries so what MLflow writes loads here unchanged.
Models are written by `mlflow_writer.py` run with that venv's Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

MLFLOW_SKINNY_VERSION = "3.17.2"
PANDAS_VERSION = "3.1.1"  # mlflow's signatures and sklearn flavour import it; not a dependency of this project
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlmodel-operator" / "test-venvs"
WRITER = Path(__file__).with_name("mlflow_writer.py")
_MODEL_STACK = (
    "scikit-learn",
    "numpy",
    "scipy",
    "joblib",
    "cloudpickle",
    "skops",
    "xgboost-cpu",
    "lightgbm",
    "onnx",
    "onnxruntime",
)


def requirements() -> tuple[str, ...]:
    pins = tuple(f"{name}=={metadata.version(name)}" for name in _MODEL_STACK)
    return (f"mlflow-skinny=={MLFLOW_SKINNY_VERSION}", f"pandas=={PANDAS_VERSION}", *pins)


def venv_path() -> Path:
    key = hashlib.sha256("\n".join((sys.version.split()[0], *requirements())).encode()).hexdigest()[:12]
    return CACHE_ROOT / f"mlflow-{MLFLOW_SKINNY_VERSION}-{key}"


def ensure() -> Path:
    """The venv's Python, creating the venv when missing (a marker written last: a broken install is redone)."""
    path = venv_path()
    python = path / "bin" / "python"
    marker = path / ".complete"
    if marker.exists():
        return python
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements()], check=True)
    marker.write_text("\n".join(requirements()) + "\n")
    return python


def write_models(jobs: list[dict], workdir: Path) -> None:
    """Run mlflow_writer.py on `jobs` (see there) with real MLflow."""
    job_file = workdir / "mlflow-jobs.json"
    job_file.write_text(json.dumps(jobs))
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"file://{workdir / 'mlruns'}", "PYTHONNOUSERSITE": "1"}
    result = subprocess.run(
        [str(ensure()), str(WRITER), str(job_file)], capture_output=True, text=True, timeout=900, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
