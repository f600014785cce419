"""The public surface: ``__all__`` lists exactly what each package exports, and imports stay in their layer."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import ModuleType

import pytest

import flowrun

PACKAGE = Path(flowrun.__file__).parent
SOURCES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
INITS = sorted(p for p in SOURCES if p.name == "__init__.py")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _declares_all(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


PACKAGES_WITH_ALL = [_module_name(p) for p in INITS if _declares_all(p)]


def test_the_main_packages_declare_all():
    """flowrun, flowrun.engine and flowrun.store each declare their public names."""
    assert {"flowrun", "flowrun.engine", "flowrun.store"} <= set(PACKAGES_WITH_ALL)


#: Names a module may hold without exporting them: typing helpers for lazy imports.
TYPING_HELPERS = {"TYPE_CHECKING", "annotations"}


def _is_typing_helper(member: str, value: object) -> bool:
    return member in TYPING_HELPERS or getattr(value, "__module__", None) in ("typing", "__future__")


@pytest.mark.parametrize("name", PACKAGES_WITH_ALL)
def test_all_imports_are_exported(name):
    """``__all__`` is sorted and names exactly the public names of the package, each importable."""
    module = importlib.import_module(name)
    assert module.__all__ == sorted(set(module.__all__))
    defined = {
        member
        for member, value in vars(module).items()
        if (not member.startswith("_") or member == "__version__")
        and not isinstance(value, ModuleType)
        and not _is_typing_helper(member, value)
    }
    assert defined <= set(module.__all__), "public names missing from __all__"
    for member in module.__all__:
        value = getattr(module, member)  # lazily exported names must resolve too
        if member != "__version__":
            assert getattr(value, "__module__", "").startswith("flowrun."), (member, value)


def _imported_modules(path: Path) -> list[tuple[str, int]]:
    """Top-level names of every absolute import in a file, including lazy ones in functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return found


#: Third-party libraries and the only folder of flowrun allowed to import them.
OWNERS = {
    "SpiffWorkflow": "engine",
    "RestrictedPython": "engine",
    "lxml": "engine",
    "sqlalchemy": "store",
    "alembic": "store",
    "click": "cli",
    "rich": "cli",
}


def _violations(library: str) -> list[str]:
    owner = PACKAGE / OWNERS[library]
    return [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in SOURCES
        for name, line in _imported_modules(path)
        if name == library and owner not in path.parents
    ]


def test_the_import_scan_sees_lazy_imports():
    """The scanner finds imports inside functions too, so lazy imports cannot slip through."""
    engine_imports = {name for path in (PACKAGE / "engine").rglob("*.py") for name, _ in _imported_modules(path)}
    cli_imports = {name for path in (PACKAGE / "cli").rglob("*.py") for name, _ in _imported_modules(path)}
    assert "SpiffWorkflow" in engine_imports
    assert {"click", "rich"} <= cli_imports  # rich is imported lazily inside render functions


@pytest.mark.parametrize(
    "library",
    [
        "SpiffWorkflow",
        "RestrictedPython",
        "lxml",
        "sqlalchemy",
        "alembic",
        "click",
        "rich",
    ],
)
def test_library_is_imported_only_in_its_layer(library):
    """Each third-party engine, database or terminal library is imported only by its own package."""
    assert _violations(library) == []
