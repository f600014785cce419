"""The ``flowrun`` root command: builds the context and maps errors to exit codes in one place.

Exit codes: 0 success, 1 a :class:`~flowrun.errors.FlowrunError` (the message
names the thing and the fix), 2 wrong usage, 3 a conflict (someone else
completed the task first), 70 an unexpected internal error.
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
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was saved for the step in progress", err=True)
            ctx.exit(130)
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
    from flowrun.cli import compare, incidents, instances, logs, project, tasks, validate, worker

    for module in (project, instances, tasks, worker, validate, logs, compare, incidents):
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    """Entry point of the ``flowrun`` console script."""
    cli(prog_name="flowrun")
    sys.exit(0)
