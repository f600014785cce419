"""Commands about the project itself: ``init``, ``processes``, ``db upgrade``."""

from __future__ import annotations

from pathlib import Path

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import json_option
from flowrun.cli.render import echo_json


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path), default=".")
def init_cmd(directory: Path) -> None:
    """Create a project in DIRECTORY with the shipped complaint-handling example."""
    from flowrun.app import init_project

    created = init_project(directory)
    click.echo(f"Created a flowrun project in {directory}:")
    for name in created:
        click.echo(f"  {name}")
    click.echo("Next: cd into it, then 'flowrun processes' and 'flowrun start complaint:baseline'.")


@click.command("processes")
@json_option
@pass_app
def processes_cmd(app: AppContext, as_json: bool) -> None:
    """List process families, their variants and files."""
    from flowrun.app import list_processes

    entries = list_processes(app.project)
    if as_json:
        echo_json(
            [
                {
                    "process": e.family,
                    "variant": e.variant,
                    "file": e.file,
                    "exists": e.exists,
                    "configured": e.named_in_config,
                }
                for e in entries
            ]
        )
        return
    from rich.table import Table

    from flowrun.cli.render import console

    table = Table(title="Processes", title_justify="left")
    for col in ("process", "variant", "file", "start with"):
        table.add_column(col)
    for e in entries:
        target = f"{e.family}:{e.variant}" if e.named_in_config else e.file
        file = e.file if e.exists else f"{e.file} (missing)"
        table.add_row(e.family, e.variant, file, f"flowrun start {target}")
    console().print(table)


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@pass_app
def db_upgrade_cmd(app: AppContext) -> None:
    """Create the schema or migrate it to this flowrun's version."""
    from flowrun.app import db_upgrade

    revision = db_upgrade(app.project)
    click.echo(f"database is at revision {revision}")


COMMANDS = [init_cmd, processes_cmd, db_group]
