"""The restricted environment in which scripts and conditions from diagrams run.

Diagrams are untrusted input. Their Python never reaches plain ``eval``/``exec``:
it is compiled by RestrictedPython, which rejects imports, names and attributes
starting with ``_`` (so no ``().__class__.__base__.__subclasses__()``), and runs
with a small set of builtins (no ``open``, ``getattr``, ``type``, and no
``BaseException``, ``SystemExit``, ``KeyboardInterrupt`` or ``GeneratorExit``, so
diagram code can neither stop flowrun nor pose as Ctrl-C). Compiled code is cached
per source text, since the same conditions are evaluated for every instance.

Names: the helpers (``math``, ``datetime``, ``date``, ``timedelta``), the builtins
and RestrictedPython's hooks (``_getattr_``, ``_print_``, ...) live in the
``__builtins__`` mapping, the task data in the globals. So a data variable named
like a helper hides that helper in the scripts that see it, and is kept as it is;
data names restricted code cannot write (``_getattr_``, ``printed``, ``print``,
any name starting with ``_``) are passed around the script untouched, and can
never replace a hook. The C code of ``strftime``/``strptime``/``timetuple``
imports ``time`` and ``_strptime`` through the frame's builtins: the sandbox's
``__import__`` allows exactly those, nothing else (diagram code cannot name it).

A script runs on a copy of the task data; the data is replaced only when the
whole script succeeded, so a script that fails half way leaves it as it was.

Limits: :class:`~flowrun.engine.step_limits.limits` (re-exported here, around each
engine step) stops diagram code with ``ScriptTimeout``, a ``BaseException``. So that
no diagram code can swallow or replace it, ``except`` clauses may only name built-in
errors (each rewritten to a name task data cannot shadow) and ``finally`` is
refused, both when compiling, with the line. A script's resulting data may take at
most 1/:data:`SAVEABLE_SHARE` of ``FLOWRUN_SCRIPT_MEMORY_MB``, the most a step can save.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import importlib
import keyword
import math
from collections.abc import Iterable, Mapping
from functools import lru_cache
from types import CodeType, ModuleType
from typing import Any

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safe_builtins,
    safer_getattr_raise,
)
from RestrictedPython.PrintCollector import PrintCollector
from RestrictedPython.transformer import FORBIDDEN_FUNC_NAMES, RestrictingNodeTransformer

from flowrun.engine.step_limits import ScriptTimeout, limits, memory_mb, memory_message, timeout_message

__all__ = [
    "CATCHABLE",
    "SAVEABLE_SHARE",
    "DataTooDeep",
    "SandboxError",
    "ScriptTimeout",
    "compile_expression",
    "compile_script",
    "depth_message",
    "describe",
    "evaluate",
    "execute",
    "limits",
    "line_of",
    "memory_message",
]

#: Builtins of RestrictedPython's safe set that diagram code does not get.
_UNSAFE = {
    "setattr",
    "delattr",
    "__build_class__",
    "id",
    "_getattr_",
    # Raising these would stop flowrun (SystemExit), pose as Ctrl-C, or escape ``except Exception``.
    "BaseException",
    "SystemExit",
    "KeyboardInterrupt",
    "GeneratorExit",
}

#: Modules the C code of datetime imports through the caller's builtins (strftime, strptime, timetuple).
_C_IMPORTS = frozenset({"time", "_strptime"})


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


def _import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> ModuleType:
    """The builtins' ``__import__``: only what datetime's C code imports (diagram code cannot call it)."""
    if level == 0 and name in _C_IMPORTS:
        return importlib.import_module(name)
    raise ImportError(f"imports are not allowed in diagram scripts (tried '{name}')")


def _exception_alias(name: str) -> str:
    return f"_except_{name}"


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
            # The helpers.
            "math": math,
            "datetime": _dt.datetime,
            "date": _dt.date,
            "timedelta": _dt.timedelta,
        }
    )
    names.update({_exception_alias(k): v for k, v in names.items() if k in CATCHABLE})
    names.update(
        {
            # RestrictedPython's hooks: looked up as globals, found here, never shadowed by task data.
            # The raising variant: RestrictedPython's default one answers None for a missing
            # attribute, so a misspelt `customer.vipp` would quietly steer a gateway.
            "_getattr_": safer_getattr_raise,
            "_getitem_": _getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": full_write_guard,
            "_inplacevar_": _inplacevar,
            "_print_": PrintCollector,
            "__import__": _import,
        }
    )
    return names


#: The built-in errors an ``except`` clause may name (every ``Exception`` subclass of the builtins).
CATCHABLE = frozenset(
    k for k, v in safe_builtins.items() if k not in _UNSAFE and isinstance(v, type) and issubclass(v, Exception)
)

_BUILTINS: dict[str, Any] = _build_builtins()


@lru_cache(maxsize=4096)
def _hidden(name: Any) -> bool:
    """Whether restricted code cannot use the name: such data is passed around the script untouched."""
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        return True
    return (name.startswith("_") and name != "_") or name.endswith("__roles__") or name in FORBIDDEN_FUNC_NAMES


class SandboxError(Exception):
    """A script or expression was refused or failed; ``line`` is 1-based if known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class DataTooDeep(SandboxError):
    """The task data is nested too deeply to be copied for a script (no script is at fault)."""


def depth_message() -> str:
    return (
        "the task data is nested too deeply to be copied for the scripts and conditions "
        "(lists or objects inside each other about a thousand levels deep); no script is at fault: "
        "flatten the data that was given to the instance"
    )


def _copy(value: Any) -> Any:
    """A copy a script may change freely: scalars are shared, containers are copied."""
    if not isinstance(value, (list, dict, set)):
        return value
    try:
        return copy.deepcopy(value)
    except RecursionError:
        raise DataTooDeep(depth_message()) from None


# -- compiling ------------------------------------------------------------------------------


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's checks, plus: no code that could swallow the CPU limit's stop.

    ``except`` may name only built-in errors (each rewritten to a name task data cannot
    shadow, so matching an error can never fail and replace the stop), and ``finally``
    is refused (a ``finally`` that raises, returns, breaks or continues would end it).
    """

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        if node.type is None:
            self.error(node, "a bare 'except:' is not allowed; name the errors, e.g. 'except (ValueError, KeyError):'")
            return node
        names = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
        for name in names:
            if not isinstance(name, ast.Name) or name.id not in CATCHABLE:
                self.error(
                    node,
                    f"'except {ast.unparse(name)}' is not allowed; an except clause names built-in errors "
                    "such as Exception, ValueError or KeyError",
                )
                return node
        checked: ast.ExceptHandler = super().visit_ExceptHandler(node)  # type: ignore[assignment]
        # After RestrictedPython's visit, which would refuse the "_" names.
        aliases: list[ast.expr] = [ast.Name(id=_exception_alias(n.id), ctx=ast.Load()) for n in names]  # type: ignore[attr-defined]
        tuple_ = ast.copy_location(ast.Tuple(elts=aliases, ctx=ast.Load()), node)
        checked.type = ast.fix_missing_locations(tuple_)
        return checked

    def visit_Try(self, node: ast.Try) -> Any:
        if node.finalbody:
            self.error(
                node.finalbody[0],
                "'finally' is not allowed in diagram scripts; put the clean-up after the try statement",
            )
        return super().visit_Try(node)


@lru_cache(maxsize=4096)
def compile_expression(source: str) -> CodeType:
    """Compile a condition or expression, or raise :class:`SandboxError` saying why not."""
    result = compile_restricted_eval(source.strip(), "<condition>", policy=_Policy)
    if result.errors or result.code is None:
        raise SandboxError(_explain(result.errors), _first_line(result.errors))
    return result.code


@lru_cache(maxsize=4096)
def compile_script(source: str) -> CodeType:
    """Compile a script task's text, or raise :class:`SandboxError` saying why not."""
    _refuse_imports(source)
    result = compile_restricted_exec(source, "<script>", policy=_Policy)
    if result.errors or result.code is None:
        raise SandboxError(_explain(result.errors), _first_line(result.errors))
    return result.code


# -- running --------------------------------------------------------------------------------


def _scope(data: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    scope: dict[str, Any] = {"__builtins__": _BUILTINS}
    if extra:
        scope.update((k, v) for k, v in extra.items() if not _hidden(k))
    scope.update((k, _copy(v)) for k, v in data.items() if not _hidden(k))
    return scope


def evaluate(source: str, data: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> Any:
    """Evaluate ``source`` with the task data as variables; data is not modified."""
    code = compile_expression(source)
    return eval(code, _scope(data, extra))  # noqa: S307 - restricted code, restricted builtins


def execute(source: str, data: dict[str, Any], extra: Mapping[str, Any] | None = None) -> None:
    """Run a script on ``data``; on success ``data`` holds the result, on failure it is unchanged.

    Every data variable is kept (as the script left it; hidden names as they were),
    and the new variables the script assigned are added, except functions and modules.
    """
    code = compile_script(source)
    scope = _scope(data, extra)
    exec(code, scope)  # noqa: S102 - restricted code, restricted builtins
    result: dict[str, Any] = {}
    for k, v in data.items():
        if _hidden(k):
            result[k] = v
        elif k in scope:
            result[k] = scope[k]
    for k, v in scope.items():
        if k in result or _hidden(k) or (extra and k in extra and v is extra[k]):
            continue
        if not callable(v) and not isinstance(v, ModuleType):
            result[k] = v
    _check_size(result, data)
    data.clear()
    data.update(result)


#: The share of FLOWRUN_SCRIPT_MEMORY_MB the data a script leaves may take: saving it needs several copies.
SAVEABLE_SHARE = 8


def _check_size(result: Mapping[str, Any], before: Mapping[str, Any]) -> None:
    """Refuse a script's data too big to be saved within the memory limit (input data left alone is not counted)."""
    budget = int(memory_mb() * 1024 * 1024)
    budget //= SAVEABLE_SHARE
    size = _json_size([v for k, v in result.items() if not (k in before and before[k] is v)], budget)
    if size > budget:
        raise SandboxError(
            f"the script left more than {budget / 1048576:.0f} MB of task data, more than a step can save "
            f"(1/{SAVEABLE_SHARE} of FLOWRUN_SCRIPT_MEMORY_MB); keep less in the task data, "
            "or raise FLOWRUN_SCRIPT_MEMORY_MB"
        )


def _json_size(value: Any, budget: int) -> int:
    """About how many bytes ``value`` takes as JSON text, counted until it passes ``budget``.

    A container met again (shared, or a cycle) is counted once.
    """
    total = 0
    stack = [value]
    seen: set[int] = set()
    while stack and total <= budget:
        item = stack.pop()
        if isinstance(item, (str, bytes, bytearray)):
            total += len(item) + 2
        elif isinstance(item, (dict, list, tuple, set, frozenset)):
            if id(item) in seen:
                continue
            seen.add(id(item))
            if isinstance(item, dict):
                total += 2 + 4 * len(item)
                if total <= budget:
                    stack.extend(item.keys())
                    stack.extend(item.values())
            else:
                total += 2 + 2 * len(item)
                if total <= budget:
                    stack.extend(item)
        else:
            total += 8
    return total


def describe(exc: BaseException) -> str:
    """Why diagram code failed, in words: the error's kind and message, or the limit it hit."""
    if isinstance(exc, ScriptTimeout):
        return timeout_message()
    if isinstance(exc, MemoryError):
        return memory_message()
    if isinstance(exc, SandboxError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def line_of(exc: BaseException) -> int | None:
    """The line of the diagram script where ``exc`` was raised (its innermost frame there)."""
    if isinstance(exc, SandboxError) and exc.line:
        return exc.line
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<script>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


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
