"""The ``flowrun`` root command: builds the context and maps errors to exit codes in one place.

Exit codes: 0 success, 1 a :class:`~flowrun.errors.FlowrunError` (the message
names the thing and the fix), 2 wrong usage, 3 a conflict (someone else
completed the task first), 70 an unexpected internal error, 130 interrupted
(Ctrl-C), 141 the reader of the output went away (``flowrun export -o - | head``:
nothing is printed about it, as for any command whose pipe is closed).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from flowrun import __version__
from flowrun.cli.context import AppContext
from flowrun.errors import FlowrunError

#: Limits a step can exhaust anywhere in flowrun (a script's own failures are located by the engine).
_EXHAUSTED = {
    MemoryError: "flowrun ran out of memory (the scripts' limit is FLOWRUN_SCRIPT_MEMORY_MB above flowrun's own "
    "use); nothing was saved for this step; make the data smaller, or raise FLOWRUN_SCRIPT_MEMORY_MB",
    # Data nested so deeply that walking it (to copy, check or encode it) fails.
    RecursionError: "the data is nested too deeply (lists or objects inside each other about a thousand levels "
    "deep); nothing was saved; flatten the data",
}


#: Exit code when stdout's reader closed the pipe: 128 + SIGPIPE, what a shell tool killed by it gives.
EXIT_PIPE_CLOSED = 141


class PipeClosed(click.exceptions.Exit):
    """stdout's reader closed the pipe: stop quietly (nothing more can be shown, and it is no error)."""

    def __init__(self) -> None:
        _silence_stdout()
        super().__init__(EXIT_PIPE_CLOSED)


def _silence_stdout() -> None:
    # Output still buffered would fail again when Python flushes stdout at exit and print
    # "Exception ignored ... BrokenPipeError": point the descriptor at /dev/null instead.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no descriptor (a test runner's stream): nothing is flushed to a pipe
        pass


class FlowrunGroup(click.Group):
    """A group that turns flowrun errors into one clear message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlowrunError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            raise PipeClosed() from None
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was saved for the step in progress", err=True)
            ctx.exit(130)
        except (MemoryError, RecursionError) as exc:
            if os.environ.get("FLOWRUN_DEBUG"):
                raise
            click.echo(f"error: {_EXHAUSTED[type(exc)]}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if os.environ.get("FLOWRUN_DEBUG"):
                raise
            click.echo(
                f"internal error: {exc.__class__.__name__}: {exc}\n"
                "nothing was saved for this step; run again with FLOWRUN_DEBUG=1 for details and report it",
                err=True,
            )
            ctx.exit(70)


@click.group(cls=FlowrunGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=True, path_type=Path),
    envvar="FLOWRUN_PROJECT",
    help="Project folder (default: the nearest folder with a flowrun.yaml, from here upwards).",
)
@click.version_option(__version__, prog_name="flowrun")
@click.pass_context
def cli(ctx: click.Context, project_dir: Path | None) -> None:
    """flowrun runs, times and compares customer service processes drawn in BPMN.

    Designers save diagrams into processes/, operators step user tasks with the
    forms in forms/, and every task's ready, started and completed times are
    recorded for the pilot team.
    """
    ctx.obj = AppContext(project_dir)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from flowrun.cli import admin, compare, incidents, instances, logs, plan, project, tasks, validate, worker

    for module in (project, instances, tasks, worker, validate, logs, compare, plan, incidents, admin):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Run the command line in this process (the ``flowrun`` command runs it under :mod:`flowrun.cli.supervisor`)."""
    try:
        cli(prog_name="flowrun")
    finally:
        try:
            sys.stdout.flush()  # what is still buffered, while a closed pipe can still be told apart
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(EXIT_PIPE_CLOSED)
    sys.exit(0)


def record_killed_step(args: list[str], instance_id: str, message: str) -> bool:
    """For the supervisor: the worker it ran with ``args`` was killed in a step of ``instance_id``.

    Opens an incident on the instance (so its work is no longer due) in the project
    ``args`` name; False when that cannot be done, and the supervisor then stops.
    """
    import socket

    from flowrun.app.worker import fail_instance

    try:
        with cli.make_context("flowrun", list(args), resilient_parsing=True) as ctx:
            context = AppContext(ctx.params.get("project_dir"))
        try:
            owner = f"{socket.gethostname()}:{os.getpid()}"
            fail_instance(context.project, instance_id, "ScriptError", message, owner)
        finally:
            context.close()
    except (FlowrunError, click.ClickException, OSError) as exc:
        click.echo(f"error: the incident for instance {instance_id[:8]} could not be recorded: {exc}", err=True)
        return False
    return True
