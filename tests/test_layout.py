"""The code layout's rules, checked on the source: imports point one way and never in a circle,
media/ never touches Dagster, and every lakeFS path is spelled in assets/common/layout.py."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Lower layers never import higher ones: orchestration -> assets -> quality_checks -> resources -> media.
LAYERS = ("media", "resources", "quality_checks", "assets", "orchestration")
# Object-key prefixes of the lakeFS repository (assets/common/layout.py owns them).
LAKEFS_PREFIXES = ("sources/", "releases/", "concepts/", "audits/", "previews/", "exports/")
LAYOUT = ROOT / "assets" / "common" / "layout.py"


def _modules() -> dict[str, Path]:
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Project modules `path` imports, at any depth (lazy imports inside functions count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.split(".")[0] in LAYERS}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {dep for dep in _imports(path) if dep in modules} for name, path in modules.items()}


def test_imports_point_down_the_layers():
    upward = [f"{module} imports {dep}" for module, deps in _graph().items() for dep in deps
              if LAYERS.index(dep.split(".")[0]) > LAYERS.index(module.split(".")[0])]
    assert upward == []


def test_no_import_circle():
    graph, state, circles = _graph(), {}, []

    def visit(module: str, stack: list[str]) -> None:
        state[module] = "open"
        stack.append(module)
        for dep in sorted(graph[module]):
            if state.get(dep) == "open":
                circles.append(" -> ".join([*stack[stack.index(dep):], dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert circles == []


def test_media_never_imports_dagster():
    offenders = [name for name, path in _modules().items() if name.startswith("media")
                 and any(n == "dagster" or n.startswith("dagster") for n in _all_imports(path))]
    assert offenders == []


def _all_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_lakefs_paths_are_spelled_only_in_the_layout_module():
    """A path written anywhere else could escape the lineage audit and the purge."""
    spelled = []
    for name, path in _modules().items():
        if path == LAYOUT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            parts = ([node] if isinstance(node, ast.Constant) else
                     [v for v in node.values if isinstance(v, ast.Constant)]
                     if isinstance(node, ast.JoinedStr) else [])
            spelled += [f"{name}:{node.lineno}: {p.value!r}" for p in parts
                        if isinstance(p.value, str) and p.value.startswith(LAKEFS_PREFIXES)]
    assert spelled == []


def test_the_layout_module_is_used_by_writers_audit_and_purge():
    users = {name for name, path in _modules().items() if "assets.common.layout" in _imports(path)}
    assert {"assets.clips.rows", "assets.scored.asset", "assets.stages.rows", "assets.release.asset",
            "assets.upkeep.purge"} <= users
