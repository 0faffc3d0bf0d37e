"""The README is the front door and the docs stay true: size, cited paths, links, commands.

No network, no lakeFS, no Dagster: these read text files only.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
MAX_README_LINES = 250

# A cited path starts with a top-level folder, or is one of the top-level files.
TOP_FOLDERS = (
    "orchestration", "assets", "resources", "quality_checks", "media", "tests", "bench", "docs",
    "lakefs-server", "data", r"\.ci", r"\.vcurate",
)
TOP_FILES = (r"pyproject\.toml", r"sources\.yaml", r"optout\.yaml", r"workspace\.yaml", r"\.env")
# Not preceded by a word, a dot, a slash or a colon: `../x`, `a/b/assets/x` and `s3://x` are
# not repository-relative paths.
_START = r"(?<![\w./~:-])(?:\./)?"
FOLDER_PATH = re.compile(_START + r"((?:" + "|".join(TOP_FOLDERS) + r")/[^\s`'\"()\[\]|,;]*)")
TOP_FILE = re.compile(_START + r"(" + "|".join(TOP_FILES) + r")(?![\w/-]|\.\w)")
# `dev` is an ordinary word; only `./dev` or a backticked `dev` cite the script.
DEV_SCRIPT = re.compile(r"(?<![\w./~:-])\./(dev)(?![\w/.-])|`(dev)`")
PLACEHOLDER = re.compile(r"[<*{…]")
# Folders whose content is made at run time (runtime state, fetched footage, a user's source).
RUNTIME_ROOTS = ("data/", ".vcurate/")

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")


def _gitignore_rules() -> list[tuple[bool, bool, bool, str]]:
    """(negated, directories only, anchored at the root, pattern) per line of .gitignore."""
    rules = []
    for line in (ROOT / ".gitignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = line.removeprefix("!")
        dir_only = line.endswith("/")
        pattern = line.strip("/")
        rules.append((negated, dir_only, "/" in line.rstrip("/"), pattern))
    return rules


def _rule_matches(parts: list[str], anchored: bool, pattern: str) -> bool:
    if not anchored:
        return fnmatchcase(parts[-1], pattern)
    wanted = pattern.split("/")
    return len(wanted) == len(parts) and all(map(fnmatchcase, parts, wanted))


def git_never_holds(rel: str) -> bool:
    """Whether .gitignore excludes `rel`: git semantics for the patterns this repository uses
    (last match wins; nothing under an excluded folder can be re-included)."""
    rules = _gitignore_rules()
    parts = rel.rstrip("/").split("/")
    for depth in range(1, len(parts) + 1):
        is_dir = depth < len(parts) or rel.endswith("/")
        excluded = False
        for negated, dir_only, anchored, pattern in rules:
            if (is_dir or not dir_only) and _rule_matches(parts[:depth], anchored, pattern):
                excluded = not negated
        if excluded:
            return True
    return False


def may_be_missing(rel: str) -> bool:
    """Only what is made at run time may be cited without existing in the checkout: a path
    under data/ or .vcurate/ that git never holds (`./dev demo` fetches data/sample/*.mp4;
    `data/web-cc` is the user's own footage; .vcurate/ is local state)."""
    return rel.startswith(RUNTIME_ROOTS) and git_never_holds(rel)


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def cited_paths(text: str) -> set[str]:
    """Repository-relative paths a document cites, anywhere in it (code blocks included)."""
    found = set()
    for match in FOLDER_PATH.finditer(text):
        path = match.group(1).split("#")[0].rstrip(".:")
        if not PLACEHOLDER.search(path):
            found.add(path)
    found.update(m.group(1) for m in TOP_FILE.finditer(text))
    found.update(m.group(1) or m.group(2) for m in DEV_SCRIPT.finditer(text))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in _prose_lines(doc.read_text()):
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            base = slug(heading.group(1))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else f"{base}-{count}")
    return result


def _rel(doc: Path) -> str:
    return doc.relative_to(ROOT).as_posix()


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines (at most {MAX_README_LINES}): move detail into docs/"
    )


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_cited_paths_exist(doc: Path) -> None:
    missing = sorted(
        path for path in cited_paths(doc.read_text())
        if not (ROOT / path).exists() and not may_be_missing(path)
    )
    assert not missing, f"{_rel(doc)} cites paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=_rel)
def test_links_resolve(doc: Path) -> None:
    broken = []
    for line in _prose_lines(doc.read_text()):
        for target in LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (doc.parent / path).resolve() if path else doc
            exists = dest.is_relative_to(ROOT) and dest.exists()
            if not exists or (anchor and dest.suffix == ".md" and anchor not in anchors(dest)):
                broken.append(target)
    assert not broken, f"{_rel(doc)} has broken links: {broken}"


def test_readme_links_every_doc() -> None:
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in LINK.findall(README.read_text())
        if not re.match(r"[a-z][a-z0-9+.-]*:", target)
    }
    unlinked = [_rel(doc) for doc in DOCS[1:] if doc.resolve() not in linked]
    assert not unlinked, f"README.md does not link {unlinked}"


def test_readme_states_the_two_commands() -> None:
    text = README.read_text()
    assert "./dev demo" in text
    assert "./dev test" in text
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\./dev test\b", ci, re.MULTILINE), ".ci/run must run the README's ./dev test"


def test_path_rules() -> None:
    """The candidates and the run-time exception are as narrow as they claim."""
    text = (
        "see `assets/clips/rows.py`, [x](docs/tiers.md#a) and `bench/shots.py`. Not ../shared/x, "
        "s3://bucket/media/x, lakefs://vcurate/main/sources/<s>/x nor `sources/<source>/clips/`; "
        "`media/<x>.py` is a placeholder. `.env`, ./dev test, pyproject.toml: yes; dagster dev: no."
    )
    assert cited_paths(text) == {
        "assets/clips/rows.py", "docs/tiers.md", "bench/shots.py", ".env", "dev", "pyproject.toml",
    }
    assert may_be_missing("data/sample/bikes.mp4")  # fetched by ./dev demo
    assert may_be_missing("data/web-cc")  # a user's source folder
    assert may_be_missing(".vcurate/dagster")
    assert not may_be_missing("data/sample/README.md")  # committed: must exist
    assert not may_be_missing("assets/clips/missing.py")
    assert slug("lakeFS (the server)") == "lakefs-the-server"
