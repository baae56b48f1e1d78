"""README's table of what can be served is generated from the contract's formats and the pinned versions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_formats_table_in_readme_is_fresh():
    result = subprocess.run(
        [sys.executable, str(REPO / "hack" / "formats_table.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_table_has_one_row_per_contract_format_naming_the_pinned_versions():
    import formats_table

    from mlmodel_contract import artifacts

    text = formats_table.table(formats_table.pins((REPO / "constraints.txt").read_text()))
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(artifacts.FORMATS)
    assert "{" not in text, "a {library} placeholder was left unfilled"
