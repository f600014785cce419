"""The ``flowrun`` console script: the command runs in a child process that this one watches.

Why: a script or condition looping inside one C call (``sum(range(10**16))``) never
returns to Python bytecode, so the signal-based CPU limit of
:mod:`flowrun.engine.step_limits` cannot stop it. Under this supervisor every engine step
of the child also gets a kernel CPU limit (``RLIMIT_CPU``, a second or two past
``FLOWRUN_SCRIPT_SECONDS``): past it the kernel kills the child with ``SIGXCPU``.
This process then prints one message naming the task and the instance (the child
wrote them into a shared page before the step, without a system call) and exits 1;
for ``flowrun worker`` it first records an incident on that instance, so it is no
longer due, and starts the worker again with the same arguments, so the other
instances are served (it gives up after :data:`MAX_KILLS` kills in a row).

Only the standard library is imported before the fork: the child imports click and
flowrun itself. The child dies with this process (``PR_SET_PDEATHSIG``), so a
``kill -9`` of the ``flowrun`` command still stops everything at once.

Signals: the terminal sends Ctrl-C (and Ctrl-\\, hang-ups) to both processes, so this
one ignores what the kernel sent and forwards what another process sent (``kill``,
a service manager's SIGTERM) to the child. It exits with the child's exit code, or
dies of the same signal. Set ``FLOWRUN_SUPERVISE=0`` to run without a supervisor
(only the signal-based limit then holds); on systems other than Linux it always
runs without.
"""

from __future__ import annotations

import mmap
import os
import signal
import sys
import time
from collections.abc import Sequence

#: The child finds the shared page and this process by this variable: ``<fd>:<pid>`` (see flowrun.engine.step_limits).
ENV = "FLOWRUN_SUPERVISOR"
#: A worker killed this many times in a row, each within :data:`QUICK_S` of its start, is not started again.
MAX_KILLS = 3
QUICK_S = 60.0
#: Signals passed on to the child when another process (not the terminal) sent them.
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
#: ``si_code`` of a signal the kernel generated (the terminal's Ctrl-C), as opposed to ``kill()``.
_SI_KERNEL = 0x80
_PR_SET_PDEATHSIG = 1


def main() -> None:
    """Entry point of the ``flowrun`` console script."""
    page_fd = _page() if _supervisable() else None
    if page_fd is None:
        _run()
        return
    args = sys.argv[1:]
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # an inherited SIG_IGN would reap the child for us
    kills = 0
    while True:
        started = time.monotonic()
        status = _supervise(page_fd)
        if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXCPU:
            note = _read_note(page_fd)
            recorded = _report_kill(args, note)
            kills = kills + 1 if time.monotonic() - started < QUICK_S else 1
            if recorded and kills < MAX_KILLS:
                continue  # a worker: the instance has its incident, serve the others
            _exit(1)
        if os.WIFSIGNALED(status):
            _die_of(os.WTERMSIG(status))
        _exit(os.waitstatus_to_exitcode(status))


def _exit(code: int) -> None:
    """End now: the child did the work, so this process has nothing to tidy up, and tearing down its
    interpreter would add several milliseconds to every command."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _supervisable() -> bool:
    # A FLOWRUN_SUPERVISOR inherited from another flowrun (a service handler running `flowrun send`)
    # does not matter: this process's child gets its own.
    if os.environ.get("FLOWRUN_SUPERVISE", "1") == "0":
        return False
    if "_FLOWRUN_COMPLETE" in os.environ:  # shell completion runs no engine step, and must be quick
        return False
    return sys.platform.startswith("linux") and hasattr(signal, "sigwaitinfo")


def _run() -> None:
    from flowrun.cli.main import main as run

    run()


def _page() -> int | None:
    """The file descriptor of one shared page the child writes what it runs into."""
    try:
        fd = os.memfd_create("flowrun-step")
        os.ftruncate(fd, mmap.PAGESIZE)
        return fd
    except (AttributeError, OSError):
        return None


def _supervise(page_fd: int) -> int:
    """Start the command as a child and wait for it, passing signals on; its wait status."""
    watched = {signal.SIGCHLD, *FORWARDED}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    parent = os.getpid()
    os.pwrite(page_fd, b"\0" * 4, 0)
    try:
        child = os.fork()
    except OSError:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        _run()
        raise
    if child == 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        _become_child(parent, page_fd)
        _run()  # exits (SystemExit), never returns here
    while True:
        info = signal.sigwaitinfo(watched)
        if info.si_signo == signal.SIGCHLD:
            pid, status = os.waitpid(child, os.WNOHANG)
            if pid == child:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)
                return status
        elif info.si_code != _SI_KERNEL:
            try:
                os.kill(child, info.si_signo)
            except ProcessLookupError:
                pass


def _become_child(parent: int, page_fd: int) -> None:
    """Die with the supervisor, dump no core when killed, and tell flowrun.engine.step_limits where to note."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    os.environ[ENV] = f"{page_fd}:{parent}"


def _read_note(page_fd: int) -> dict[str, str]:
    """What the killed child noted it ran: ``limit``, ``seconds``, ``instance``, ``task``, ``job``."""
    head = os.pread(page_fd, 4, 0)
    size = int.from_bytes(head, "little") if len(head) == 4 else 0
    text = os.pread(page_fd, min(size, mmap.PAGESIZE - 4), 4).decode("utf-8", "replace")
    lines = text.split("\n")
    return dict(zip(("limit", "seconds", "instance", "task", "job"), lines, strict=False))


def _report_kill(args: Sequence[str], note: dict[str, str]) -> bool:
    """Print the one message for a kill; for a worker record the incident. True when a worker may go on."""
    seconds = note.get("seconds") or os.environ.get("FLOWRUN_SCRIPT_SECONDS", "3")
    instance, task, job = note.get("instance", ""), note.get("task", ""), note.get("job", "")
    what = "a script or condition" if not job else f"the service handler '{job}'"
    # `start` had not saved its instance yet, so its id would name nothing the operator can find.
    of = "of the new instance (not started)" if _command(args) == "start" else f"of instance {instance[:8]}"
    where = f"{task} {of}: " if task and instance else ""
    message = (
        f"{where}{what} ran past {seconds} s of CPU inside a built-in function (an endless loop?); "
        "nothing was saved for this step; fix the script or raise FLOWRUN_SCRIPT_SECONDS"
    )
    recorded = False
    if instance and _command(args) == "worker":
        from flowrun.cli.main import record_killed_step

        recorded = record_killed_step(list(args), instance, message)
    suffix = " (see 'flowrun incidents')" if recorded else ""
    # A worker's log lines start with the local time (see flowrun.cli.worker); so does this one.
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z ") if _command(args) == "worker" else ""
    print(f"{stamp}error: {message}{suffix}", file=sys.stderr, flush=True)
    return recorded


def _command(args: Sequence[str]) -> str:
    """The subcommand in ``args`` (the first word that is neither an option nor the value of ``--project``)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--project":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def _die_of(signum: int) -> None:
    """End as the child ended: of the same signal, so the caller sees what it would have seen."""
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    sys.exit(128 + signum)


if __name__ == "__main__":
    main()
