"""The committed files made by a generator: written by running it, compared with `--check` (tests, CI)."""

from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(path: Path, text: str, argv: list[str], regenerate: str) -> int:
    """Write `text` to `path`; with --check in `argv` only compare, and say how to regenerate when stale."""
    if "--check" in argv:
        if not path.exists() or path.read_text() != text:
            print(f"{path} is stale; run {regenerate}", file=sys.stderr)
            return 1
        return 0
    path.write_text(text)
    return 0
