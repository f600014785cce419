"""The layer contract names every part of flowrun, and the architecture page matches it."""

from __future__ import annotations

import pkgutil
import re
import sys
from pathlib import Path

import flowrun

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parent.parent


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layered,) = [c for c in contracts if c["type"] == "layers"]
    return list(layered["layers"])


def _named(layers: list[str]) -> set[str]:
    return {name.strip().strip("()") for layer in layers for name in layer.split("|")}


def test_every_module_stands_in_a_layer() -> None:
    """Each top-level module and package of flowrun is placed in the layers contract."""
    parts = {f"flowrun.{m.name}" for m in pkgutil.iter_modules(flowrun.__path__)}
    missing = sorted(parts - _named(_layers()))
    assert not missing, f"place these in a layer of pyproject.toml's import contract: {missing}"


def test_simulator_and_report_are_reserved_between_app_and_the_middle_tier() -> None:
    """sim and report sit below app and above engine and analysis, side by side."""
    layers = [_named([layer]) for layer in _layers()]
    index = {name: i for i, names in enumerate(layers) for name in names}
    assert index["flowrun.app"] < index["flowrun.sim"] == index["flowrun.report"] < index["flowrun.engine"]
    assert index["flowrun.engine"] == index["flowrun.analysis"]


def test_architecture_page_names_every_package() -> None:
    """docs/architecture.md names every package and module of flowrun's top level, and the two to come."""
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    names = {m.name for m in pkgutil.iter_modules(flowrun.__path__) if not m.name.startswith("__")}
    missing = sorted(n for n in names | {"sim", "report"} if not re.search(rf"\b{n}(/|\.py)", page))
    assert not missing, f"docs/architecture.md does not show: {missing}"
