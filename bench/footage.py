"""Where the benchmarks find their footage: the shared set that `../shared/footage/fetch.sh`
downloads (see ../shared/footage/README.md), fetched into `.vcurate/footage` or `/tmp/footage`.

Imported by the benches (`from bench.footage import ...`); standard library only, so that
bench/throughput.py can still start where the project is not installed.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path

FETCH_HINT = "bash ../shared/footage/fetch.sh .vcurate/footage all"
# Every suffix a bench reads as a video when it lists a folder.
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".webm", ".avi", ".mkv", ".mpeg", ".mpg", ".ogv", ".ts"})


def footage_dirs(root: Path | None = None) -> tuple[Path, ...]:
    """Where fetched footage is looked for, in order: `root`/.vcurate/footage (`root` defaults to
    the working directory), then /tmp/footage."""
    return ((root or Path(".")) / ".vcurate" / "footage", Path("/tmp/footage"))


def find_footage(given: Path | None = None, root: Path | None = None) -> Path | None:
    """`given` (a --footage argument) when set, else the first of `footage_dirs(root)` that
    exists, else None."""
    if given is not None:
        return given
    return next((d for d in footage_dirs(root) if d.is_dir()), None)


def require_footage(given: Path | None = None) -> Path:
    """`find_footage(given)`, or exit saying how to fetch the footage."""
    footage = find_footage(given)
    if footage is None:
        sys.exit(f"no footage: run `{FETCH_HINT}` first")
    return footage


def list_videos(folder: Path, suffixes: Collection[str] = VIDEO_SUFFIXES) -> list[Path]:
    """The files directly in `folder` whose suffix (lower-cased) is in `suffixes`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
