"""Constants shared by the fetch tests and their fixtures."""

import hashlib
import sys
from pathlib import Path

VENV_BIN = Path(sys.executable).parent
MODEL_BYTES = b"not really a model, but bytes with a known digest\n" * 100
MODEL_SHA256 = hashlib.sha256(MODEL_BYTES).hexdigest()
AUTH_TOKEN = "Bearer s3cr3t-t0ken-do-not-print"
