"""README.md's MLModel field reference is generated from the CRD and must match it."""

import subprocess
import sys

from operator_cases import REPO


def test_the_readme_reference_matches_the_crd():
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "crd_reference.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
