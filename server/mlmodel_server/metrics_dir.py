"""The multiprocess metrics directory, prepared before prometheus_client is first imported."""

import os
from pathlib import Path

from mlmodel_contract.pod import PROMETHEUS_MULTIPROC_DIR_ENV


def prepare_multiprocess_dir(path: str) -> None:
    """Start without the files of a previous master, which would otherwise be summed in.

    Only prometheus_client's own `*.db` files are removed: the variable might point somewhere shared.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[PROMETHEUS_MULTIPROC_DIR_ENV] = str(directory)
