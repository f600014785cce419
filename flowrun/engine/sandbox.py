"""The restricted environment in which scripts and conditions from diagrams run.

Diagrams are untrusted input. Their Python never reaches plain ``eval``/``exec``:
it is compiled by RestrictedPython, which rejects imports, names and attributes
starting with ``_`` (so no ``().__class__.__base__.__subclasses__()``), and runs
with a small set of builtins (no ``open``, ``getattr``, ``__import__``, ``type``).
Compiled code is cached per source text, since the same conditions are
evaluated for every instance.

A script runs on a copy of the task data; the data is replaced only when the
whole script succeeded, so a script that fails half way leaves it as it was.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import math
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr,
)
from RestrictedPython.PrintCollector import PrintCollector

_UNSAFE = {"setattr", "delattr", "__build_class__", "id", "_getattr_"}


def _getitem(obj: Any, key: Any) -> Any:
    return obj[key]


_INPLACE = {
    "+=": lambda a, b: a + b,
    "-=": lambda a, b: a - b,
    "*=": lambda a, b: a * b,
    "/=": lambda a, b: a / b,
    "//=": lambda a, b: a // b,
    "%=": lambda a, b: a % b,
    "**=": lambda a, b: a**b,
}


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    try:
        return _INPLACE[op](x, y)
    except KeyError:
        raise SyntaxError(f"the operator {op} is not allowed in diagram scripts") from None


def _build_builtins() -> dict[str, Any]:
    names: dict[str, Any] = {k: v for k, v in safe_builtins.items() if k not in _UNSAFE}
    names.update(
        {
            "list": list,
            "tuple": tuple,
            "dict": dict,
            "set": set,
            "frozenset": frozenset,
            "min": min,
            "max": max,
            "sum": sum,
            "sorted": sorted,
            "reversed": reversed,
            "any": any,
            "all": all,
            "enumerate": enumerate,
            "zip": zip,
            "map": map,
            "filter": filter,
            "iter": iter,
            "next": next,
        }
    )
    return names


#: Names every script and condition can use besides the task data.
_BASE_GLOBALS: dict[str, Any] = {
    "__builtins__": _build_builtins(),
    "_getattr_": safer_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_print_": PrintCollector,
    "math": math,
    "datetime": _dt.datetime,
    "date": _dt.date,
    "timedelta": _dt.timedelta,
}

_RESERVED = frozenset(_BASE_GLOBALS) | {"_print", "printed"}


class SandboxError(Exception):
    """A script or expression was refused or failed; ``line`` is 1-based if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class ScriptTimeout(SandboxError):
    """A script or condition used more CPU time than allowed."""


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


_ACTIVE = threading.local()
_INSTALLED: dict[str, float] = {}


def _stop(signum: int, frame: Any) -> None:
    seconds = _INSTALLED.get("seconds", 0)
    raise ScriptTimeout(
        f"stopped after {seconds:g} s of CPU time (an endless loop in a script?); simplify the script, "
        "or raise FLOWRUN_SCRIPT_SECONDS"
    )


def _install() -> None:
    """Once per process: the SIGPROF handler and the address-space ceiling."""
    _INSTALLED["seconds"] = _setting("FLOWRUN_SCRIPT_SECONDS", 3.0)
    signal.signal(signal.SIGPROF, _stop)
    _limit_memory(_setting("FLOWRUN_SCRIPT_MEMORY_MB", 1024.0))


@contextmanager
def limits() -> Iterator[None]:
    """Bound the CPU time and memory of one engine step (its scripts and conditions).

    ``FLOWRUN_SCRIPT_SECONDS`` (default 3) of CPU time per step, then the running
    code is stopped with :class:`ScriptTimeout`. Memory: on first use the process
    gets an address-space ceiling of its size then plus ``FLOWRUN_SCRIPT_MEMORY_MB``
    (default 1024), so a script that allocates without bound fails with
    ``MemoryError`` instead of exhausting the machine. Both are set up once per
    process; a step only arms and disarms the CPU timer (two system calls), because
    conditions are evaluated thousands of times. Only the main thread of a process
    can be limited (signals); elsewhere the step runs without limits.
    """
    if getattr(_ACTIVE, "on", False) or threading.current_thread() is not threading.main_thread():
        yield
        return
    if not _INSTALLED:
        _install()
    signal.setitimer(signal.ITIMER_PROF, _INSTALLED["seconds"])
    _ACTIVE.on = True
    try:
        yield
    finally:
        _ACTIVE.on = False
        signal.setitimer(signal.ITIMER_PROF, 0)


def _limit_memory(extra_mb: float) -> tuple[int, int] | None:
    try:
        import resource

        with open("/proc/self/statm", "rb") as f:
            pages = int(f.read().split()[0])
        current = pages * resource.getpagesize()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        wanted = current + int(extra_mb * 1024 * 1024)
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft <= wanted:
            return None
        resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
        return soft, hard
    except (ImportError, OSError, ValueError):
        return None  # no /proc or no resource module: CPU limit only


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy a script may change freely: scalars are shared, containers are copied."""
    return {k: (copy.deepcopy(v) if isinstance(v, (list, dict, set)) else v) for k, v in data.items()}


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> CodeType:
    """Compile a condition or expression, or raise :class:`SandboxError` saying why not."""
    result = compile_restricted_eval(source.strip(), "<condition>")
    if result.errors or result.code is None:
        raise SandboxError(_explain(result.errors), _first_line(result.errors))
    return result.code


@lru_cache(maxsize=4096)
def compile_script(source: str) -> CodeType:
    """Compile a script task's text, or raise :class:`SandboxError` saying why not."""
    _refuse_imports(source)
    result = compile_restricted_exec(source, "<script>")
    if result.errors or result.code is None:
        raise SandboxError(_explain(result.errors), _first_line(result.errors))
    return result.code


def evaluate(source: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
    """Evaluate ``source`` with the task data as variables; data is not modified."""
    code = compile_expression(source)
    scope = dict(_BASE_GLOBALS)
    if extra:
        scope.update(extra)
    scope.update(_copy(data))
    return eval(code, scope)  # noqa: S307 - restricted code, restricted builtins


def execute(source: str, data: dict[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """Run a script on ``data``; on success ``data`` holds the result, on failure it is unchanged."""
    code = compile_script(source)
    scope = dict(_BASE_GLOBALS)
    if extra:
        scope.update(extra)
    scope.update(_copy(data))
    exec(code, scope)  # noqa: S102 - restricted code, restricted builtins
    skip = _RESERVED | set(extra or ())
    result = {k: v for k, v in scope.items() if k not in skip and not callable(v) and not isinstance(v, ModuleType)}
    data.clear()
    data.update(result)


def _refuse_imports(source: str) -> None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return  # compile_restricted_exec reports it with its line
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            raise SandboxError(
                "imports are not allowed in diagram scripts; math, datetime, date and "
                "timedelta are available without importing",
                node.lineno,
            )


def _explain(errors: Iterable[str]) -> str:
    text = "; ".join(errors) or "it could not be compiled"
    return text.replace("<condition>", "expression").replace("<script>", "script")


def _first_line(errors: Iterable[str]) -> int | None:
    for err in errors:
        if err.startswith("Line "):
            try:
                return int(err.split(":", 1)[0][5:])
            except ValueError:
                return None
    return None
