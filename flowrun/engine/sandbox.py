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

Limits (:class:`limits`, around each engine step): CPU time by ``SIGPROF``,
raising :class:`ScriptTimeout`, a ``BaseException`` that ``except Exception`` in
diagram code does not catch; ``except`` clauses may only name built-in errors
(checked when compiling, with the line), and ``finally`` is refused, so no
diagram code can swallow or replace it. The timer fires again every
:data:`REFIRE_S` after it expired, until the step ends. A loop inside one C call
(``sum(range(10**16))``) never returns to bytecode, where signal handlers run: only
when flowrun runs under its supervisor (the ``flowrun`` command, see
:mod:`flowrun.cli.supervisor`) does each step also get a kernel CPU limit
(``RLIMIT_CPU``) that kills the process; the supervisor reports it. In-process
users (tests with click's ``CliRunner``, the Python API) have the signal limit only.
Memory: an address-space ceiling, so a greedy script gets ``MemoryError``.
"""

from __future__ import annotations

import ast
import copy
import datetime as _dt
import importlib
import keyword
import math
import mmap
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from types import CodeType, ModuleType, TracebackType
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
from RestrictedPython.transformer import FORBIDDEN_FUNC_NAMES, RestrictingNodeTransformer

from flowrun.errors import ScriptError

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

#: Seconds of CPU between the timer's firings once a step's budget is spent.
REFIRE_S = 0.1
#: Seconds the kernel CPU limit allows beyond the step's budget before it kills the process.
KERNEL_GRACE_S = 1.5
#: The environment variable the supervisor sets for its child: ``<fd of the shared page>:<supervisor pid>``.
SUPERVISOR_ENV = "FLOWRUN_SUPERVISOR"


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
            "_getattr_": safer_getattr,
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


class ScriptTimeout(BaseException):
    """A step's scripts and conditions used more CPU time than allowed.

    A ``BaseException``: ``except Exception`` in diagram code does not catch it.
    """


class DataTooDeep(SandboxError):
    """The task data is nested too deeply to be copied for a script (no script is at fault)."""


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def timeout_message() -> str:
    seconds = _INSTALLED.get("seconds", _setting("FLOWRUN_SCRIPT_SECONDS", 3.0))
    return (
        f"stopped after {seconds:g} s of CPU time (an endless loop in a script?); simplify the script, "
        "or raise FLOWRUN_SCRIPT_SECONDS"
    )


def memory_message() -> str:
    mb = _INSTALLED.get("memory_mb", _setting("FLOWRUN_SCRIPT_MEMORY_MB", 1024.0))
    return (
        f"ran out of memory (MemoryError; the limit is {mb:g} MB beyond flowrun's own, FLOWRUN_SCRIPT_MEMORY_MB); "
        "make the script hold less data, or raise FLOWRUN_SCRIPT_MEMORY_MB"
    )


def depth_message() -> str:
    return (
        "the task data is nested too deeply to be copied for the scripts and conditions "
        "(lists or objects inside each other about a thousand levels deep); no script is at fault: "
        "flatten the data that was given to the instance"
    )


_ACTIVE = threading.local()
_INSTALLED: dict[str, float] = {}


def _stop(signum: int, frame: Any) -> None:
    if getattr(_ACTIVE, "on", False):  # a late signal after the step ended is dropped
        raise ScriptTimeout(timeout_message())


def supervisor_pid() -> int | None:
    """The pid of the ``flowrun`` supervisor watching this process (our parent), or None."""
    fd_text, _, pid_text = os.environ.get(SUPERVISOR_ENV, "").partition(":")
    if fd_text.isdigit() and pid_text.isdigit() and int(pid_text) == os.getppid():
        return int(pid_text)
    return None


class _Supervisor:
    """The kernel CPU limit and the shared page the supervising ``flowrun`` process reads after a kill."""

    def __init__(self, page: mmap.mmap) -> None:
        import resource

        self._resource = resource
        self.page = page
        self.hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        self.noted: tuple[str, str, str] = ("", "", "")
        self.key: object = None
        self.head = b""

    @classmethod
    def attach(cls) -> _Supervisor | None:
        """The supervisor set up for this process, or None (not supervised, or not by our parent)."""
        if supervisor_pid() is None:
            return None
        try:
            return cls(mmap.mmap(int(os.environ[SUPERVISOR_ENV].partition(":")[0]), mmap.PAGESIZE))
        except (OSError, ValueError, ImportError):
            return None

    def arm(self, seconds: float) -> None:
        # process_time() is the CPU time RLIMIT_CPU counts (user + system), and cheaper than getrusage().
        limit = math.ceil(time.process_time() + seconds + KERNEL_GRACE_S)
        if self.hard != self._resource.RLIM_INFINITY:
            limit = min(limit, self.hard)
        self._resource.setrlimit(self._resource.RLIMIT_CPU, (limit, self.hard))
        self.head = f"{limit}\n{_INSTALLED['seconds']:g}\n".encode()
        self.key = None
        self.noted = ("", "", "")
        self._write()

    def disarm(self) -> None:
        # The page is read only after a kill by the kernel limit, which cannot happen while disarmed.
        self._resource.setrlimit(self._resource.RLIMIT_CPU, (self.hard, self.hard))

    def note(self, instance: str, key: object, task: Callable[[], str], job: str) -> None:
        if key is not self.key or instance != self.noted[0] or job != self.noted[2]:
            self.key = key
            self.noted = (instance, task(), job)
            self._write()

    def _write(self) -> None:
        # Lines limit, seconds, instance, task, job: read by flowrun.cli.supervisor once this
        # process was killed. A store into shared memory, no system call.
        instance, task, job = self.noted
        data = (self.head + f"{instance}\n{task}\n{job}\n".encode())[: mmap.PAGESIZE - 4]
        page = self.page
        page[4 : 4 + len(data)] = data
        page[0:4] = len(data).to_bytes(4, "little")


_SUPERVISOR: list[_Supervisor | None] = []


def _install() -> None:
    """Once per process: the SIGPROF handler, the address-space ceiling, the supervisor's page."""
    _INSTALLED["seconds"] = _setting("FLOWRUN_SCRIPT_SECONDS", 3.0)
    _INSTALLED["memory_mb"] = _setting("FLOWRUN_SCRIPT_MEMORY_MB", 1024.0)
    signal.signal(signal.SIGPROF, _stop)
    _limit_memory(_INSTALLED["memory_mb"])
    _SUPERVISOR.append(_Supervisor.attach())


def watched() -> bool:
    """Whether a step runs now under the supervisor's kernel CPU limit (then :func:`note_running` records)."""
    return bool(_SUPERVISOR) and _SUPERVISOR[0] is not None and getattr(_ACTIVE, "on", False)


def note_running(instance: str, key: object, task: Callable[[], str], job: str = "") -> None:
    """Record what the current step runs, for the supervisor's message if the kernel kills the process.

    ``key`` identifies the task (its spec): ``task()``, its description, is made only when it changed.
    """
    if watched():
        _SUPERVISOR[0].note(instance, key, task, job)  # type: ignore[union-attr]


def spent() -> None:
    """The step's budget is spent and its code was stopped: let the unwinding finish before firing again."""
    if getattr(_ACTIVE, "on", False):
        signal.setitimer(signal.ITIMER_PROF, REFIRE_S, REFIRE_S)


class limits:  # lower case: it reads as a function, ``with limits():``
    """Bound the CPU time and memory of one engine step (its scripts and conditions).

    ``FLOWRUN_SCRIPT_SECONDS`` (default 3) of CPU time per step, then the running
    code is stopped with :class:`ScriptTimeout` (and again every :data:`REFIRE_S`
    until the step ends); one that escapes the step becomes a
    :class:`~flowrun.errors.ScriptError`. Under the supervisor, the kernel also
    kills the process :data:`KERNEL_GRACE_S` after the budget (a loop inside C).
    Memory: on first use the process gets an address-space ceiling of its size then
    plus ``FLOWRUN_SCRIPT_MEMORY_MB`` (default 1024), so a script that allocates
    without bound fails with ``MemoryError`` instead of exhausting the machine.
    Set up once per process; a step arms and disarms the timer (two system calls,
    three more for the kernel limit when supervised). Only the main thread of a
    process can be limited (signals); elsewhere the step runs without limits.
    """

    __slots__ = ("_armed",)

    def __enter__(self) -> None:
        self._armed = not getattr(_ACTIVE, "on", False) and threading.current_thread() is threading.main_thread()
        if not self._armed:
            return
        if not _INSTALLED:
            _install()
        seconds = _INSTALLED["seconds"]
        supervisor = _SUPERVISOR[0]
        if supervisor is not None:
            supervisor.arm(seconds)
        signal.setitimer(signal.ITIMER_PROF, seconds, REFIRE_S)
        _ACTIVE.on = True

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._armed:
            return
        _ACTIVE.on = False
        signal.setitimer(signal.ITIMER_PROF, 0)
        supervisor = _SUPERVISOR[0]
        if supervisor is not None:
            supervisor.disarm()
        if isinstance(exc, ScriptTimeout):
            # The budget ran out outside any one script (between them, in the engine): not located.
            raise ScriptError(f"a script or condition was {timeout_message()}") from exc


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
    budget = int(_INSTALLED.get("memory_mb", _setting("FLOWRUN_SCRIPT_MEMORY_MB", 1024.0)) * 1024 * 1024)
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
