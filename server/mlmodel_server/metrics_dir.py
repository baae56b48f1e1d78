"""The multiprocess metrics directory, prepared before prometheus_client is first imported."""

import os
import shutil
from pathlib import Path


def prepare_multiprocess_dir(path: str) -> None:
    """Start from an empty directory: files of a previous master would otherwise be summed in."""
    directory = Path(path)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
