"""What the benchmarks share: the interpreter they run in, timing whole processes, ratio rows and the report.

Each benchmark (``run.py``, ``compare.py``, ``load.py``) is a script run from the repository root; this
module sits beside them, so ``import _common`` finds it (a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The interpreter of the project's virtualenv (made by ``scripts/check.py`` or ``scripts/demo.py``).
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
#: The column heads of every benchmark's result table.
TABLE_HEAD = ("", "measurement", "flowrun", "reference", "ratio", "target", "result", "ratio is", "other clock")


def log(msg: str) -> None:
    """Progress goes to stderr, so that stdout holds only the report."""
    print(msg, file=sys.stderr, flush=True)


def ensure_venv_python(script: str, needs_console_script: bool = True) -> None:
    """Re-run ``script`` with the project's virtualenv unless this interpreter can run flowrun.

    Args:
        script: the benchmark's ``__file__``.
        needs_console_script: the benchmark runs ``flowrun`` commands, so the ``flowrun`` console
            script must sit next to the interpreter; otherwise importing flowrun is enough.
    """
    if needs_console_script:
        ready = (Path(sys.executable).parent / "flowrun").exists()
    else:
        import importlib.util

        ready = importlib.util.find_spec("flowrun") is not None
    if ready:
        return
    if VENV_PYTHON.exists() and not os.environ.get("FLOWRUN_BENCH_REEXEC"):
        os.environ["FLOWRUN_BENCH_REEXEC"] = "1"
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(script).resolve()), *sys.argv[1:]])
    sys.exit(f"flowrun is not installed for {sys.executable}; run with the project's virtualenv python")


def flowrun_exe() -> str:
    """The ``flowrun`` console script of this interpreter."""
    return str(Path(sys.executable).parent / "flowrun")


def child_env() -> dict[str, str]:
    """The environment of a measured process: none of the caller's FLOWRUN_* settings, one user."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUN_") and k != "PYTHONDONTWRITEBYTECODE"}
    env["FLOWRUN_USER"] = "bench"
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


def run_timed(argv: Sequence[str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall time, CPU time (user+sys) and the finished process of one whole run, start to exit.

    Raises:
        RuntimeError: the process exited with a non-zero status (its stderr's end is in the message).
    """
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=child_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} exited {proc.returncode}: {proc.stderr.strip()[-3000:]}")
    return wall, cpu, proc


def ratio_row(
    mid: str,
    name: str,
    value_s: float,
    reference_s: float,
    target: float,
    basis: str,
    cpu_ratio: float | None,
    ratio: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One measurement: flowrun's time over the reference's, passing when the ratio is at most ``target``.

    Args:
        ratio: the gated ratio when it is not ``value_s / reference_s`` (e.g. a median of paired ratios).
    """
    if ratio is None:
        ratio = value_s / reference_s
    return {
        "id": mid,
        "name": name,
        "value_s": value_s,
        "reference_s": reference_s,
        "ratio": ratio,
        "target": target,
        "pass": ratio <= target,
        "basis": basis,
        "cpu_ratio": cpu_ratio,
        **extra,
    }


def error_row(mid: str, name: str, target: float, exc: BaseException) -> dict[str, Any]:
    """A measurement that could not be made: it fails, and says why."""
    return {"id": mid, "name": name, "target": target, "pass": False, "error": str(exc)}


def print_aligned(rows: Sequence[Sequence[str]]) -> None:
    """Print a table whose first row is the head: names left-aligned, figures right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print(
            "  ".join(
                c.ljust(w) if j in (0, 1, 7, 8) else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if i == 0:
            print("  ".join("-" * w for w in widths))


def machine_info(dists: Sequence[str], versions: dict[str, str | None] | None = None) -> dict[str, Any]:
    """The machine, the commit and the versions of ``dists`` in this interpreter (plus ``versions`` given)."""
    import importlib.metadata as md

    found: dict[str, str | None] = {}
    for dist in dists:
        try:
            found[dist] = md.version(dist)
        except md.PackageNotFoundError:
            found[dist] = None
    status = _git("status", "--porcelain", "--", "flowrun")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "flowrun_source_modified": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "loadavg_start": os.getloadavg(),
        "versions": {**found, **(versions or {})},
    }


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def save_results(path: Path, results: dict[str, Any]) -> None:
    """Write a run's results as JSON (only where the caller was asked to: results.json files are tracked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
