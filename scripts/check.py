"""The whole test suite: lint, types, import contracts, then pytest. CI runs exactly this.

Run from anywhere with only Python installed::

    python3 scripts/check.py            # everything
    python3 scripts/check.py -k prompts # extra arguments go to pytest
    python3 scripts/check.py --coverage # with a coverage report of the SQLite run (about half again the CPU)

It creates ``.venv`` with flowrun and its development tools, then runs
``ruff check``, ``ruff format --check``, ``mypy`` (strict), ``lint-imports``
(the layer contracts of pyproject.toml) and ``pytest`` twice: on SQLite (with
``--coverage``, a coverage report, also written to ``coverage.xml``), and on a real PostgreSQL
server the tests start (installed from Debian's packages when missing). It exits non-zero when any of them fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _venv

_venv.ensure("dev")

ROOT = _venv.ROOT
BIN = _venv.BIN


LINTED = ("flowrun", "tests", "benchmarks", "scripts")


def run(name: str, *cmd: str) -> bool:
    print(f"\n== {name}: {' '.join(cmd)}", flush=True)
    return subprocess.run(list(cmd), cwd=ROOT).returncode == 0


#: With --coverage, the SQLite run reports coverage of flowrun (files not fully covered, with their
#: missing lines; settings in pyproject's [tool.coverage.*]) and writes coverage.xml.
#: Report only: no threshold fails the check.
#: Off by default: it makes the SQLite run about half again as long, and CI must stay under 25 minutes.
COVERAGE = ("--cov", "--cov-report=term:skip-covered", "--cov-report=xml:coverage.xml")
WANT_COVERAGE = "--coverage" in sys.argv[1:]
PYTEST_ARGS = [a for a in sys.argv[1:] if a != "--coverage"]
# An absolute data file, so the flowrun subprocesses the tests start in other folders write beside it.
os.environ["COVERAGE_FILE"] = str(ROOT / ".coverage")

LXML4 = ROOT / ".venv-lxml4"


def ensure_lxml4() -> str | None:
    """``.venv-lxml4``: the oldest lxml flowrun allows (4.9), for tests/test_xml_lxml4.py."""
    python = LXML4 / "bin" / "python"
    if not python.exists() and subprocess.run([sys.executable, "-m", "venv", str(LXML4)]).returncode != 0:
        return None
    packages = ["lxml>=4.9,<5", "SpiffWorkflow>=3.2,<4", "RestrictedPython>=7.0"]
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages]
    return str(python) if subprocess.run(pip, cwd=ROOT).returncode == 0 else None


def ensure_postgresql() -> bool:
    """PostgreSQL's server binaries (initdb, pg_ctl), from Debian's packages when missing."""
    if shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return True
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("== PostgreSQL is not installed and cannot be installed here (need root and apt-get)")
        return False
    print("== installing PostgreSQL from Debian's packages", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run(["apt-get", "update", "-qq"], env=env).returncode == 0
    ok = ok and subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env).returncode == 0
    return ok and bool(list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


def main() -> int:
    lxml4 = ensure_lxml4()
    if lxml4:
        os.environ["FLOWRUN_LXML4_PYTHON"] = lxml4
    results = {
        "lxml 4 venv": lxml4 is not None,
        "ruff": run("ruff", str(BIN / "ruff"), "check", *[d for d in LINTED if (ROOT / d).exists()]),
        "format": run("format", str(BIN / "ruff"), "format", "--check", *[d for d in LINTED if (ROOT / d).exists()]),
        "mypy": run("mypy", str(BIN / "mypy")),
        "imports": run("import contracts", str(BIN / "lint-imports")),
        "pytest (SQLite)": run(
            "pytest on SQLite", str(BIN / "python"), "-m", "pytest", "-q", *(COVERAGE * WANT_COVERAGE), *PYTEST_ARGS
        ),
    }
    if ensure_postgresql():
        os.environ["FLOWRUN_TEST_DB"] = "postgres"
        results["pytest (PostgreSQL)"] = run(
            "pytest on PostgreSQL", str(BIN / "python"), "-m", "pytest", "-q", *PYTEST_ARGS
        )
        del os.environ["FLOWRUN_TEST_DB"]
    else:
        results["pytest (PostgreSQL)"] = False
    failed = [name for name, ok in results.items() if not ok]
    print("\n== " + ("all checks passed" if not failed else f"FAILED: {', '.join(failed)}"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
