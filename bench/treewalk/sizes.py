"""Installed size of a virtualenv's packages, and what stripping would save.

    VENV/bin/python bench/treewalk/sizes.py [--top 25]

Run with the venv's own Python: it reads every installed distribution's RECORD (the files pip installed)
and sums their sizes on disk, then what a slimmer image could drop: test folders, __pycache__ (the
server image sets PYTHONDONTWRITEBYTECODE but pip compiles at install), type stubs and C/C++ headers.
"""

from __future__ import annotations

import argparse
import sysconfig
from collections import defaultdict
from importlib import metadata
from pathlib import Path

MIB = 1024 * 1024


def strippable(path: Path) -> str | None:
    parts = set(path.parts)
    if "__pycache__" in parts:
        return "__pycache__"
    if parts & {"tests", "test", "testing"} and path.suffix in (".py", ".pyc", ".json", ".txt", ".csv", ".gz", ""):
        return "tests"
    if path.suffix in (".h", ".hpp", ".pxd", ".pyx", ".c", ".cpp", ".pyi"):
        return "headers, stubs, sources"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    site = Path(sysconfig.get_paths()["purelib"])
    sizes: dict[str, int] = {}
    savings: dict[str, int] = defaultdict(int)
    counted: set[Path] = set()
    for dist in metadata.distributions():
        total = 0
        for file in dist.files or []:
            path = (site / file).resolve()
            if path in counted or not path.is_file():
                continue
            counted.add(path)
            size = path.stat().st_size
            total += size
            kind = strippable(Path(str(file)))
            if kind:
                savings[kind] += size
        sizes[f"{dist.metadata['Name']} {dist.version}"] = total
    whole = sum(path.stat().st_size for path in site.rglob("*") if path.is_file())
    print(
        f"site-packages: {whole / MIB:.1f} MiB in {len(sizes)} distributions (by RECORD {sum(sizes.values()) / MIB:.1f})"
    )
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[: args.top]:
        print(f"  {size / MIB:7.1f} MiB  {name}")
    for kind, size in sorted(savings.items(), key=lambda item: -item[1]):
        print(f"  strippable {kind}: {size / MIB:.1f} MiB")


if __name__ == "__main__":
    main()
