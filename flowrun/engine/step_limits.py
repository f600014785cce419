"""The limits of one engine step: CPU time (a signal, and a kernel limit under the supervisor) and memory.

Diagram code runs inside :class:`limits`, around each engine step. CPU: ``SIGPROF``
after ``FLOWRUN_SCRIPT_SECONDS`` raises :class:`ScriptTimeout`, a ``BaseException``
that ``except Exception`` in diagram code does not catch (and :mod:`~flowrun.engine.sandbox`
refuses the code that could swallow it); it fires again every :data:`REFIRE_S`
until the step ends. A loop inside one C call (``sum(range(10**16))``) never returns
to bytecode, where signal handlers run: only when flowrun runs under its supervisor
(the ``flowrun`` command, see :mod:`flowrun.cli.supervisor`, which sets
:data:`SUPERVISOR_ENV` for its child) does each step also get a kernel CPU limit
(``RLIMIT_CPU``) that kills the process, and a note of what it runs in a page shared
with the supervisor, which reports the kill. In-process users (tests with click's
``CliRunner``, the Python API) have the signal limit only. Memory: an address-space
ceiling, so a greedy script gets ``MemoryError``.
"""

from __future__ import annotations

import math
import mmap
import os
import signal
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from flowrun.errors import ScriptError

#: Seconds of CPU between the timer's firings once a step's budget is spent.
REFIRE_S = 0.1
#: Seconds the kernel CPU limit allows beyond the step's budget before it kills the process.
KERNEL_GRACE_S = 1.5
#: The environment variable the supervisor sets for its child: ``<fd of the shared page>:<supervisor pid>``.
SUPERVISOR_ENV = "FLOWRUN_SUPERVISOR"


class ScriptTimeout(BaseException):
    """A step's scripts and conditions used more CPU time than allowed.

    A ``BaseException``: ``except Exception`` in diagram code does not catch it.
    """


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


def memory_mb() -> float:
    """The memory scripts may use beyond flowrun's own, in MB (``FLOWRUN_SCRIPT_MEMORY_MB``)."""
    return _INSTALLED.get("memory_mb", _setting("FLOWRUN_SCRIPT_MEMORY_MB", 1024.0))


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
