"""Dependencies point one way: the platform (medai_site/) never depends on a clinical app.

Clinical apps plug into the platform through registries that they fill from their
AppConfig.ready() (navigation, demo seeders, patient-page panels, model kinds, media folders,
role permissions); the platform offers them and imports none of the apps. Every module under
medai_site/ is parsed, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = ROOT / "medai_site"
DOMAINS = ("diagnosis", "treatment", "remote_care", "drugs")

# The site's wiring may name the apps in strings, never import them: settings list the
# installed apps, their task schedules and schema hooks; the root URLconf mounts each app's
# URLs ("diagnosis.urls").
STRINGS_ALLOWED = ("medai_site/settings/", "medai_site/urls.py")

# Calls that import the module named by their first argument.
IMPORTING_CALLS = {"import_module", "__import__", "import_string", "find_spec"}

DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


def _module_file(dotted: str) -> Path | None:
    path = ROOT.joinpath(*dotted.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _names_code(text: str) -> bool:
    """Whether ``text`` is the dotted path of a clinical app's module, or of a name defined at
    the top of one ("remote_care.monitoring.selectors",
    "remote_care.devices.api.schema_close_fhir_shapes")."""
    if not DOTTED.match(text) or text.split(".")[0] not in DOMAINS:
        return False
    if _module_file(text) is not None:
        return True
    module, _, name = text.rpartition(".")
    source = _module_file(module)
    if source is None:
        return False
    defined = set()
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Assign):
            defined |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.add(node.target.id)
    return name in defined


def domain_references(source: str, *, strings: bool = True) -> Iterator[tuple[int, str]]:
    """(line, what) for each import of a clinical app in ``source``, wherever it sits, and,
    with ``strings``, each string naming one of their modules or functions."""
    reported: set[int] = set()  # the string argument of an importing call, already reported
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in DOMAINS:
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module and node.module.split(".")[0] in DOMAINS:
                yield node.lineno, f"from {node.module} import ..."
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if (
                called in IMPORTING_CALLS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and first.value.split(".")[0] in DOMAINS
            ):
                reported.add(id(first))
                yield node.lineno, f"{called}({first.value!r})"
        elif (
            strings
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in reported
            and _names_code(node.value)
        ):
            yield node.lineno, repr(node.value)


def platform_modules() -> list[Path]:
    return sorted(PLATFORM.rglob("*.py"))


def test_the_check_sees_every_kind_of_reference():
    source = (
        "import json\n"
        "from medai_site.core.roles import Role\n"
        "def badges(user):\n"
        "    from remote_care.selectors import unread_total_for_clinician\n"
        "    import drugs.services as drug_services\n"
        "    importlib.import_module('treatment.demo')\n"
        "    return 'remote_care.monitoring.selectors', 'diagnosis.services.scan_upload'\n"
        "TASK = 'diagnosis.pneumonia'  # a registry task name, not code\n"
        "PERM = 'diagnosis.view_imagedataset'  # a permission, not code\n"
    )
    assert list(domain_references(source)) == [
        (4, "from remote_care.selectors import ..."),
        (5, "import drugs.services"),
        (6, "import_module('treatment.demo')"),
        (7, "'remote_care.monitoring.selectors'"),
        (7, "'diagnosis.services.scan_upload'"),
    ]
    assert list(domain_references(source, strings=False)) == [
        (4, "from remote_care.selectors import ..."),
        (5, "import drugs.services"),
        (6, "import_module('treatment.demo')"),
    ]


def test_the_platform_imports_no_clinical_app():
    modules = platform_modules()
    assert len(modules) > 50  # the whole platform, not an empty glob
    found = []
    for path in modules:
        relative = path.relative_to(ROOT).as_posix()
        strings = not relative.startswith(STRINGS_ALLOWED)
        found += [
            f"{relative}:{line}: {what}"
            for line, what in domain_references(path.read_text(), strings=strings)
        ]
    assert not found, (
        "medai_site/ must not depend on a clinical app; let the app register with the "
        "platform from its AppConfig.ready() instead:\n" + "\n".join(found)
    )


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_clinical_app_is_a_package_the_check_knows(domain):
    assert _module_file(domain) is not None and _module_file(f"{domain}.apps") is not None
