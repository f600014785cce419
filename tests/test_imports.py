"""Every module imports on its own, and the fast commands import only what they need.

The first half imports each ``flowrun`` module alone in a fresh interpreter, so an import
cycle hidden by the order ``cli/main.py`` happens to import things in shows up here. The second
half runs the real CLI entry in a subprocess, as click's own ``tests/test_imports.py`` does, and
checks which modules were loaded by the time it exits.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import flowrun

#: The Alembic scripts are run by Alembic, not imported: ``env.py`` reads ``alembic.context``,
#: which exists only while a migration runs. They sit in a folder without ``__init__.py``, so the
#: walk below never reaches them; this check keeps it that way.
MIGRATIONS = Path(flowrun.__file__).parent / "store" / "migrations"


def _all_modules() -> list[str]:
    found = ["flowrun"]
    for info in pkgutil.walk_packages(flowrun.__path__, "flowrun."):
        found.append(info.name)
    return sorted(found)


MODULES = _all_modules()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_the_walk_finds_every_package_and_no_migration_script():
    """The walk covers the known packages, and the Alembic scripts are left to Alembic."""
    assert {"flowrun.cli.tasks", "flowrun.cli.context", "flowrun.engine.validate", "flowrun.units"} <= set(MODULES)
    assert (MIGRATIONS / "env.py").is_file()
    assert not (MIGRATIONS / "__init__.py").exists()
    assert not [m for m in MODULES if ".migrations" in m]


@pytest.mark.parametrize("module", MODULES)
def test_module_imports_alone(module):
    """Importing this one module in a fresh interpreter succeeds (no import cycle, no import order needed)."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


#: Runs the CLI as the console script does and, at exit, writes the names of the loaded
#: modules to the file named by ``$MODULES_OUT`` (stdout belongs to the command).
WRAPPER = """
import atexit, json, os, sys

def _dump():
    with open(os.environ["MODULES_OUT"], "w", encoding="utf-8") as f:
        json.dump(sorted(sys.modules), f)

atexit.register(_dump)
sys.argv[0] = "flowrun"
from flowrun.cli.main import main
main()
"""

#: What neither ``tasks --json`` nor ``do --json`` may load: restoring an instance needs no BPMN parser.
PARSERS = ("SpiffWorkflow.bpmn.parser", "SpiffWorkflow.camunda.parser", "SpiffWorkflow.spiff.parser")
#: flowrun's own readers of XML files: ``do`` restores a stored instance and reads no file.
XML_READERS = (
    "flowrun.engine.xml",
    "flowrun.engine.loader",
    "flowrun.engine._parser",
    "flowrun.engine.normalize",
    "flowrun.engine.validate",
)


def _spiff_itself_loads_lxml() -> bool:
    """Whether ``import SpiffWorkflow`` alone loads lxml (3.x does: its ``specs`` package imports
    ``SubWorkflow``, which imports ``lxml.etree`` at the top)."""
    code = "import sys, SpiffWorkflow; print('lxml' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True)
    return done.stdout.strip() == "True"


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project made by ``flowrun init`` with one started complaint."""
    root = tmp_path_factory.mktemp("imports") / "proj"
    _flowrun(root.parent, "init", str(root))
    _flowrun(root, "start", "complaint:baseline")
    return root


def _flowrun(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "flowrun", *args], cwd=cwd, capture_output=True, text=True, env=_env(), check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def _loaded(project: Path, tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run ``flowrun ARGS`` through the wrapper; its stdout and the modules loaded by its exit."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *args],
        cwd=project,
        capture_output=True,
        text=True,
        env={**_env(), "MODULES_OUT": str(out)},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout, set(json.loads(out.read_text(encoding="utf-8")))


def _under(modules: set[str], top: str) -> list[str]:
    return sorted(m for m in modules if m == top or m.startswith(top + "."))


def test_tasks_json_loads_no_parser_no_lxml_no_rich(sample, tmp_path):
    """``flowrun tasks --json`` lists the inbox without the BPMN parser, lxml or rich."""
    stdout, modules = _loaded(sample, tmp_path, "tasks", "--json")

    assert [t["name"] for t in json.loads(stdout)] == ["Record complaint"]
    assert "flowrun.cli.tasks" in modules  # the wrapper saw the command run
    for top in (*PARSERS, "lxml", "rich", "alembic", "SpiffWorkflow", "numpy"):
        assert _under(modules, top) == [], top


def test_do_json_restores_without_parser_or_lxml(sample, tmp_path):
    """``flowrun do --json`` restores and steps the instance without the BPMN parser, rich or an XML reader.

    lxml itself is loaded exactly when ``import SpiffWorkflow`` alone loads it: flowrun adds none.
    """
    inbox, _ = _loaded(sample, tmp_path, "tasks", "--json")
    ref = str(json.loads(inbox)[0]["ref"])
    data = ("customer_name=Ann Smith", "category=billing", "description=Charged twice")
    stdout, modules = _loaded(sample, tmp_path, "do", ref, *(a for d in data for a in ("--data", d)), "--json")

    result = json.loads(stdout)
    assert result["status"] == "running"
    assert [t["name"] for t in result["ready"]] == ["Analyse needs"]
    assert "SpiffWorkflow.bpmn.workflow" in modules  # the engine did run
    for top in (*PARSERS, *XML_READERS, "rich", "alembic", "numpy"):
        assert _under(modules, top) == [], top
    assert bool(_under(modules, "lxml")) == _spiff_itself_loads_lxml()
