"""Commands about instances: ``start``, ``show``, ``history``, ``instances``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from flowrun.cli.context import AppContext, pass_app
from flowrun.cli.options import data_options, json_option, parse_pairs, read_data_file
from flowrun.cli.render import echo_json, echo_ready, step_json


@click.command("start")
@click.argument("process")
@data_options
@click.option("--pilot", help="Name of the pilot (or group) this case belongs to.")
@json_option
@pass_app
def start_cmd(
    app: AppContext, process: str, data: tuple[str, ...], data_file: Path | None, pilot: str | None, as_json: bool
) -> None:
    """Start an instance of PROCESS (FAMILY[:VARIANT] or a .bpmn file) and run it to its first wait."""
    from flowrun.app import start
    from flowrun.forms import coerce

    values = read_data_file(data_file)
    values.update(coerce(None, parse_pairs(data)))
    result = start(app.project, process, values, pilot)
    if as_json:
        echo_json(step_json(result, new=True))
        return
    click.echo(result.instance[:8])
    _say_next(result)


def _say_next(result: object) -> None:
    status = getattr(result, "status", "")
    ready = getattr(result, "ready", [])
    if status == "completed":
        click.echo("  the instance has completed", err=True)
    echo_ready(ready, err=True)


@click.command("show")
@click.argument("instance")
@json_option
@pass_app
def show_cmd(app: AppContext, instance: str, as_json: bool) -> None:
    """Show an instance: status, variant, what it waits for, its data."""
    from flowrun.app import show
    from flowrun.cli.render import instance_json, instance_text

    view = show(app.project, instance)
    if as_json:
        echo_json(instance_json(view))
    else:
        instance_text(view)


@click.command("history")
@click.argument("instance")
@json_option
@pass_app
def history_cmd(app: AppContext, instance: str, as_json: bool) -> None:
    """Every task of an instance: lane, actor, ready/started/completed, waiting and touch time."""
    from flowrun.app import history
    from flowrun.app.admin import case_notes
    from flowrun.cli.render import history_table, task_json, when

    view, tasks = history(app.project, instance)
    if as_json:
        echo_json([task_json(t) for t in tasks])
        return
    history_table(view, tasks)
    for note in case_notes(app.project, view.id):
        click.echo(f"{when(note.at)}  {note.text}")


@click.command("instances")
@click.option("--process", "family", metavar="FAMILY", help="Only instances of this process family.")
@click.option("--variant", help="Only instances of this variant.")
@click.option("--pilot", help="Only instances of this pilot.")
@click.option("--status", type=click.Choice(["running", "completed", "error", "cancelled"]))
@click.option("--outdated", is_flag=True, help="Only running or failed instances on an older version of their file.")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
@json_option
@pass_app
def instances_cmd(
    app: AppContext,
    family: str | None,
    variant: str | None,
    pilot: str | None,
    status: str | None,
    outdated: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List recent instances, newest first (``--outdated``: the ones ``flowrun migrate`` would move)."""
    from flowrun.app.views import list_instances, outdated_filter
    from flowrun.clock import iso
    from flowrun.models import InstanceFilter

    where = InstanceFilter(status=status, family=family, variant=variant, pilot=pilot)
    rows, total = list_instances(app.project, outdated_filter(app.project, where) if outdated else where, limit)
    if as_json:
        echo_json(
            [
                {
                    "id": r.id,
                    "process": r.family,
                    "variant": r.variant,
                    "pilot": r.pilot,
                    "status": r.status,
                    "created_at": iso(r.created_at),
                    "ended_at": iso(r.ended_at),
                    "sha256": r.sha256,
                }
                for r in rows
            ]
        )
    else:
        _instances_table(rows, total)
    if total > len(rows):
        click.echo(f"{len(rows)} of {total} shown; use --limit", err=True)


def _instances_table(rows: list[Any], total: int) -> None:
    from rich.table import Table

    from flowrun.cli.render import console, when

    table = Table(title=f"{total} instance(s)", title_justify="left")
    for col in ("instance", "process", "pilot", "status", "started", "ended"):
        table.add_column(col, no_wrap=col in ("instance", "started", "ended"))
    for r in rows:
        table.add_row(
            r.id[:8], f"{r.family}:{r.variant}", r.pilot or "", r.status, when(r.created_at), when(r.ended_at)
        )
    console().print(table)


COMMANDS = [start_cmd, show_cmd, history_cmd, instances_cmd]
