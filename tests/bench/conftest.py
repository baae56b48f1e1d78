"""The serving benchmark's modules import one another by their bare names, as bench/serving/run.py runs them."""

import sys
from pathlib import Path

SERVING = Path(__file__).resolve().parents[2] / "bench" / "serving"
if str(SERVING) not in sys.path:
    sys.path.insert(0, str(SERVING))
