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


def write_or_check_section(path: Path, begin: str, end: str, section: str, argv: list[str], regenerate: str) -> int:
    """`write_or_check` for the part of `path` from the line `begin` to the line `end`; `section` includes both."""
    text = path.read_text()
    if begin not in text or end not in text:
        print(f"{path.name} lacks the markers {begin!r} ... {end!r}", file=sys.stderr)
        return 1
    before, rest = text.split(begin, 1)
    after = rest.split(end, 1)[1]
    return write_or_check(path, before + section + after, argv, regenerate)
