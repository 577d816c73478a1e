"""remote_care's feature packages keep their dependencies one way: physiology/ is pure (no
Django, nothing else of remote_care), ml/ imports only itself and physiology/, and no two
modules of remote_care import each other, directly or round a loop. Imports inside functions
count as much as those at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "remote_care"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Dotted names of every module ``path`` imports (``from x import y`` gives x.y and x)."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + [base]).strip(".")
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(APP.rglob("*.py"))
        if "migrations" not in path.parts
    }


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of ``graph`` (a list of module names), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (loop := visit(target)):
                return loop
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (loop := visit(node)):
            return loop
    return None


def _in(package: str, name: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("remote_care.physiology", ("remote_care.physiology",)),
        ("remote_care.ml", ("remote_care.ml", "remote_care.physiology")),
    ],
)
def test_pure_packages_import_no_django_and_only_what_they_may(package, allowed):
    modules = {name: path for name, path in _modules().items() if _in(package, name)}
    assert len(modules) > 2  # the package itself, not an empty match
    found = [
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in sorted(_imports(path))
        if target.split(".")[0] in {"django", "rest_framework", "medai_site"}
        or (_in("remote_care", target) and not any(_in(a, target) for a in allowed))
    ]
    assert not found, f"{package} must stay pure:\n" + "\n".join(found)


def test_no_module_of_remote_care_imports_itself_round_a_loop():
    graph = _graph()
    assert len(graph) > 40
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_loop_finder_finds_a_loop():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
