"""``flowrun validate``: check diagrams without running them, every problem on its own line."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import json_option
from flowrun.cli.render import echo_json
from flowrun.errors import ProjectError


@click.command("validate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@json_option
@pass_app
@click.pass_context
def validate_cmd(ctx: click.Context, app: AppContext, paths: tuple[Path, ...], as_json: bool) -> None:
    """Check the project's diagrams (or the files and folders PATHS) without running anything.

    Each problem is printed as FILE:LINE: ELEMENT ("NAME"): WHAT IS WRONG; HOW TO FIX IT.
    Exits 1 when there is an error; warnings alone exit 0.
    """
    from flowrun.app import validate

    try:
        project = app.project
    except ProjectError as exc:
        if not paths:
            raise
        project = None
        click.echo(f"note: {exc}; forms and service topics were not checked", err=True)
    report = validate(project, paths)
    if as_json:
        echo_json(
            {
                "files": list(report.files),
                "problems": [asdict(p) for p in report.problems],
                "errors": report.errors,
                "warnings": report.warnings,
            }
        )
    else:
        for problem in report.problems:
            click.echo(str(problem))
        click.echo(f"{len(report.files)} file(s) checked, {report.errors} error(s), {report.warnings} warning(s)")
    if report.errors:
        ctx.exit(1)


COMMANDS = [validate_cmd]
