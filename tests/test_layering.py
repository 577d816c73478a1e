"""The layering rules of CONTRIBUTING.md, checked on the source (AST only: no Django, no database).

1. Pure packages (``PURE_PACKAGES``: the ``ml/`` packages and ``diagnosis/imaging/``) import no
   Django, Celery or DRF, nothing from ``medai_site`` and nothing from a non-pure part of the
   project; a pure package imports another pure package only along ``PURE_EDGES``.
2. (``medai_site/`` imports no clinical app: ``tests/test_architecture.py``.)
3. Clinical apps meet only through each other's ``services`` and ``selectors``.
4. No import cycles among the project's modules.
5. No module or package named ``utils``, ``helpers``, ``misc`` or ``common``.

Every import statement counts, at the top of a module or inside a function, and so does a call
of ``import_module("...")``-style importers with a literal name. The cycle rule leaves out
imports under ``if TYPE_CHECKING:``: they never run and are how a module names a type without
depending on its module at run time.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "medai_site"
DOMAINS = ("diagnosis", "treatment", "remote_care", "drugs")
# medai_ml/ holds the pure helpers every layer shares (JSON-safe numbers): any module may
# import it, and it imports nothing of the project.
SHARED_PURE = "medai_ml"
PROJECT = (PLATFORM, SHARED_PURE, *DOMAINS)

# Packages of pure code: arrays and paths in, dataclasses out, testable with no Django.
PURE_PACKAGES = (
    SHARED_PURE,
    "diagnosis.imaging",
    "diagnosis.ml",
    "treatment.ml",
    "drugs.ml",
    "remote_care.ml",
    "remote_care.physiology",
)
# Which pure package may import which other one (each may always import itself).
PURE_EDGES: dict[str, set[str]] = {
    "diagnosis.ml": {"diagnosis.imaging"},  # the training contract shares the scan shape
    "remote_care.ml": {"remote_care.physiology"},  # the NEWS2 baseline scores vitals
}
# Exceptions to rule 1 and rule 4 while a fix is under way: none today. An entry needs the
# issue that removes it; the tests fail when an entry is no longer needed.
KNOWN_PURE_BREACHES_BEING_FIXED: set[tuple[str, str]] = set()
KNOWN_CYCLES_TO_BREAK: set[frozenset[str]] = set()

# Third-party packages that mean "a web framework or a worker", which pure code never needs.
FRAMEWORKS = ("django", "rest_framework", "celery", "kombu")

# Rule 3: the modules of another app that an app may import (and everything under them, once a
# module becomes a package).
PUBLIC_MODULES = ("services", "selectors")

FORBIDDEN_NAMES = {"utils", "helpers", "misc", "common"}

IMPORTING_CALLS = {"import_module", "__import__", "import_string"}


@dataclass(frozen=True)
class Import:
    """One import in ``path`` (relative, posix) at ``line``: ``module`` is what it names, resolved
    to the deepest project module that exists when it is one of ours."""

    path: str
    line: int
    module: str
    statement: str
    type_checking: bool

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.statement}"


def module_file(dotted: str) -> Path | None:
    path = ROOT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def project_files() -> tuple[Path, ...]:
    """Every Python file of the platform and the clinical apps, migrations left out."""
    return tuple(
        path
        for top in PROJECT
        for path in sorted((ROOT / top).rglob("*.py"))
        if "migrations" not in path.parts
    )


def _resolve(base: str, names: list[str]) -> list[str]:
    """``from base import a, b``: each name that is a module of ours is its own target."""
    if base.split(".")[0] not in PROJECT:
        return [base]
    targets = [f"{base}.{name}" for name in names if module_file(f"{base}.{name}")]
    if len(targets) < len(names):
        targets.append(base)
    return targets


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_in(source: str, *, path: str, package: str) -> Iterator[Import]:
    """Every import in ``source`` (a module of ``package``), wherever it sits."""
    tree = ast.parse(source)
    guarded = _type_checking_lines(tree)
    for node in sorted(ast.walk(tree), key=lambda node: getattr(node, "lineno", 0)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(
                    path, node.lineno, alias.name, f"import {alias.name}", node.lineno in guarded
                )
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [alias.name for alias in node.names]
            statement = f"from {'.' * node.level}{node.module or ''} import {', '.join(names)}"
            for target in _resolve(base, names):
                yield Import(path, node.lineno, target, statement, node.lineno in guarded)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in IMPORTING_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield Import(path, node.lineno, first.value, f"{called}({first.value!r})", False)


@cache
def project_imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for path in project_files():
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        relative = path.relative_to(ROOT).as_posix()
        found += imports_in(path.read_text(), path=relative, package=package)
    return tuple(found)


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def pure_package_of(module: str) -> str | None:
    return next((pure for pure in PURE_PACKAGES if _within(module, pure)), None)


def pure_breaches(imports: tuple[Import, ...] | list[Import]) -> list[tuple[Import, str]]:
    """(import, why) for each import by a pure module that rule 1 forbids."""
    breaches = []
    for imp in imports:
        importer = pure_package_of(module_name(ROOT / imp.path))
        if importer is None:
            continue
        top = imp.module.split(".")[0]
        if top in FRAMEWORKS or top.startswith("django_"):
            breaches.append((imp, f"{top} in pure code"))
        elif top == PLATFORM:
            breaches.append((imp, "the platform (medai_site) in pure code"))
        elif top == SHARED_PURE and importer != SHARED_PURE:
            continue  # shared pure helpers, open to every layer
        elif top in DOMAINS:
            target = pure_package_of(imp.module)
            if target is None:
                breaches.append((imp, "a non-pure part of the project in pure code"))
            elif target != importer and target not in PURE_EDGES.get(importer, set()):
                breaches.append((imp, f"{target} is not in PURE_EDGES[{importer!r}]"))
    return breaches


def domain_crossings(imports: tuple[Import, ...] | list[Import]) -> list[Import]:
    """Each import by one clinical app of another app's module other than services/selectors."""
    crossings = []
    for imp in imports:
        importer = imp.path.split("/")[0]
        parts = imp.module.split(".")
        if importer not in DOMAINS or parts[0] not in DOMAINS or parts[0] == importer:
            continue
        if len(parts) < 2 or parts[1] not in PUBLIC_MODULES:
            crossings.append(imp)
    return crossings


def import_graph(imports: tuple[Import, ...] | list[Import]) -> dict[str, dict[str, Import]]:
    """importer module -> {imported project module: the first import that makes the edge}."""
    graph: dict[str, dict[str, Import]] = {}
    for imp in imports:
        if imp.type_checking or imp.module.split(".")[0] not in PROJECT:
            continue
        importer = module_name(ROOT / imp.path)
        if imp.module != importer and module_file(imp.module) is not None:
            graph.setdefault(importer, {}).setdefault(imp.module, imp)
    return graph


def cycles(graph: dict[str, dict[str, Import]]) -> list[tuple[frozenset[str], list[Import]]]:
    """(the modules, one cycle through them as the imports that close it) for each strongly
    connected group of modules: every module of a group reaches every other one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the project is shallow enough for recursion
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, {})):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    found = []
    for group in groups:
        start = min(group)
        # Shortest way back to the start inside the group (breadth first).
        previous: dict[str, str] = {}
        frontier = [start]
        while start not in previous:
            following = []
            for node in frontier:
                for target in sorted(graph[node]):
                    if target in group and target not in previous:
                        previous[target] = node
                        following.append(target)
            frontier = following
        ring = [start]
        node = previous[start]
        while node != start:
            ring.append(node)
            node = previous[node]
        ring = [start, *reversed(ring[1:]), start]
        found.append((frozenset(group), [graph[a][b] for a, b in zip(ring, ring[1:])]))
    return sorted(found, key=lambda found: sorted(found[0]))


# The checks of the checks: small sources with a known answer.


def _imports(files: dict[str, str]) -> list[Import]:
    found: list[Import] = []
    for path, source in files.items():
        package = path.removesuffix(".py").replace("/", ".").rpartition(".")[0]
        found += imports_in(source, path=path, package=package)
    return found


def test_the_import_reader_sees_every_kind_of_import():
    source = (
        "import numpy as np\n"
        "from django.db import models\n"
        "from . import metrics\n"
        "from .data import load\n"
        "def f():\n"
        "    from medai_site.core.roles import Role\n"
        "    importlib.import_module('treatment.demo')\n"
        "if TYPE_CHECKING:\n"
        "    from diagnosis.models import Scan\n"
    )
    found = [
        (imp.line, imp.module, imp.type_checking)
        for imp in imports_in(source, path="diagnosis/ml/train.py", package="diagnosis.ml")
    ]
    assert found == [
        (1, "numpy", False),
        (2, "django.db", False),
        (3, "diagnosis.ml.metrics", False),
        (4, "diagnosis.ml.data", False),
        (6, "medai_site.core.roles", False),
        (7, "treatment.demo", False),
        (9, "diagnosis.models", True),
    ]


def test_the_pure_rule_catches_frameworks_the_platform_and_impure_modules():
    found = pure_breaches(
        _imports(
            {
                "drugs/ml/gan.py": (
                    "import torch\n"
                    "from drugs.ml import chem\n"
                    "from django.conf import settings\n"
                    "def f():\n"
                    "    from medai_site.jobs.models import Job\n"
                    "    from drugs.models import Molecule\n"
                    "    from diagnosis.ml import metrics\n"
                    "    import django_otp\n"
                ),
                "diagnosis/ml/train.py": "from diagnosis.imaging.contract import Contract\n",
                "drugs/services.py": "from django.db import transaction\n",
            }
        )
    )
    assert [(imp.line, imp.module) for imp, _ in found] == [
        (3, "django.conf"),
        (5, "medai_site.jobs.models"),
        (6, "drugs.models"),
        (7, "diagnosis.ml.metrics"),
        (8, "django_otp"),
    ]


def test_the_domain_rule_allows_only_services_and_selectors():
    found = domain_crossings(
        _imports(
            {
                "remote_care/views.py": (
                    "from diagnosis.selectors import active_versions\n"
                    "from diagnosis.services.scans import scan_upload\n"
                    "from diagnosis.models import Scan\n"
                    "import treatment.jobs\n"
                    "from remote_care.models import Patient\n"
                    "from medai_site.jobs.models import Job\n"
                ),
            }
        )
    )
    assert [str(imp) for imp in found] == [
        "remote_care/views.py:3: from diagnosis.models import Scan",
        "remote_care/views.py:4: import treatment.jobs",
    ]


def test_the_cycle_finder_names_the_modules_and_lines():
    graph = import_graph(
        _imports(
            {
                "remote_care/monitoring/board.py": "from remote_care.physiology.news2 import score\n",
                "remote_care/physiology/news2.py": (
                    "def f():\n    from remote_care.monitoring import board\n"
                ),
                "remote_care/monitoring/charts.py": (
                    "from remote_care.physiology.news2 import score\n"
                ),
                "remote_care/risk/services.py": (
                    "if TYPE_CHECKING:\n    from remote_care.monitoring.charts import figure\n"
                ),
            }
        )
    )
    assert [[str(imp) for imp in cycle] for _, cycle in cycles(graph)] == [
        [
            "remote_care/monitoring/board.py:1: from remote_care.physiology.news2 import score",
            "remote_care/physiology/news2.py:2: from remote_care.monitoring import board",
        ]
    ]


# The rules, on the project.


def test_every_pure_package_exists():
    for package in PURE_PACKAGES:
        assert module_file(package) is not None, f"{package} is in PURE_PACKAGES but missing"
    for importer, targets in PURE_EDGES.items():
        assert {importer, *targets} <= set(PURE_PACKAGES), f"PURE_EDGES[{importer!r}]"


def test_pure_packages_import_no_django_platform_or_impure_code():
    found = pure_breaches(project_imports())
    unexpected = [
        f"{imp}  ({why})"
        for imp, why in found
        if (imp.path, imp.module) not in KNOWN_PURE_BREACHES_BEING_FIXED
    ]
    assert not unexpected, (
        "Pure packages take arrays and paths and return dataclasses; they never import Django, "
        "the platform or a module that does. Move the code the import needs into the pure "
        "package (or a pure package named in PURE_EDGES), or move the importing code out:\n"
        + "\n".join(unexpected)
    )
    stale = KNOWN_PURE_BREACHES_BEING_FIXED - {(imp.path, imp.module) for imp, _ in found}
    assert not stale, f"fixed: delete these from KNOWN_PURE_BREACHES_BEING_FIXED: {stale}"


def test_clinical_apps_meet_only_through_services_and_selectors():
    found = domain_crossings(project_imports())
    assert not found, (
        "A clinical app may use another only through its services (writes) and selectors "
        "(reads); add a service or selector there and import that instead:\n"
        + "\n".join(map(str, found))
    )


def test_no_import_cycles():
    found = cycles(import_graph(project_imports()))
    report = [
        " -> ".join([module_name(ROOT / cycle[0].path), *(imp.module for imp in cycle)])
        + "".join(f"\n    {imp}" for imp in cycle)
        for group, cycle in found
        if group not in KNOWN_CYCLES_TO_BREAK
    ]
    assert not report, (
        "Import cycles (each line is an import that closes the ring; move the shared code "
        "into a module both can import, or let the lower module be called instead of "
        "calling up):\n" + "\n".join(report)
    )
    stale = KNOWN_CYCLES_TO_BREAK - {group for group, _ in found}
    assert not stale, f"broken: delete these from KNOWN_CYCLES_TO_BREAK: {stale}"


@pytest.mark.parametrize("top", [*PROJECT, "tests", "bench"])
def test_no_module_is_named_utils_helpers_misc_or_common(top):
    found = [
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / top).rglob("*")
        if (path.stem if path.suffix == ".py" else path.name) in FORBIDDEN_NAMES
        and (path.suffix == ".py" or path.is_dir())
    ]
    assert not found, (
        "Name modules by their role (dicom.py, news2.py, charts.py), never "
        f"{sorted(FORBIDDEN_NAMES)}: {found}"
    )
