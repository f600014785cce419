"""The version is written once (``flowrun.__version__``); the package metadata and ``--version`` agree with it."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import flowrun
from tests.helpers import flowrun_executable


def test_version_option_prints_the_installed_version():
    """``flowrun --version`` prints the version pip installed (reinstall with ``pip install -e .`` after a bump)."""
    result = subprocess.run([str(flowrun_executable()), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    installed = importlib.metadata.version("flowrun")
    assert result.stdout == f"flowrun, version {installed}\n"
    assert installed == flowrun.__version__


def test_version_option_imports_nothing_heavy():
    """``--version`` loads neither the engine, the store nor rich: it reads a string from ``flowrun/__init__.py``."""
    code = (
        "import json, sys\n"
        "from flowrun.cli.main import cli\n"
        "try:\n"
        "    cli(['--version'], prog_name='flowrun')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stderr))
    heavy = {"SpiffWorkflow", "sqlalchemy", "alembic", "rich", "numpy", "scipy", "lxml", "importlib.metadata"}
    assert not heavy & loaded, sorted(heavy & loaded)
